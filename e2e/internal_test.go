package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/config"
	"switchyard/control"
	"switchyard/transport"
)

// openFDs is the number of descriptors process pid holds open.
func openFDs(t testing.TB, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// fdPeaks samples the descriptors of some processes until stopped and
// keeps the most each held.
type fdPeaks struct {
	t    testing.TB
	pids map[string]int
	mu   sync.Mutex
	peak map[string]int
	stop chan struct{}
	done chan struct{}
}

func watchFDs(t testing.TB, pids map[string]int) *fdPeaks {
	p := &fdPeaks{t: t, pids: pids, peak: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			p.sample()
			select {
			case <-p.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *fdPeaks) sample() {
	for name, pid := range p.pids {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		p.mu.Lock()
		p.peak[name] = max(p.peak[name], len(fds))
		p.mu.Unlock()
	}
}

// Stop ends the sampling and returns the peaks.
func (p *fdPeaks) Stop() map[string]int {
	close(p.stop)
	<-p.done
	return p.peak
}

// internalFlood opens n connections to addr that never authenticate: a
// quarter stay silent, a quarter send a version line and stall, a quarter
// send garbage, a quarter are SSH clients cut off mid-handshake. Those
// the server has not closed are returned, still open.
func internalFlood(addr string, n int) []net.Conn {
	var mu sync.Mutex
	var held []net.Conn
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rng := mrand.New(mrand.NewPCG(uint64(i), 13))
			var conn net.Conn
			switch i % 4 {
			case 0, 1, 2:
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return
				}
				conn = c
				if i%4 == 1 {
					c.Write([]byte("SSH-2.0-stall\r\n"))
				} else if i%4 == 2 {
					junk := make([]byte, 1+rng.IntN(200))
					for j := range junk {
						junk[j] = byte('a' + rng.IntN(26))
					}
					c.Write(junk) // no newline: the server waits for the rest of its version line
				}
			case 3:
				attack(quitMidHandshake, addr, rng)
				return
			}
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
		})
	}
	wg.Wait()
	return held
}

// closedByPeer reports whether the other end closed conn within d.
func closedByPeer(conn net.Conn, d time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestInternalListenerFlood floods appd's and the broker's internal
// listeners with 1,000 connections each from 127.0.0.1, the address every
// node of the cluster shares: each holds at most its per-address limit of
// them, closes the ones it took when its handshake timeout ends, logs the
// refusals once per address and window, and the cluster serves a new
// session during and after the flood.
func TestInternalListenerFlood(t *testing.T) {
	c := NewProcCluster(t, []string{"gw1"}, []string{"s1"})
	client := c.Dial("gw1")
	run := func(when string) {
		t.Helper()
		r := Open(t, client, "echo "+when, "", 0, 0)
		if status, _ := r.Wait(); status != 0 {
			t.Fatalf("a session %s the flood: status %d", when, status)
		}
		if out, _ := r.Output(); out != when+"\n" {
			t.Fatalf("a session %s the flood printed %q", when, out)
		}
	}
	run("before") // gw1 connects to s1 now; its connection carries the later sessions
	pids := map[string]int{"s1": c.procs["s1"].Process.Pid, "broker": c.procs["broker"].Process.Pid}
	base := map[string]int{}
	for name, pid := range pids {
		base[name] = openFDs(t, pid)
	}
	// One gateway may connect to appd; the gateway and the server to the broker.
	limits := map[string]int{"s1": transport.SourceLimit(1), "broker": transport.SourceLimit(2)}
	addrs := map[string]string{"s1": c.cfg.Servers["s1"].Listen, "broker": c.cfg.Broker.Listen}

	peaks := watchFDs(t, pids)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var held []net.Conn
	for _, name := range []string{"s1", "broker"} {
		wg.Go(func() {
			conns := internalFlood(addrs[name], 1000)
			mu.Lock()
			held = append(held, conns...)
			mu.Unlock()
		})
	}
	wg.Wait()
	defer func() {
		for _, conn := range held {
			conn.Close()
		}
	}()
	run("during")
	peak := peaks.Stop()
	for name := range pids {
		t.Logf("%s: %d descriptors before the flood, at most %d during it (limit %d connections per address)",
			name, base[name], peak[name], limits[name])
		// Room for a session's PTY and pipes and the runtime's own.
		if peak[name] > base[name]+limits[name]+24 {
			t.Errorf("%s held %d descriptors during a flood of 1,000 connections, %d before; limit %d",
				name, peak[name], base[name], limits[name])
		}
	}
	var closed sync.WaitGroup
	for _, conn := range held {
		closed.Go(func() {
			if !closedByPeer(conn, 30*time.Second) {
				t.Error("a connection that never authenticated is still open 30s into the flood")
			}
		})
	}
	closed.Wait()
	c.Eventually("descriptors back to their count before the flood", func() bool {
		for name, pid := range pids {
			if openFDs(t, pid) > base[name]+4 {
				return false
			}
		}
		return true
	})
	run("after")
	for name := range pids {
		logs, err := os.ReadFile(filepath.Join(c.Dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		refused := strings.Count(string(logs), "internal connection refused")
		failed := strings.Count(string(logs), "internal handshake")
		t.Logf("%s logged %d refusal lines and %d failed-handshake lines", name, refused, failed)
		if refused == 0 || refused > 6 || failed > 12 {
			t.Errorf("%s logged %d refusals and %d failed handshakes in full, want one per address and 10s window",
				name, refused, failed)
		}
	}
}

// asNode opens an internal connection to server as node, with node's own
// key from the cluster's state directory: what that node's daemon, or
// anyone holding its key, can open.
func (c *Cluster) asNode(node, server string) *ssh.Client {
	c.t.Helper()
	signer, err := config.EnsureKey(c.cfg.NodeSignerPath(node))
	if err != nil {
		c.t.Fatal(err)
	}
	key, err := c.cfg.NodeKey(server)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := transport.Dial(ctx, transport.Identity{Name: node, Signer: signer}, server, c.cfg.Servers[server].Listen, key)
	if err != nil {
		c.t.Fatalf("%s connecting to %s: %v", node, server, err)
	}
	c.t.Cleanup(func() { client.Close() })
	return client
}

// openAs opens a channel of typ with req as its extra data on client.
func openAs(t *testing.T, client *ssh.Client, typ string, req any) (ssh.Channel, error) {
	t.Helper()
	extra, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ch, reqs, err := client.OpenChannel(typ, extra)
	if err == nil {
		go ssh.DiscardRequests(reqs)
	}
	return ch, err
}

// wantUnreached checks that err refuses a channel of a gateway that does
// not reach the server.
func wantUnreached(t *testing.T, err error, what, gateway, server string) {
	t.Helper()
	var oce *ssh.OpenChannelError
	want := "no_server: gateway " + gateway + " does not reach server " + server
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited || oce.Message != want {
		t.Fatalf("%s from %s on %s: %v, want rejected: %q", what, gateway, server, err, want)
	}
}

// TestAppdAcceptsOnlyGatewaysThatReachIt: gw2, which does not reach s1,
// opens spawn and attach channels on s1's appd with its own node key:
// both are refused with the reason, logged, and the session it tried to
// take stays detached; the session is then resumed through gw2 the
// legitimate way, relayed by gw1 (stock ssh). Once a reload gives gw2 s1
// in its reach, s1 takes its channels.
func TestAppdAcceptsOnlyGatewaysThatReachIt(t *testing.T) {
	c, _, conn, pid := relayedCounter(t)
	conn.Close()
	s := c.SessionOf(pid, control.StateDetached)
	if s.Server != "s1" {
		t.Fatalf("detached session %+v, want it on s1", s)
	}

	gw2 := c.asNode("gw2", "s1")
	pty := &control.PtySpec{Term: "xterm", Rows: 24, Cols: 80}
	_, err := openAs(t, gw2, control.ChannelAttach, control.AttachRequest{ID: s.ID, User: "alice", Pty: pty, Gateway: "gw1"})
	wantUnreached(t, err, "an attach", "gw2", "s1")
	_, err = openAs(t, gw2, control.ChannelSpawn, control.SpawnRequest{App: "counter", User: "alice", Pty: pty})
	wantUnreached(t, err, "a spawn", "gw2", "s1")
	c.WaitLog("channel refused: gateway does not reach this server", "node=s1", "gateway=gw2")
	if now := c.SessionOf(pid, control.StateDetached); now.ID != s.ID {
		t.Fatalf("session %+v after the refused attach", now)
	}

	o := GatewayOpenSSH(t, c, "gw2")
	p := startSSH(t, o, o.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", o.At("alice"), "resume", s.ID)
	if at := c.SessionOf(pid, control.StateAttached); at.Gateway != "gw2" || at.ID != s.ID {
		t.Fatalf("resumed session %+v, want %s attached through gw2", at, s.ID)
	}
	p.Write("through the relay\r")
	p.WaitFor("n=1:through the relay pid=" + strconv.Itoa(pid))
	c.WaitLog("relay started", "node=gw1", "peer=gw2", "server=s1", "type="+control.ChannelAttach)
	p.Write("\x04")
	if code, _, errOut := p.Wait(); code != 0 || errOut != "" {
		t.Errorf("resumed session: exit %d, stderr %q", code, errOut)
	}
	waitGone(t, pid)

	c.editConfig(`reach = ["s2"]`, `reach = ["s1", "s2"]`)
	c.Reload("s1")
	c.Eventually("s1 to take gw2's spawn after the reload", func() bool {
		ch, err := openAs(t, gw2, control.ChannelSpawn, control.SpawnRequest{App: "echo", User: "alice", Args: []string{"hi"}})
		if err != nil {
			return false
		}
		ch.Close()
		return true
	})
}
