package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// maxCastLine bounds one line of an asciicast file the player reads.
const maxCastLine = 4 << 20

// castPlayer plays an asciicast v2 stream to a terminal: the "o" events'
// text, at the pace of their timestamps divided by Speed, or all at once
// with ToEnd. Input, resize and marker events are not shown.
type castPlayer struct {
	Speed float64 // 1 is real time; <= 0 counts as 1
	ToEnd bool    // no waiting: print everything at once
	// Idle caps a pause between two events, in recorded seconds (a
	// detach of ten minutes plays as Idle), as asciinema play -i does;
	// no cap if <= 0.
	Idle float64
	// Sleep waits d or until ctx ends; a timer if nil. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// castHeader is the part of an asciicast v2 header the player checks.
type castHeader struct {
	Version int `json:"version"`
	Width   int `json:"width"`
	Height  int `json:"height"`
}

// Play reads r and writes the output events to w. It returns the header,
// and an error for a stream that is not asciicast v2 or ends mid-line.
func (p castPlayer) Play(ctx context.Context, r io.Reader, w io.Writer) (castHeader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr castHeader
	line, err := readCastLine(br)
	if err != nil {
		return hdr, fmt.Errorf("asciicast header: %w", err)
	}
	if err := json.Unmarshal(line, &hdr); err != nil || hdr.Version != 2 {
		return hdr, fmt.Errorf("not an asciicast v2 recording (header %.80q)", line)
	}
	speed := p.Speed
	if speed <= 0 {
		speed = 1
	}
	start := time.Now()
	var last, cut float64 // the previous event's time; the pauses' time cut by Idle
	for n := 2; ; n++ {
		line, err := readCastLine(br)
		if errors.Is(err, io.EOF) {
			return hdr, nil
		}
		if err != nil {
			return hdr, fmt.Errorf("asciicast line %d: %w", n, err)
		}
		at, code, data, err := parseCastEvent(line)
		if err != nil {
			return hdr, fmt.Errorf("asciicast line %d: %w", n, err)
		}
		if p.Idle > 0 && at-last > p.Idle {
			cut += at - last - p.Idle
		}
		last = max(last, at)
		if code != "o" {
			continue
		}
		if !p.ToEnd {
			due := start.Add(time.Duration((at - cut) / speed * float64(time.Second)))
			if err := p.sleep(ctx, time.Until(due)); err != nil {
				return hdr, err
			}
		}
		if _, err := io.WriteString(w, data); err != nil {
			return hdr, fmt.Errorf("write: %w", err)
		}
	}
}

func (p castPlayer) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readCastLine reads one line, without its newline; io.EOF at a clean
// end, io.ErrUnexpectedEOF for a last line without newline.
func readCastLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > maxCastLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxCastLine)
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) == 0:
			return nil, io.EOF
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// parseCastEvent parses [time, "code", "data"].
func parseCastEvent(line []byte) (at float64, code, data string, err error) {
	var ev []json.RawMessage
	if err := json.Unmarshal(line, &ev); err != nil || len(ev) != 3 {
		return 0, "", "", fmt.Errorf("not an event [time, code, data]: %.80q", line)
	}
	if json.Unmarshal(ev[0], &at) != nil || json.Unmarshal(ev[1], &code) != nil || json.Unmarshal(ev[2], &data) != nil || at < 0 {
		return 0, "", "", fmt.Errorf("not an event [time, code, data]: %.80q", line)
	}
	return at, code, data, nil
}
