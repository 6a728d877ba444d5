package daemon

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"switchyard/internal/testutil"
)

func TestListenFDsRoundTrip(t *testing.T) {
	spec := formatFDs([]string{"listen", "internal", "ready"})
	if spec != "listen=3,internal=4,ready=5" {
		t.Fatalf("formatFDs: %q", spec)
	}
	got, err := parseFDs(spec)
	if err != nil || !maps.Equal(got, map[string]int{"listen": 3, "internal": 4, "ready": 5}) {
		t.Fatalf("parseFDs(%q) = %v, %v", spec, got, err)
	}
	for _, bad := range []string{"", "listen", "listen=x", "listen=2", "=3", "listen=3,listen=4"} {
		if _, err := parseFDs(bad); err == nil {
			t.Errorf("parseFDs(%q): no error", bad)
		}
	}
}

// TestSuccessorLeavesListenersNonBlocking: handing a listener to the
// successor must not switch the shared socket to blocking mode, or this
// process's accept loop blocks in accept(2) and closing the listener
// waits for a connection that may never come. The successor here is a
// shell that takes the listener on descriptor 3 and says it serves on
// descriptor 4.
func TestSuccessorLeavesListenersNonBlocking(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, err := startSuccessor(ctx, "/bin/sh", []string{"-c", `[ -e /proc/self/fd/3 ] && echo ready >&4`},
		[]namedListener{{"listen", ln}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("startSuccessor: %v", err)
	}
	if pid <= 0 {
		t.Fatalf("pid %d", pid)
	}
	if nonblocking(t, ln) != true {
		t.Error("the listener is in blocking mode after the handover")
	}
	// Close must return with the accept loop still waiting, and end it.
	ln.Close()
	if err := testutil.Recv(t, accepted, 10*time.Second, "accept ends"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("accept after close: %v", err)
	}
}

// nonblocking says whether ln's descriptor has O_NONBLOCK.
func nonblocking(t *testing.T, ln net.Listener) bool {
	t.Helper()
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	return flags&unix.O_NONBLOCK != 0
}
