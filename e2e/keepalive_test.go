package e2e

import (
	"context"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/control"
	"switchyard/internal/testutil"
)

// stoppableSSH is a stock ssh client that a test can freeze with SIGSTOP,
// as a suspended laptop or a hung terminal would.
type stoppableSSH struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	out   testutil.Buffer
}

func startStoppableSSH(t *testing.T, o *OpenSSH, key string, rest ...string) *stoppableSSH {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &stoppableSSH{cmd: exec.CommandContext(ctx, "ssh", o.Args(key, rest...)...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGCONT); cancel(); <-p.done })
	return p
}

// logTime is the time of the first daemon log line containing every one of
// parts, polled for until deadline.
func (c *Cluster) logTime(deadline time.Time, parts ...string) (at time.Time, ok bool) {
	re := regexp.MustCompile(`time=(\S+)`)
	testutil.Poll(time.Until(deadline), func() bool {
		c.logMu.Lock()
		text := c.logs.String()
		c.logMu.Unlock()
		at, ok = firstLogTime(re, text, parts)
		return ok
	})
	return at, ok
}

// firstLogTime is the time (matched by re) of the first line of text
// containing every one of parts.
func firstLogTime(re *regexp.Regexp, text string, parts []string) (time.Time, bool) {
lines:
	for _, line := range strings.Split(text, "\n") {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue lines
			}
		}
		if m := re.FindStringSubmatch(line); m != nil {
			if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
				return at, true
			}
		}
	}
	return time.Time{}, false
}

// A stock ssh client stopped with SIGSTOP still has a kernel that ACKs
// TCP, so only the keepalive can tell it is gone. The gateway must drop
// it once it has been silent for alive_interval × alive_count_max, give
// or take half an interval, as the README's Limits section says; it
// used to take one to two intervals more (74-80 s instead of 45 s at the
// defaults). The silence is timed from the last thing the client sent (a
// keystroke whose echo came back) to the gateway's log line of the drop.
func TestKeepaliveDropsStoppedStockClient(t *testing.T) {
	const interval, count = 2 * time.Second, 2
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"},
		GatewayConfig: map[string]string{"gw1": "alive_interval = \"2s\"\nalive_count_max = 2\n"}})
	o := GatewayOpenSSH(t, c, "gw1")
	p := startStoppableSSH(t, o, o.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", o.At("pid"))
	re := regexp.MustCompile(`pid=(\d+)`)
	var pid int
	c.Eventually("the app's pid", func() bool {
		m := re.FindStringSubmatch(p.out.String())
		if m != nil {
			pid, _ = strconv.Atoi(m[1])
		}
		return m != nil
	})
	c.SessionOf(pid, control.StateAttached)
	lastSent := time.Now()
	io.WriteString(p.stdin, "last-words\r")
	c.Eventually("the echo of the last keystroke", func() bool { return strings.Contains(p.out.String(), "got:last-words") })
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	dropped, ok := c.logTime(time.Now().Add(time.Duration(count+10)*interval), "client stopped answering keepalives")
	if !ok {
		t.Fatal("the stopped client was never dropped")
	}
	silence := dropped.Sub(lastSent)
	t.Logf("stopped client dropped after %v of silence (alive_interval %v × alive_count_max %d)", silence, interval, count)
	// By design at most count+½ intervals; the rest is room for a loaded
	// machine. The old schedule needed at least count+1 intervals.
	if limit := time.Duration(count)*interval + interval*9/10; silence > limit {
		t.Errorf("dropped after %v of silence, want at most %v (%v × %d and half an interval, plus noise)", silence, limit, interval, count)
	}
	c.SessionOf(pid, control.StateDetached)
	p.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Error("the resumed ssh client did not notice its connection was closed")
	}
}
