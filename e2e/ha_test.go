package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"switchyard/config"
	"switchyard/internal/etcdtest"
)

// haCluster is a process cluster of three brokers (broker, b2, b3), each
// its own process, on a three-member etcd embedded in the test process,
// which the test also reads to see who leads.
type haCluster struct {
	*ProcCluster
	etcd *etcdtest.Cluster
	kv   *clientv3.Client
}

// haBrokers are the brokers of an haCluster.
var haBrokers = []string{"broker", "b2", "b3"}

// newHACluster starts etcd, then the brokers, servers and gateways as
// processes, and waits until every broker campaigns. Gateways get the
// test limits: the tests log one user in many times from one address.
func newHACluster(t *testing.T, gateways, servers []string, opts procOptions) *haCluster {
	t.Helper()
	e := etcdtest.Start(t, 3)
	opts.Brokers, opts.Etcd = haBrokers[1:], e.Endpoints()
	gwc := map[string]string{}
	for _, g := range gateways {
		gwc[g] = opts.GatewayConfig[g] + "\n" + testLimits(opts.GatewayConfig[g])
	}
	opts.GatewayConfig = gwc
	kv, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	h := &haCluster{ProcCluster: newProcCluster(t, gateways, servers, opts), etcd: e, kv: kv}
	h.waitCandidates(nil)
	return h
}

// candidate is a broker running for leader: its key under the prefix's
// leader/ and its name.
type candidate struct{ key, name string }

// candidates lists the brokers running for leader as etcd has them,
// oldest first: the first leads (or will, once its lease is proven).
func (h *haCluster) candidates() ([]candidate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := h.kv.Get(ctx, config.DefaultEtcdPrefix+"leader/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, kv := range resp.Kvs {
		var v struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("leader key %s: %w", kv.Key, err)
		}
		out = append(out, candidate{key: string(kv.Key), name: v.Name})
	}
	return out, nil
}

// waitCandidates waits until the three brokers, and only they, campaign
// with none of the keys in gone (those of killed brokers, whose leases
// must expire first), and returns them, the leader first.
func (h *haCluster) waitCandidates(gone []candidate) []candidate {
	h.t.Helper()
	var cs []candidate
	h.Eventually("three brokers campaigning", func() bool {
		var err error
		cs, err = h.candidates()
		if err != nil || len(cs) != len(haBrokers) {
			return false
		}
		var names []string
		for _, c := range cs {
			if slices.Contains(gone, c) {
				return false
			}
			names = append(names, c.name)
		}
		sort.Strings(names)
		return slices.Equal(names, slices.Sorted(slices.Values(haBrokers)))
	})
	return cs
}

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

// haKills is how many times TestHAFailover kills the leader.
const haKills = 10

// TestHAFailover: three brokers on a three-member etcd, a stock ssh
// client logging in 20 times a second, and the leader killed with -9
// ten times (each restarted, so that three always run but for the
// failover itself). Each time a login succeeds again, through the new
// leader, within a bound; a PTY session opened before the first kill
// runs through all of them: same PID, still echoing; `sessions` lists it
// through the last leader.
func TestHAFailover(t *testing.T) {
	began := time.Now()
	h := newHACluster(t, []string{"gw1", "gw2"}, []string{"s1", "s2"}, procOptions{})
	o := h.openSSH("gw1")
	key := o.Key(t, "alice", h.Alice)
	if x := runLogin(o, key); !x.ok {
		t.Fatalf("login before any kill: exit %d, stderr %q", x.code, x.stderr)
	}
	o2 := h.openSSH("gw2")
	pty := startSSH(t, o2, o2.Key(t, "alice", h.Alice), "-tt", "-o", "LogLevel=ERROR", o2.At("pid"))
	pid := ptyPID(t, pty)
	t.Logf("cluster up in %v; PTY session pid %d", time.Since(began).Round(time.Millisecond), pid)

	loop := startLogins(o, key, 50*time.Millisecond)
	var failovers []time.Duration
	cs := h.waitCandidates(nil)
	for i := range haKills {
		leader := cs[0]
		killed := time.Now()
		h.Signal(leader.name, syscall.SIGKILL)
		var back time.Time
		h.Eventually(fmt.Sprintf("a login after kill %d of the leader (%s)", i+1, leader.name), func() bool {
			var ok bool
			back, ok = loop.firstSuccessAfter(killed)
			return ok
		})
		failovers = append(failovers, back.Sub(killed))
		h.Start(leader.name)
		pty.Write(fmt.Sprintf("kill%d\r", i+1))
		pty.WaitFor(fmt.Sprintf("got:kill%d", i+1))
		cs = h.waitCandidates([]candidate{leader})
		// The logins that waited out this failover end before the next
		// kill: each failover is measured alone.
		loop.waitEnded(time.Now())
		t.Logf("kill %d: %s killed, new leader %s, first login back after %v", i+1, leader.name, cs[0].name,
			failovers[i].Round(time.Millisecond))
	}
	logins := loop.halt()
	sorted := slices.Sorted(slices.Values(failovers))
	failed := 0
	codes := map[string]int{}
	for _, x := range logins {
		if !x.ok {
			failed++
			codes[fmt.Sprintf("%d %q", x.code, x.stderr)]++
		}
	}
	t.Logf("%d kills of the leader: failover p50 %v, max %v; %d logins, %d failed %v; test ran %v",
		haKills, percentile(sorted, 0.5).Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond),
		len(logins), failed, codes, time.Since(began).Round(time.Millisecond))
	for i, d := range failovers {
		// A correctness bound for a loaded 2-core machine; the target
		// (lease 3s, new logins back within 5s) is in the log above.
		if d > 10*time.Second {
			t.Errorf("kill %d: logins back only after %v", i+1, d)
		}
	}
	for _, x := range logins {
		if !x.ok && (x.code != 69 || x.stderr != "switchyard: broker unavailable\n") {
			t.Errorf("a login failed otherwise than with the one line: exit %d, stderr %q", x.code, x.stderr)
		}
	}

	pty.Write("after-all\r")
	pty.WaitFor("got:after-all")
	if gone(pid) {
		t.Fatalf("the PTY session's process %d is gone", pid)
	}
	out, errOut, code := o.Run(t, nil, key, "-T", "-o", "LogLevel=ERROR", o.At("alice"), "sessions")
	if code != 0 || !regexp.MustCompile(`(?m)^\S+\s+pid\s+s[12]\s+attached\s`).Match(out) {
		t.Fatalf("sessions through the last leader: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
