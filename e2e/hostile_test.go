package e2e

import (
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/testutil"
)

// hostile is one misbehaving client: what it does to the gateway.
type hostile int

const (
	garbage          hostile = iota // random bytes, then hang up
	versionGarbage                  // a valid version line, then random bytes
	stallAfterHello                 // a version line, then silence
	hangUpAtOnce                    // connect and close
	quitMidHandshake                // a real SSH client cut off at a random moment
	nHostile
)

func (h hostile) String() string {
	return [...]string{"garbage", "version+garbage", "stall", "hang-up", "quit mid-handshake"}[h]
}

// attack runs one hostile client against addr. Stalled connections are
// returned so the caller can hang them up at the end.
func attack(h hostile, addr string, rng *mrand.Rand) net.Conn {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil
	}
	junk := make([]byte, 1+rng.IntN(4096))
	rand.Read(junk)
	switch h {
	case garbage:
		c.Write(junk)
	case versionGarbage:
		c.Write(append([]byte("SSH-2.0-hostile\r\n"), junk...))
	case stallAfterHello:
		c.Write([]byte("SSH-2.0-stall\r\n"))
		return c
	case quitMidHandshake:
		time.AfterFunc(time.Duration(rng.IntN(20))*time.Millisecond, func() { c.Close() })
		ssh.NewClientConn(c, addr, &ssh.ClientConfig{User: "alice", HostKeyCallback: ssh.InsecureIgnoreHostKey(),
			Auth: []ssh.AuthMethod{ssh.Password("x")}})
	}
	c.Close()
	return nil
}

// settle waits for the goroutine count to fall to at most want.
func settle(want int) (int, bool) {
	ok := testutil.Poll(20*time.Second, func() bool { return runtime.NumGoroutine() <= want })
	return runtime.NumGoroutine(), ok
}

// steady waits until the goroutine count stops changing (or 5 s pass)
// and returns it.
func steady() int {
	prev := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == prev {
			return n
		}
		prev = n
	}
	return prev
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// runRealUser logs alice in and runs an app, as a real user among the
// attackers would, giving up after 20 s. It runs in a goroutine of its
// own, so it returns what went wrong instead of failing the test.
func runRealUser(c *Cluster) error {
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	defer client.Close()
	giveUp := time.AfterFunc(20*time.Second, func() { client.Close() })
	defer giveUp.Stop()
	s, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("open a session: %w", err)
	}
	defer s.Close()
	if out, err := s.Output("echo real user"); err != nil || string(out) != "real user\n" {
		return fmt.Errorf("the app printed %q (%v)", out, err)
	}
	return nil
}

// TestThousandHostileConnections sends 1,000 connections that send
// garbage, stall mid-handshake or hang up at random points, while a real
// user logs in and runs an app; afterwards goroutines and heap are back
// to where they were.
func TestThousandHostileConnections(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	addr := c.GatewayAddr("gw1")
	warm, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	Open(t, warm, "echo warm", "", 0, 0).Wait()
	warm.Close()
	baseGoroutines := steady()
	baseHeap := heapInUse()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var stalled []net.Conn
	count := map[hostile]int{}
	realUser := make(chan error, 1)
	sem := make(chan struct{}, 64)
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		h := hostile(i % int(nHostile))
		count[h]++
		go func() {
			defer func() { <-sem; wg.Done() }()
			rng := mrand.New(mrand.NewPCG(uint64(i), 7))
			if conn := attack(h, addr, rng); conn != nil {
				mu.Lock()
				stalled = append(stalled, conn)
				mu.Unlock()
			}
		}()
		if i == 500 { // a real user in the middle of it all
			wg.Add(1)
			go func() { defer wg.Done(); realUser <- runRealUser(c) }()
		}
	}
	wg.Wait()
	if err := <-realUser; err != nil {
		t.Errorf("a real user during the attack: %v", err)
	}
	t.Logf("attacks: %v; %d connections stalled mid-handshake", fmt.Sprint(count), len(stalled))
	for _, conn := range stalled {
		conn.Close()
	}
	if n, ok := settle(baseGoroutines + 5); !ok {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after the attack, %d before:\n%s", n, baseGoroutines, buf[:runtime.Stack(buf, true)])
	}
	if h := heapInUse(); h > baseHeap+8<<20 {
		t.Fatalf("heap in use %d MiB after the attack, %d MiB before", h>>20, baseHeap>>20)
	}
}
