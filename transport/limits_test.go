package transport

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/testutil"
)

// limitedServer is startServer's cluster served by a Server with a short
// handshake timeout, peers nodes and its log in a buffer.
func limitedServer(t *testing.T, timeout time.Duration, peers int) (*cluster, *Server, *testutil.Buffer) {
	t.Helper()
	c := startServer(t, echoChannels) // for its keys; its own server is not used
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	logs := &testutil.Buffer{}
	s := &Server{Signer: c.srv, HandshakeTimeout: timeout, Handler: echoChannels,
		Peers:  func() int { return peers },
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Authorize: func(k ssh.PublicKey) (string, bool) {
			return "cli", string(k.Marshal()) == string(c.cli.PublicKey().Marshal())
		}}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return c, s, logs
}

// serverAnswer reads conn until the server closes it, within d: banner
// reports whether it sent its version line first (it admitted the
// connection), closed whether it closed it within d.
func serverAnswer(conn net.Conn, d time.Duration) (banner, closed bool) {
	conn.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(conn)
	var ne net.Error
	return bytes.HasPrefix(got, []byte("SSH-2.0-")), !(errors.As(err, &ne) && ne.Timeout())
}

// One address flooding an internal listener with connections that never
// authenticate holds at most SourceLimit of them; the rest are closed
// before the handshake, the refusals are logged once per address and
// window, the admitted ones are closed after the handshake timeout, and a
// node connects again once they are.
func TestServerLimitsConnectionsPerSource(t *testing.T) {
	const peers, flood = 3, 200
	limit := SourceLimit(peers)
	c, s, logs := limitedServer(t, 500*time.Millisecond, peers)
	node, err := Dial(ctxT(t), Identity{"cli", c.cli}, "srv", c.addr, c.srv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	var conns []net.Conn
	for range flood {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("SSH-2.0-stall\r\n"))
		conns = append(conns, conn)
		if n := s.Conns(); n > limit {
			t.Fatalf("server holds %d connections, limit %d", n, limit)
		}
	}
	admitted := 0
	for _, conn := range conns {
		banner, closed := serverAnswer(conn, 10*time.Second)
		if !closed {
			t.Fatal("a connection that never authenticated was not closed after the handshake timeout")
		}
		if banner {
			admitted++
		}
	}
	if admitted > limit-1 { // the node holds one slot
		t.Errorf("%d of %d stalled connections got a handshake, limit %d", admitted, flood, limit)
	}
	testutil.Eventually(t, 15*time.Second, "the stalled connections' slots back", func() bool { return s.Conns() == 1 })
	again, err := Dial(ctxT(t), Identity{"cli", c.cli}, "srv", c.addr, c.srv.PublicKey())
	if err != nil {
		t.Fatalf("a node could not connect after the flood: %v", err)
	}
	again.Close()
	if n := strings.Count(logs.String(), "internal connection refused"); n != 1 {
		t.Errorf("%d refusal lines for one address, want 1:\n%s", n, logs)
	}
}

// The limit admits every node sharing one address.
func TestSourceLimitScalesWithPeers(t *testing.T) {
	for peers, want := range map[int]int{0: 8, 1: 8, 2: 8, 3: 12, 100: 400} {
		if got := SourceLimit(peers); got != want {
			t.Errorf("SourceLimit(%d) = %d, want %d", peers, got, want)
		}
	}
	c, _, _ := limitedServer(t, 10*time.Second, 3)
	for i := range SourceLimit(3) {
		client, err := Dial(ctxT(t), Identity{"cli", c.cli}, "srv", c.addr, c.srv.PublicKey())
		if err != nil {
			t.Fatalf("connection %d of %d refused: %v", i+1, SourceLimit(3), err)
		}
		defer client.Close()
	}
}
