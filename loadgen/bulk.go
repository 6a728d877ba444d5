package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"time"
)

// bulkChunk is the size of one write in bulk mode.
const bulkChunk = 256 << 10

// runBulk moves c.Bytes through one session. Without a PTY it writes
// random bytes to the app (cat) and reads them back, comparing sha256
// sums; through a PTY, whose line discipline rewrites and limits input, it
// sends nothing and reads what the app writes (such as head -c N
// /dev/zero), which must be c.Bytes bytes. The clock runs from the first
// byte of output to the last, so that the app's start-up is not counted:
// MB/s = (bytes after the first read) / that time, 1 MB = 10^6 bytes.
func runBulk(ctx context.Context, c Config, d *dialer, r *Result) {
	var fails failures
	defer fails.into(r)
	r.Attempts = 1
	s, done, err := dialSession(ctx, c, d)
	if err != nil {
		fails.add(err)
		return
	}
	defer done()
	sent := sha256.New()
	werr := make(chan error, 1)
	if c.PTY {
		werr <- nil
	} else {
		go func() { werr <- sendRandom(s.stdin, sent, c.Bytes) }()
	}
	got := sha256.New()
	n, first, took, err := timedCopy(got, s.stdout)
	r.Bytes, r.Elapsed = n, took
	if err != nil {
		fails.addf("read after %d bytes: %w", n, err)
		return
	}
	if err := <-werr; err != nil {
		fails.add(err)
		return
	}
	if n != c.Bytes {
		fails.addf("%d bytes came back, want %d", n, c.Bytes)
	}
	if took > 0 {
		r.MBps = float64(n-first) / took.Seconds() / 1e6
	}
	if !c.PTY {
		r.SHA256 = "match"
		if !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
			r.SHA256 = "MISMATCH"
			fails.addf("sha256 of the bytes back differs from the bytes sent")
		}
	}
	if err := s.Wait(); err != nil {
		fails.addf("%q: %w", c.Cmd, err)
	}
}

// sendRandom writes size random bytes (one random chunk repeated) to w and
// to h, then closes w.
func sendRandom(w io.WriteCloser, h hash.Hash, size int64) error {
	chunk := make([]byte, bulkChunk)
	rand.Read(chunk)
	for size > 0 {
		p := chunk[:min(int64(len(chunk)), size)]
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		h.Write(p)
		size -= int64(len(p))
	}
	return w.Close()
}

// timedCopy copies r to w until EOF and returns the bytes copied, those of
// the first read, and the time from the first read to EOF.
func timedCopy(w io.Writer, r io.Reader) (n, first int64, took time.Duration, err error) {
	buf := make([]byte, 64<<10)
	var begin time.Time
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			if begin.IsZero() {
				begin, first = time.Now(), int64(m)
			}
			w.Write(buf[:m])
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	if !begin.IsZero() {
		took = time.Since(begin)
	}
	return n, first, took, err
}
