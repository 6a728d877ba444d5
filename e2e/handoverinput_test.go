package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/daemon"
	"switchyard/internal/testutil"
)

// perlLines echoes each line it reads as "got:LINE", with the terminal's
// own echo off, so that only what reached the app is shown.
const perlLines = `[app.lines]
argv = ["perl", "-e", "system(\"stty -echo\"); $| = 1; print \"ready\\n\"; while (<STDIN>) { print \"got:$_\" }"]
user = "nobody"
cpu = 0.001
`

var gotLineRE = regexp.MustCompile(`got:k=(\d+)\r`)

// typeLines types "k=1", "k=2", ... into r every few milliseconds until
// stop is closed, and returns the last number typed on done.
func typeLines(r *Run, stop <-chan struct{}) <-chan int {
	done := make(chan int, 1)
	go func() {
		k := 0
		defer func() { done <- k }()
		tick := time.NewTicker(3 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := fmt.Fprintf(r.Stdin, "k=%d\r", k+1); err != nil {
				return
			}
			k++
		}
	}()
	return done
}

// linesSession is a cluster of processes whose gateway rides through an
// appd restart (handed over for up to a minute) and a session of the
// lines app through it, ready.
func linesSession(t *testing.T) (*ProcCluster, *Run) {
	t.Helper()
	c := newProcCluster(t, []string{"gw1"}, []string{"s1"}, procOptions{
		GatewayConfig: map[string]string{"gw1": testLimits(rideDefault) + rideDefault},
		ServerConfig:  map[string]string{"s1": "handover = \"1m\"\n"},
		Extra:         perlLines, ExtraApps: []string{"lines"}})
	r := Open(t, c.Dial("gw1"), "lines", "xterm", 24, 80)
	r.WaitFor("ready")
	return c, r
}

// typingSession starts a cluster of one gateway and one app server and
// a session of the lines app there, typed into until stop is closed
// (typed then gives the last line's number); it returns once the app has
// echoed 20 lines.
func typingSession(t *testing.T) (*ProcCluster, *Run, chan struct{}, <-chan int) {
	t.Helper()
	c, r := linesSession(t)
	stop := make(chan struct{})
	typed := typeLines(r, stop)
	r.WaitFor("got:k=20\r")
	return c, r, stop, typed
}

// TestAppdRestartKeepsTypedInput: a user types a line every 3 ms while
// appd is restarted gracefully five times (SIGTERM, a new appd at once):
// every line reaches the app once, in order, and the user is told
// nothing. Lines in flight at each handover are resent by the gateway
// from the count appd hands over.
func TestAppdRestartKeepsTypedInput(t *testing.T) {
	c, r, stop, typed := typingSession(t)
	for range 5 {
		rides := rodeThrough(c, "gw1")
		c.stop("s1", syscall.SIGTERM)
		c.Start("s1")
		c.Eventually("the session to ride through", func() bool { return rodeThrough(c, "gw1") > rides })
		out, _ := r.Output()
		r.WaitFor(fmt.Sprintf("got:k=%d\r", lastGot(out)+20)) // typing goes on after it
	}
	close(stop)
	last := <-typed
	r.WaitFor(fmt.Sprintf("got:k=%d\r", last))
	out, errOut := r.Output()
	checkLines(t, out, last)
	if errOut != "" {
		t.Errorf("the user was told %q", errOut)
	}
	t.Logf("%d lines typed through 5 graceful appd restarts, each received once, in order", last)
}

// lastGot is the last k the app echoed in out.
func lastGot(out string) int {
	m := gotLineRE.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return 0
	}
	k, _ := strconv.Atoi(m[len(m)-1][1])
	return k
}

// checkLines fails unless out echoes k=1 ... k=last once each, in order.
func checkLines(t *testing.T, out string, last int) {
	t.Helper()
	want := 1
	for _, m := range gotLineRE.FindAllStringSubmatch(out, -1) {
		k, _ := strconv.Atoi(m[1])
		if k != want {
			t.Fatalf("the app got line k=%d where k=%d was due: input lost or repeated (around %q)",
				k, want, around(out, m[0]))
		}
		want++
	}
	if want != last+1 {
		t.Fatalf("the app got %d lines, %d were typed", want-1, last)
	}
}

// around is the text of out near the first s, for a failure message.
func around(out, s string) string {
	i := strings.Index(out, s)
	return out[max(i-80, 0):min(i+80, len(out))]
}

// TestAppdKill9TellsOfInputInDoubt: after kill -9 of appd the new one
// cannot say what input the dead one wrote to the terminal, so a user
// typing at that moment is told, in one line, that it may not have
// arrived; nothing reaches the app twice.
func TestAppdKill9TellsOfInputInDoubt(t *testing.T) {
	c, r, stop, typed := typingSession(t)
	c.Signal("s1", syscall.SIGKILL)
	c.Start("s1")
	c.Eventually("the session to ride through", func() bool { return rodeThrough(c, "gw1") > 0 })
	out, _ := r.Output()
	r.WaitFor(fmt.Sprintf("got:k=%d\r", lastGot(out)+20))
	close(stop)
	last := <-typed
	r.WaitFor(fmt.Sprintf("got:k=%d\r", last))
	out, errOut := r.Output()
	prev := 0
	for _, m := range gotLineRE.FindAllStringSubmatch(out, -1) {
		k, _ := strconv.Atoi(m[1])
		if k <= prev {
			t.Fatalf("line k=%d reached the app after k=%d: repeated", k, prev)
		}
		prev = k
	}
	if want := "switchyard: server s1 restarted; what you typed just before may not have arrived\r\n"; errOut != want {
		t.Fatalf("the user was told %q, want %q", errOut, want)
	}
}

// TestWatchGoesOnAcrossAppdRestart: an administrator's `broker watch`
// goes on through a graceful appd restart and a kill -9: what the user
// types after each is shown, and the user is told of the watch once.
func TestWatchGoesOnAcrossAppdRestart(t *testing.T) {
	c, r := linesSession(t)
	var id string
	c.Eventually("the session in the broker's status", func() bool {
		st, err := c.status()
		for _, s := range st.Sessions {
			id = s.ID
		}
		return err == nil && id != ""
	})
	var seen, said testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() {
		watched <- daemon.Broker(ctx, []string{"watch", "-config", c.Config, id}, daemon.Env{Stdin: strings.NewReader(""), Stdout: &seen, Stderr: &said})
	}()
	defer func() { cancel(); <-watched }()
	r.WaitFor("an administrator is watching")
	for i, sig := range []syscall.Signal{0, syscall.SIGTERM, syscall.SIGKILL} {
		if sig != 0 {
			rides := rodeThrough(c, "gw1")
			c.stop("s1", sig)
			c.Start("s1")
			c.Eventually("the session to ride through", func() bool { return rodeThrough(c, "gw1") > rides })
		}
		line := fmt.Sprintf("got:k=%d\r", i+1)
		fmt.Fprintf(r.Stdin, "k=%d\r", i+1)
		r.WaitFor(line)
		c.Eventually("the watcher to see "+line, func() bool { return strings.Contains(seen.String(), line) })
	}
	if out, _ := r.Output(); strings.Count(out, "an administrator is watching") != 1 {
		t.Errorf("the user was told of the watch %d times, want once", strings.Count(out, "an administrator is watching"))
	}
	select {
	case err := <-watched:
		t.Fatalf("the watch ended: %v; it said %q", err, said.String())
	default:
	}
}
