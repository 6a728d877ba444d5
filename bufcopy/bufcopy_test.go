package bufcopy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

// chunky returns reads of the given sizes in turn, then EOF.
type chunky struct {
	data  []byte
	sizes []int
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data))
	if len(c.sizes) > 0 {
		n = min(n, c.sizes[0])
		c.sizes = c.sizes[1:]
	}
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func TestCopyIsExactAcrossBufferSwitches(t *testing.T) {
	data := make([]byte, 1<<20)
	rand.Read(data)
	// Small reads, then reads that fill the small buffer (switch to the
	// large one), then small again (switch back), then whatever remains.
	src := &chunky{data: data, sizes: []int{10, 512, 40000, 32768, 100, 3, 512, 512}}
	var out bytes.Buffer
	var n atomic.Int64
	if err := Copy(&out, src, &n); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) || n.Load() != int64(len(data)) {
		t.Fatalf("copied %d bytes (counted %d), equal=%v", out.Len(), n.Load(), bytes.Equal(out.Bytes(), data))
	}
}

func TestCopyReportsErrors(t *testing.T) {
	boom := errors.New("boom")
	if err := Copy(io.Discard, iotest.ErrReader(boom), nil); !errors.Is(err, boom) {
		t.Fatalf("read error: got %v", err)
	}
	w := &failWriter{err: boom}
	if err := Copy(w, bytes.NewReader([]byte("x")), nil); !errors.Is(err, boom) {
		t.Fatalf("write error: got %v", err)
	}
}

type failWriter struct{ err error }

func (w *failWriter) Write(p []byte) (int, error) { return 0, w.err }
