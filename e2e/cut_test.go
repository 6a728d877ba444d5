package e2e

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
)

// cutProxy forwards one TCP connection to a gateway until cut, then stops
// forwarding without closing anything: a network cut, not a hang-up.
type cutProxy struct {
	ln   net.Listener
	cut  chan struct{}
	once sync.Once
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, cut: make(chan struct{})}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		p.Cut()
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				return
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			go p.pipe(out, in)
			go p.pipe(in, out)
		}
	}()
	return p
}

// pipe copies src to dst until the cut; after it, it neither reads nor
// closes, so the peer sees silence.
func (p *cutProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.cut:
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err == io.EOF || err != nil {
			return
		}
	}
}

// Cut stops all forwarding.
func (p *cutProxy) Cut() { p.once.Do(func() { close(p.cut) }) }

func TestNetworkCutDetachesAndResumes(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"},
		GatewayConfig: map[string]string{"gw1": "alive_interval = \"200ms\"\nalive_count_max = 2"}})
	proxy := newCutProxy(t, c.GatewayAddr("gw1"))
	client, err := ssh.Dial("tcp", proxy.ln.Addr().String(), &ssh.ClientConfig{
		User: "alice", Auth: []ssh.AuthMethod{ssh.PublicKeys(c.Alice)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := Open(t, client, "pid", "xterm", 24, 80)
	r.WaitFor("24 80")
	pid := lastPID(t, r)
	c.SessionOf(pid, control.StateAttached)
	proxy.Cut()
	// The gateway stops hearing keepalive replies (every 200ms, 2 missed)
	// and closes the connection; appd detaches the session.
	c.SessionOf(pid, control.StateDetached)

	again, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	back := Open(t, again, "resume", "xterm", 24, 80)
	back.Stdin.Write([]byte("after-cut\r"))
	back.WaitFor("got:after-cut")
	if got := c.SessionOf(pid, control.StateAttached).PID; got != pid {
		t.Fatalf("resumed pid %d, want %d", got, pid)
	}
}
