package sshgate

import (
	"context"
	"io"
	"runtime"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
)

// idleSplices is how many splices BenchmarkIdleSplices holds at once.
const idleSplices = 200

// BenchmarkIdleSplices holds idleSplices idle spliced channels at once and
// (each has carried one byte each way on data and on stderr) and reports the heap and goroutine
// stacks each holds in this process: the
// splice's copies and both channels at each of the four ends (client,
// both sides of the middle, backend). Only the splice's share is
// Switchyard's; compare runs of one tree against another.
func BenchmarkIdleSplices(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	backend := sshtest.Pair(b, func(nc gossh.NewChannel) {
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go gossh.DiscardRequests(reqs)
		b := make([]byte, 1)
		if _, err := io.ReadFull(ch, b); err == nil {
			ch.Write(b) // one byte back on each stream, then idle until closed
		}
		if _, err := io.ReadFull(ch.Stderr(), b); err == nil {
			ch.Stderr().Write(b)
		}
		io.Copy(io.Discard, ch)
		ch.Close()
	})
	front := spliced(b, ctx, backend)
	var held float64
	for b.Loop() {
		before := inUse()
		chans := make([]gossh.Channel, 0, idleSplices)
		for range idleSplices {
			ch, reqs, err := front.OpenChannel("x", nil)
			if err != nil {
				b.Fatal(err)
			}
			go gossh.DiscardRequests(reqs)
			roundTrip(b, ch)
			roundTrip(b, ch.Stderr())
			chans = append(chans, ch)
		}
		held += float64(inUse()-before) / idleSplices
		for _, ch := range chans {
			ch.Close()
		}
	}
	b.ReportMetric(held/float64(b.N), "B/splice")
}

// roundTrip sends a byte on rw and reads the backend's echo: that copy of
// the splice, both ways, has run.
func roundTrip(b *testing.B, rw io.ReadWriter) {
	if _, err := rw.Write([]byte{1}); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(rw, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
}

// inUse is the heap and stack memory in use after a collection.
func inUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
