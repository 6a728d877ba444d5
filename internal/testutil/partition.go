package testutil

import (
	"net"
	"sync"
	"testing"
)

// Partition forwards every TCP connection made to the address it returns
// on to target, until cut is called; from then on it neither forwards nor
// closes anything, so both ends see silence: a network cut, not a
// hang-up. Everything is closed when the test ends.
func Partition(tb testing.TB, target string) (addr string, cut func()) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &partition{stop: make(chan struct{})}
	tb.Cleanup(func() {
		p.cut()
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go p.accept(ln, target)
	return ln.Addr().String(), p.cut
}

type partition struct {
	stop  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	conns []net.Conn
}

func (p *partition) cut() { p.once.Do(func() { close(p.stop) }) }

func (p *partition) accept(ln net.Listener, target string) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies src to dst until the cut; after it, it neither reads nor
// closes.
func (p *partition) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.stop:
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF or a closed connection
			return
		}
	}
}
