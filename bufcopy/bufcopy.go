// Package bufcopy copies a stream the way a process carrying many mostly idle
// sessions should: an idle copy holds only a small buffer, and a busy one
// borrows a large buffer from a shared pool until its reads come back half
// empty. What this saves per session is in the README ("Measured against
// stock OpenSSH").
package bufcopy

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// Buffer sizes: what an idle copy holds, and what a busy one borrows.
const (
	SmallSize = 512
	LargeSize = 32 << 10
)

var pool = sync.Pool{New: func() any { b := make([]byte, LargeSize); return &b }}

// Borrow lends a LargeSize buffer from the pool Copy's busy copies share;
// give it back with Return once nothing refers to it.
func Borrow() *[]byte { return pool.Get().(*[]byte) }

// Return gives back a buffer from Borrow.
func Return(b *[]byte) { pool.Put(b) }

// Copy copies src to dst until src ends or a write fails, adding the bytes
// written to n when n is not nil. It returns nil when src ended with
// io.EOF, else the error that stopped it.
func Copy(dst io.Writer, src io.Reader, n *atomic.Int64) error {
	small := make([]byte, SmallSize)
	buf := small
	var big *[]byte
	defer func() {
		if big != nil {
			pool.Put(big)
		}
	}()
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			if n != nil {
				n.Add(int64(nw))
			}
			if werr != nil {
				return werr
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
		switch {
		case big == nil && nr == len(buf):
			big = Borrow()
			buf = *big
		case big != nil && nr < len(buf)/2:
			pool.Put(big)
			big, buf = nil, small
		}
	}
}
