package e2e

// The stock client logging in over and over while brokers fail, for the
// high-availability tests.

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// login is one stock ssh login: when it started and ended, its exit
// status and stderr.
type login struct {
	start, end time.Time
	code       int
	ok         bool
	stderr     string
}

// runLogin logs alice in with the stock ssh, running `echo hi` without a
// PTY: it succeeds when ssh exits 0 having printed hi.
func runLogin(o *OpenSSH, key string) login {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := login{start: time.Now()}
	cmd := exec.CommandContext(ctx, "ssh", o.Args(key, "-T", "-o", "LogLevel=ERROR", o.At("alice"), "echo", "hi")...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	l.end, l.stderr = time.Now(), errOut.String()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		l.code = ee.ExitCode()
	default:
		l.code = -1
		l.stderr += err.Error()
	}
	l.ok = l.code == 0 && out.String() == "hi\n"
	return l
}

// loginLoop starts a login every interval, each in its own ssh process,
// whether or not the previous ones have ended.
type loginLoop struct {
	mu      sync.Mutex
	logins  []login
	running map[int]time.Time // start of the logins under way, by number
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startLogins(o *OpenSSH, key string, every time.Duration) *loginLoop {
	l := &loginLoop{stop: make(chan struct{}), running: map[int]time.Time{}}
	l.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-l.stop:
				return
			case <-t.C:
			}
			l.mu.Lock()
			l.running[n] = time.Now()
			l.mu.Unlock()
			l.wg.Go(func() {
				x := runLogin(o, key)
				l.mu.Lock()
				l.logins = append(l.logins, x)
				delete(l.running, n)
				l.mu.Unlock()
			})
		}
	})
	return l
}

// waitEnded waits until every login started before t has ended.
func (l *loginLoop) waitEnded(t time.Time) {
	for {
		l.mu.Lock()
		pending := false
		for _, start := range l.running {
			pending = pending || start.Before(t)
		}
		l.mu.Unlock()
		if !pending {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// halt stops starting logins and waits for those running.
func (l *loginLoop) halt() []login {
	close(l.stop)
	l.wg.Wait()
	return l.logins
}

// firstSuccessAfter is the end of the first successful login started at
// or after t, if one has ended.
func (l *loginLoop) firstSuccessAfter(t time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, x := range l.logins {
		if x.ok && !x.start.Before(t) && (first.IsZero() || x.end.Before(first)) {
			first = x.end
		}
	}
	return first, !first.IsZero()
}

var ptyPIDRE = regexp.MustCompile(`pid=(\d+)`)

// ptyPID is the pid the pid app printed first.
func ptyPID(t *testing.T, p *sshProc) int {
	t.Helper()
	p.WaitFor("pid=")
	p.WaitFor("\n")
	m := ptyPIDRE.FindStringSubmatch(p.Stdout())
	if m == nil {
		t.Fatalf("no pid in %q", p.Stdout())
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}
