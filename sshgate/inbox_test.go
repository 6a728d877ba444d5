package sshgate

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"switchyard/bufcopy"
)

func TestInboxHandsInputToOneReaderAtATime(t *testing.T) {
	src, w := io.Pipe()
	ib := newInbox(src)
	defer ib.close()
	first := ib.reader()
	blocked := make(chan error, 1)
	go func() {
		_, err := first.Read(make([]byte, 8))
		blocked <- err
	}()
	second := ib.reader() // takes the input back while first's Read waits
	if err := recv(t, blocked, "the first reader to give up"); err != io.EOF {
		t.Errorf("first reader after the handover: %v, want io.EOF", err)
	}
	go w.Write([]byte("keys"))
	b := make([]byte, 8)
	n, err := second.Read(b)
	if err != nil || string(b[:n]) != "keys" {
		t.Errorf("second reader got %q, %v", b[:n], err)
	}
	w.Close()
	if n, err := second.Read(b); n != 0 || err != io.EOF {
		t.Errorf("at the client's EOF: %d, %v", n, err)
	}
}

func TestInboxReadDeadline(t *testing.T) {
	src, w := io.Pipe()
	defer w.Close()
	ib := newInbox(src)
	defer ib.close()
	r := ib.reader().(*inboxReader)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 8))
		done <- err
	}()
	r.SetReadDeadline(time.Now())
	if err := recv(t, done, "Read to time out"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read after the deadline: %v", err)
	}
	r.SetReadDeadline(time.Time{})
	go w.Write([]byte("x"))
	b := make([]byte, 8)
	if n, err := r.Read(b); err != nil || string(b[:n]) != "x" {
		t.Errorf("Read after clearing the deadline: %q, %v", b[:n], err)
	}
}

// A paste larger than the pump's buffers arrives whole and in order, and
// the room it took is not kept once it has been read.
func TestInboxPasteExactAndReleased(t *testing.T) {
	src, w := io.Pipe()
	ib := newInbox(src)
	defer ib.close()
	paste := make([]byte, 3*bufcopy.LargeSize+123)
	for i := range paste {
		paste[i] = byte(i * 7)
	}
	go func() { w.Write(paste); w.Close() }()
	got, err := io.ReadAll(ib.reader())
	if err != nil || !bytes.Equal(got, paste) {
		t.Fatalf("read %d of %d bytes (%v), equal=%v", len(got), len(paste), err, bytes.Equal(got, paste))
	}
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if cap(ib.buf) > bufcopy.SmallSize {
		t.Errorf("the inbox keeps %d bytes of room after the paste was read", cap(ib.buf))
	}
}
