package sshgate

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// Evict ends a running batch session with its one line and status 69,
// and the broker hears why.
func TestEvictEndsSession(t *testing.T) {
	e := newEnv(t)
	sess, stderr := startHang(t, e.mustDial("alice", e.alice))
	recv(t, e.placer.started, "the broker to hear of the start")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	e.srv.Evict(ctx)
	b, _ := io.ReadAll(stderr)
	if !strings.Contains(string(b), "this gateway is being upgraded; session ended") {
		t.Errorf("stderr %q", b)
	}
	var ee *gossh.ExitError
	if err := sess.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 69 {
		t.Errorf("wait: %v, want exit 69", err)
	}
	if ended := recv(t, e.placer.ended, "session ended"); ended.Reason != "gateway upgraded" {
		t.Errorf("ended %+v", ended)
	}
}
