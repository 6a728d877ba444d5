package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// startConfig writes a config of one gateway, one server and the broker
// and returns its path.
func startConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf(`state_dir = %q

[gateway.gw1]
listen = "127.0.0.1:2222"

[server.s1]
listen = "127.0.0.1:7101"
apps = ["top"]

[app.top]
argv = ["top"]
`, dir)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Each daemon takes -node of its own kind only, and says which table it
// wanted; the broker's -node defaults to the [broker].
func TestStartDaemonChecksTheNode(t *testing.T) {
	path := startConfig(t)
	for _, tc := range []struct {
		kind nodeKind
		node string
		want string // "" for accepted
	}{
		{appdKind, "s1", ""},
		{appdKind, "gw1", `-node "gw1" is not a [server.NAME] in ` + path},
		{slaveKind, "gw1", ""},
		{slaveKind, "s1", `-node "s1" is not a [gateway.NAME] in ` + path},
		{brokerKind, "", ""},
		{brokerKind, "gw1", `-node "gw1" is not a broker ([broker] or [brokers.NAME]) in ` + path},
	} {
		args := []string{"-config", path}
		if tc.node != "" {
			args = append(args, "-node", tc.node)
		}
		var logs bytes.Buffer
		r, err := startDaemon(context.Background(), tc.kind, args, Env{Stderr: &logs})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %v: %v", tc.kind.binary, args, err)
		case tc.want != "" && (!errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %v: %v, want usage error %q", tc.kind.binary, args, err, tc.want)
		case err == nil:
			if tc.node == "" && r.node != "broker" {
				t.Errorf("broker without -node runs as %q", r.node)
			}
			r.close()
			if !strings.Contains(logs.String(), "msg=starting") || !strings.Contains(logs.String(), "msg=stopped") {
				t.Errorf("%s: logs %q lack the start and the stop", tc.kind.binary, logs.String())
			}
		}
	}
}

// close stops the loops and waits for them before it closes what they
// may use, last opened first, and logs "stopped" last.
func TestDaemonRunClosesAfterItsLoops(t *testing.T) {
	var logs bytes.Buffer
	r, err := startDaemon(context.Background(), appdKind, []string{"-config", startConfig(t), "-node", "s1"}, Env{Stderr: &logs})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan string, 8)
	r.onClose(func() { events <- "first opened, closed" })
	r.loop(func(ctx context.Context) {
		<-ctx.Done()
		events <- "loop returned"
	})
	r.onClose(func() { events <- "second opened, closed" })
	r.close()
	close(events)
	var got []string
	for e := range events {
		got = append(got, e)
	}
	if want := []string{"loop returned", "second opened, closed", "first opened, closed"}; !slices.Equal(got, want) {
		t.Errorf("close ran %q, want %q", got, want)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "msg=stopped node=s1") {
		t.Errorf("last log line %q, want the stop", last)
	}
}

// serving ends the loops' context when serve returns: the loops stop
// without the daemon returning.
func TestServingEndsTheLoops(t *testing.T) {
	var logs bytes.Buffer
	ready := false
	env := Env{Stderr: &logs, Ready: func() { ready = true }}
	r, err := startDaemon(context.Background(), slaveKind, []string{"-config", startConfig(t), "-node", "gw1"}, env)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	stopped := make(chan struct{})
	r.loop(func(ctx context.Context) { <-ctx.Done(); close(stopped) })
	notified := false
	served := errors.New("served")
	err = r.serving(context.Background(), "gateway serving", []any{"listen", "here"}, func() { notified = true },
		func(context.Context) error { return served })
	if err != served || !ready || !notified {
		t.Fatalf("serving = %v, ready %v, notified %v", err, ready, notified)
	}
	r.waitLoops()
	select {
	case <-stopped:
	default:
		t.Fatal("the loop still runs after serving returned")
	}
	if !strings.Contains(logs.String(), `msg="gateway serving" node=gw1 listen=here`) {
		t.Errorf("logs %q lack the serving line", logs.String())
	}
}
