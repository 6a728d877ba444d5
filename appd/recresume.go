package appd

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// A recording outlives the appd that began it: the session's state held
// by the keeper names the file, when it started and whether it takes
// input, and the appd that adopts the session appends to the same file
// with the same clock, after a marker. A recording an earlier appd left
// mid-line (kill -9 during a write) is cut back to its last whole line
// first, so the file stays valid asciicast v2.

// recordingMeta is what the next appd needs to go on with a recording.
type recordingMeta struct {
	Path  string `json:"path"`
	Start int64  `json:"start"` // Unix nanoseconds: the header's timestamp and event clock
	Input bool   `json:"input,omitempty"`
}

// meta returns what continues r after a handover; nil on a nil recorder.
func (r *recorder) meta() *recordingMeta {
	if r == nil {
		return nil
	}
	return &recordingMeta{Path: r.path, Start: r.start.UnixNano(), Input: r.input}
}

// continueRecording reopens an adopted session's recording for append,
// with cfg's size cap, and marks where the new appd took over.
func continueRecording(rm recordingMeta, cfg Recording, id, app string, log *slog.Logger) (*recorder, error) {
	if filepath.Base(rm.Path) != recordingName(id, app) {
		return nil, fmt.Errorf("recording: %q is not session %s's", rm.Path, id)
	}
	f, err := os.OpenFile(rm.Path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	end, err := lastLineEnd(f)
	if err == nil {
		err = f.Truncate(end)
	}
	if err == nil {
		_, err = f.Seek(end, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("recording %s: continue: %w", rm.Path, err)
	}
	r := newQueue(rm.Input, rm.Path)
	r.start = time.Unix(0, rm.Start)
	w := &castWriter{bw: bufio.NewWriterSize(f, 32<<10), max: cfg.MaxSize, n: end}
	w.full = w.max > 0 && end >= w.max-recMarkerRoom
	go r.run(f, w, nil, log)
	r.marker("taken over by the next appd")
	return r, nil
}

// lastLineEnd returns the offset just past f's last newline (0 if it has
// none): where a recording whose writer died mid-line ends whole.
func lastLineEnd(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("not a regular file")
	}
	buf := make([]byte, 32<<10)
	for end := fi.Size(); end > 0; {
		from := max(end-int64(len(buf)), 0)
		n, err := f.ReadAt(buf[:end-from], from)
		if err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return from + int64(i) + 1, nil
		}
		end = from
	}
	return 0, nil
}
