package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"switchyard/broker"
	"switchyard/config"
	"switchyard/daemon"
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
	// Room for the logins that pile up while no broker leads, and then
	// all start at once: this test is about failover, not capacity (with
	// 50 a server, a burst on a slow machine filled one).
	h := newHACluster(t, []string{"gw1", "gw2"}, []string{"s1", "s2"}, procOptions{MaxSessions: 1000})
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
		h.Start(leader.name) // at once: it campaigns again, behind the others
		var back time.Time
		h.Eventually(fmt.Sprintf("a login after kill %d of the leader (%s)", i+1, leader.name), func() bool {
			var ok bool
			back, ok = loop.firstSuccessAfter(killed)
			return ok
		})
		failovers = append(failovers, back.Sub(killed))
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
	t.Logf("%d kills of the leader: failover p50 %v, max %v; %d logins, %d failed %v; %v so far",
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

	// Last, the leader and the other app server die together: the new
	// leader, warm from the servers' reports, never places on the dead
	// one.
	dead := map[string]string{"s1": "s2", "s2": "s1"}[h.serverOf(pid)]
	cs = h.waitCandidates(nil)
	killed := time.Now()
	h.Signal(cs[0].name, syscall.SIGKILL)
	h.Signal(dead, syscall.SIGKILL)
	for ok, tries := 0, 0; ok < 4; tries++ {
		x := runLogin(o, key)
		switch {
		case x.ok:
			ok++
		case tries > 8 || x.code != 69 || x.stderr != "switchyard: broker unavailable\n":
			t.Fatalf("login after kill -9 of %s and %s: exit %d, stderr %q", cs[0].name, dead, x.code, x.stderr)
		}
	}
	leader := h.waitNewLeader(cs[0])
	st, err := h.statusOf(leader.name)
	if err != nil {
		t.Fatal(err)
	}
	placed := 0
	for _, d := range st.Decisions {
		if d.Time.After(killed) && d.Server != "" {
			placed++
			if d.Server == dead {
				t.Errorf("the new leader %s placed on %s, killed with it: %+v", leader.name, dead, d)
			}
		}
	}
	if placed < 4 {
		t.Fatalf("the new leader %s lists %d placements since the kill, want at least 4", leader.name, placed)
	}
	t.Logf("test ran %v", time.Since(began).Round(time.Millisecond))
}

// statusOf is broker node's own status view.
func (h *haCluster) statusOf(node string) (broker.Status, error) {
	var out bytes.Buffer
	err := daemon.Broker(context.Background(), []string{"status", "-json", "-node", node, "-config", h.Config}, daemon.Env{Stdout: &out})
	if err != nil && !errors.Is(err, daemon.ErrDegraded) {
		return broker.Status{}, err
	}
	var st broker.Status
	return st, json.Unmarshal(out.Bytes(), &st)
}

// waitNewLeader waits until a broker other than the one of key gone
// campaigns first, and returns it.
func (h *haCluster) waitNewLeader(gone candidate) candidate {
	h.t.Helper()
	var cs []candidate
	h.Eventually("a new leader", func() bool {
		var err error
		cs, err = h.candidates()
		return err == nil && len(cs) > 0 && !slices.Contains(cs, gone)
	})
	return cs[0]
}

// TestHAReservationAndDrainSurvive: a redirected client whose app was
// pre-launched follows its hint while the leader that reserved it has
// just been killed with -9, and lands in the reserved PID through the new
// leader, which lists the session and resumes it; a drain made with the
// CLI survives the kill -9 and restart of all three brokers at once.
func TestHAReservationAndDrainSurvive(t *testing.T) {
	began := time.Now()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	h := newHACluster(t, []string{"gw1", "gw2", "gw3"}, []string{"s1", "s2"}, drainRedirectOptions)
	drainedAt, hi, target := drainAndRedirect(t, h.ProcCluster)

	// The leader that reserved it dies; the client follows the hint at
	// once: the gateway waits for the new leader, whose first placements
	// must already know the reservation.
	cs := h.waitCandidates(nil)
	h.Signal(cs[0].name, syscall.SIGKILL)
	killed := time.Now()
	o1 := h.openSSH(target)
	key1 := o1.Key(t, "alice", h.Alice)
	p := startSSH(t, o1, key1, "-tt", "-o", "LogLevel=ERROR", "-p", hi.port, hi.login+"@"+hi.host)
	p.WaitFor("waited pid=" + strconv.Itoa(hi.pid) + " ")
	t.Logf("the redirected client landed in the reserved pid %d %v after kill -9 of %s", hi.pid,
		time.Since(killed).Round(time.Millisecond), cs[0].name)
	p.Write("after-kill\r")
	p.WaitFor("after-kill")
	leader := h.waitNewLeader(cs[0])

	// sessions and resume through the new leader.
	out, errOut, code := o1.Run(t, nil, key1, "-T", "-o", "LogLevel=ERROR", o1.At("alice"), "sessions")
	if code != 0 || !regexp.MustCompile(`(?m)^`+hi.session+`\s+held\s+s1\s+attached\s`).Match(out) {
		t.Fatalf("sessions through the new leader %s: exit %d, stdout %q, stderr %q", leader.name, code, out, errOut)
	}
	p.kill() // the client goes: the terminal session detaches
	h.Eventually("the held session to detach", func() bool {
		st, err := h.status()
		if err != nil {
			return false
		}
		for _, s := range st.Sessions {
			if s.ID == hi.session && s.State == "detached" {
				return true
			}
		}
		return false
	})
	back := startSSH(t, o1, key1, "-tt", "-o", "LogLevel=ERROR", o1.At("alice"), "resume", hi.session)
	back.Write("resumed\r")
	back.WaitFor("resumed")
	h.Eventually("the resumed session attached, same pid", func() bool {
		st, err := h.status()
		if err != nil {
			return false
		}
		for _, s := range st.Sessions {
			if s.ID == hi.session && s.PID == hi.pid && s.State == "attached" {
				return true
			}
		}
		return false
	})

	// Every broker dies at once and starts again: the drain holds.
	h.Start(cs[0].name)
	old := h.waitCandidates([]candidate{cs[0]})
	for _, b := range haBrokers {
		h.Signal(b, syscall.SIGKILL)
	}
	for _, b := range haBrokers {
		h.Start(b)
	}
	h.waitCandidates(old)
	st, err := h.status()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Servers {
		if s.Name == "s2" && (!s.Draining || s.DrainedBy != me.Username ||
			s.DrainedAt.Before(drainedAt.Add(-5*time.Second)) || s.DrainedAt.After(drainedAt)) {
			t.Fatalf("s2 after every broker restarted: %+v; want drained by %s at about %v", s, me.Username, drainedAt)
		}
	}
	h.WaitUp()
	client := h.Dial("gw3")
	for range 4 {
		x := Open(t, client, "pid", "xterm", 24, 80)
		x.WaitFor("24 80")
		if got := h.serverOf(lastPID(t, x)); got != "s1" {
			t.Fatalf("placed on %s after every broker restarted; s2 is drained", got)
		}
		x.Session.Close()
	}
	t.Logf("test ran %v", time.Since(began).Round(time.Millisecond))
}

// TestHAQuorumLoss: with one of the three etcd members stopped, logins
// work as before; with two stopped, no broker
// places (every login gets the one line, status 69) and a running
// session goes on; once they are back, logins work again with nothing
// restarted.
func TestHAQuorumLoss(t *testing.T) {
	began := time.Now()
	h := newHACluster(t, []string{"gw1"}, []string{"s1", "s2"}, procOptions{})
	o := h.openSSH("gw1")
	key := o.Key(t, "alice", h.Alice)
	if x := runLogin(o, key); !x.ok {
		t.Fatalf("login with quorum: exit %d, stderr %q", x.code, x.stderr)
	}
	pty := startSSH(t, o, key, "-tt", "-o", "LogLevel=ERROR", o.At("pid"))
	pid := ptyPID(t, pty)

	// Two followers go, one after the other (a member stops only once its
	// clients' streams end or etcd's request timeout, 7 s here, passes; a
	// leader stopped would hand its leadership over first).
	stopping := time.Now()
	followers := h.etcd.Followers()
	if len(followers) != 2 {
		t.Fatalf("etcd followers %v, want two", followers)
	}
	// One member down: nothing visible.
	h.etcd.Stop(followers[0])
	for range 3 {
		if x := runLogin(o, key); !x.ok {
			t.Fatalf("login with one etcd member down: exit %d, stderr %q", x.code, x.stderr)
		}
	}
	h.etcd.Stop(followers[1])
	lost := time.Now()
	t.Logf("two etcd members stopped in %v", lost.Sub(stopping).Round(time.Millisecond))
	// Until the leader's lease is no longer proven alive, it may still
	// place; then nobody does. Logins one after the other until the
	// first refusal.
	var refused time.Duration
	for refused == 0 {
		x := runLogin(o, key)
		switch {
		case x.ok:
		case x.code == 69 && x.stderr == "switchyard: broker unavailable\n":
			refused = x.end.Sub(lost)
		default:
			t.Fatalf("login during quorum loss: exit %d, stderr %q", x.code, x.stderr)
		}
		if time.Since(lost) > 20*time.Second {
			t.Fatalf("logins still placed %v after quorum was lost", time.Since(lost))
		}
	}
	// From then on, no broker places: a login waits for a leader
	// (transport.DefaultLeaderWait), then gets the one line; no broker
	// has placed since.
	if x := runLogin(o, key); x.ok || x.code != 69 || x.stderr != "switchyard: broker unavailable\n" {
		t.Fatalf("login after the first refusal: exit %d, stdout ok %v, stderr %q", x.code, x.ok, x.stderr)
	}
	for _, b := range haBrokers {
		st, err := h.statusOf(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range st.Decisions {
			if d.Time.After(lost.Add(refused)) && d.Server != "" {
				t.Errorf("%s placed after the first refusal: %+v", b, d)
			}
		}
	}
	pty.Write("no-quorum\r")
	pty.WaitFor("got:no-quorum")

	noQuorum := time.Since(lost)
	h.etcd.RestartAll()
	back := time.Now()
	t.Logf("quorum lost for %v; the members took %v to be ready again", noQuorum.Round(time.Millisecond), back.Sub(lost.Add(noQuorum)).Round(time.Millisecond))
	var again time.Duration
	h.Eventually("logins again once quorum is back", func() bool {
		x := runLogin(o, key)
		again = x.end.Sub(back)
		return x.ok
	})
	pty.Write("quorum-back\r")
	pty.WaitFor("got:quorum-back")
	if gone(pid) {
		t.Fatalf("the PTY session's process %d is gone", pid)
	}
	t.Logf("quorum lost: first refusal %v after (lease bound, then the gateway's 4 s leader wait), the next one after the leader wait; quorum back: a login succeeded %v after the members were ready; test ran %v",
		refused.Round(time.Millisecond), again.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}
