package e2e

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/testutil"
)

// Run is one session driven by the x/crypto/ssh client.
type Run struct {
	t       testing.TB
	Session *ssh.Session
	Stdin   io.WriteCloser
	mu      sync.Mutex
	out     bytes.Buffer
	errOut  bytes.Buffer
	done    chan struct{} // closed when the session ended; err is set then
	err     error
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Open starts a session on client: cmd may be "" for none; pty requests a
// terminal of the given TERM and size.
func Open(t testing.TB, client *ssh.Client, cmd string, term string, rows, cols int) *Run {
	t.Helper()
	s, err := client.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	r := &Run{t: t, Session: s, done: make(chan struct{})}
	s.Stdout = lockedWriter{&r.mu, &r.out}
	s.Stderr = lockedWriter{&r.mu, &r.errOut}
	r.Stdin, err = s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if term != "" {
		if err := s.RequestPty(term, rows, cols, ssh.TerminalModes{}); err != nil {
			t.Fatalf("pty-req: %v", err)
		}
	}
	if cmd == "" {
		err = s.Shell()
	} else {
		err = s.Start(cmd)
	}
	if err != nil {
		t.Fatalf("start %q: %v", cmd, err)
	}
	go func() { r.err = s.Wait(); close(r.done) }()
	t.Cleanup(func() { s.Close() })
	return r
}

// Output returns what arrived on stdout and stderr so far.
func (r *Run) Output() (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String(), r.errOut.String()
}

// WaitFor waits until stdout contains want.
func (r *Run) WaitFor(want string) {
	r.t.Helper()
	ended := false
	testutil.Poll(15*time.Second, func() bool {
		select {
		case <-r.done: // the output is complete
			ended = true
		default:
		}
		out, _ := r.Output()
		return ended || strings.Contains(out, want)
	})
	out, errOut := r.Output()
	switch {
	case strings.Contains(out, want):
	case ended:
		r.t.Fatalf("session ended (%v) before %q; stdout %q, stderr %q", r.err, want, out, errOut)
	default:
		r.t.Fatalf("timed out waiting for %q; stdout %q, stderr %q", want, out, errOut)
	}
}

// Wait waits for the session to end and returns its exit status (or -1 and
// the signal for exit-signal).
func (r *Run) Wait() (int, string) {
	r.t.Helper()
	select {
	case <-r.done:
		err := r.err
		var ee *ssh.ExitError
		switch {
		case err == nil:
			return 0, ""
		case errors.As(err, &ee):
			if ee.Signal() != "" {
				return -1, ee.Signal()
			}
			return ee.ExitStatus(), ""
		default:
			r.t.Fatalf("session ended without a status: %v", err)
		}
	case <-time.After(30 * time.Second):
		out, errOut := r.Output()
		r.t.Fatalf("session did not end; stdout %q stderr %q", out, errOut)
	}
	return 0, ""
}
