package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
)

// Each benchmark runs the same x/crypto/ssh client code against a
// Switchyard gateway (sub-benchmark "switchyard") and against a private
// stock OpenSSH sshd (sub-benchmark "sshd"), so that
// `go test -run '^$' -bench . ./e2e/` prints them side by side. They only
// report; nothing here asserts a time.

const (
	bulkSize  = 64 << 20 // bytes per op of the bulk benchmarks
	bulkChunk = 1 << 20  // write size of BulkNoPTY
)

// Target is where a benchmark connects, and what it runs there for each
// workload: "echo" prints "ready", "cat" copies stdin, "zeros" writes
// bulkSize zero bytes, "echoraw" sets its PTY raw, prints "ready\n" and
// copies stdin.
type Target struct {
	Addr    string
	Login   string
	Signer  ssh.Signer
	HostKey ssh.PublicKey
	Cmd     map[string]string
}

// switchyardCmds name the test apps (see testApps).
var switchyardCmds = map[string]string{"echo": "echo ready", "cat": "cat", "zeros": "zeros", "echoraw": "echoraw"}

// sshdCmds are the same workloads as command lines for sshd.
var sshdCmds = map[string]string{
	"echo":    "echo ready",
	"cat":     "cat",
	"zeros":   fmt.Sprintf("head -c %d /dev/zero", bulkSize),
	"echoraw": "sh -c 'stty raw -echo; echo ready; exec cat'",
}

// Dial opens a new SSH connection to the target.
func (tg Target) Dial(tb testing.TB) *ssh.Client {
	tb.Helper()
	c, err := ssh.Dial("tcp", tg.Addr, &ssh.ClientConfig{
		User:            tg.Login,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(tg.Signer)},
		HostKeyCallback: ssh.FixedHostKey(tg.HostKey),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		tb.Fatalf("dial %s: %v", tg.Addr, err)
	}
	return c
}

// sshdTarget starts a private sshd admitting a new key.
func sshdTarget(tb testing.TB) Target {
	signer := sshtest.NewSigner(tb)
	d := StartSSHD(tb, signer.PublicKey())
	return Target{Addr: d.Addr, Login: d.User, Signer: signer, HostKey: d.HostKey, Cmd: sshdCmds}
}

// compare runs bench against Switchyard and against sshd. Both servers are
// started once here, not in every round of the sub-benchmarks.
func compare(b *testing.B, bench func(*testing.B, Target)) {
	sy := switchyardTarget(b)
	b.Run("switchyard", func(b *testing.B) { bench(b, sy) })
	ok, why := haveSSHD()
	var sd Target
	if ok {
		sd = sshdTarget(b)
	}
	b.Run("sshd", func(b *testing.B) {
		if !ok {
			b.Skip(why)
		}
		bench(b, sd)
	})
}

// BenchmarkSessionSetup times a new connection (TCP, handshake, auth,
// session, exec) until the first byte of the app's output.
func BenchmarkSessionSetup(b *testing.B) { compare(b, benchSessionSetup) }

func benchSessionSetup(b *testing.B, tg Target) {
	lat := make([]time.Duration, 0, b.N)
	first := make([]byte, 1)
	for range b.N {
		start := time.Now()
		client := tg.Dial(b)
		s, _, stdout := openSession(b, client, tg.Cmd["echo"], false)
		if _, err := io.ReadFull(stdout, first); err != nil {
			b.Fatalf("first byte: %v", err)
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		io.Copy(io.Discard, stdout)
		s.Wait()
		client.Close()
		b.StartTimer()
	}
	reportPercentiles(b, lat, time.Millisecond, "ms")
}

// BenchmarkBulkNoPTY streams bulkSize bytes through cat and back per op,
// on one session without a PTY. MB/s counts one direction.
func BenchmarkBulkNoPTY(b *testing.B) { compare(b, benchBulkNoPTY) }

func benchBulkNoPTY(b *testing.B, tg Target) {
	client := tg.Dial(b)
	defer client.Close()
	s, stdin, stdout := openSession(b, client, tg.Cmd["cat"], false)
	chunk := make([]byte, bulkChunk)
	rand.Read(chunk)
	b.SetBytes(bulkSize)
	b.ResetTimer()
	for range b.N {
		errc := make(chan error, 1)
		go func() {
			var err error
			for i := 0; i < bulkSize/bulkChunk && err == nil; i++ {
				_, err = stdin.Write(chunk)
			}
			errc <- err
		}()
		if n, err := io.CopyN(io.Discard, stdout, bulkSize); err != nil {
			b.Fatalf("read back %d of %d bytes: %v", n, bulkSize, err)
		}
		if err := <-errc; err != nil {
			b.Fatalf("write: %v", err)
		}
	}
	b.StopTimer()
	stdin.Close()
	s.Wait()
}

// BenchmarkBulkPTY reads bulkSize bytes an app writes to its PTY, one new
// session per op on one connection.
func BenchmarkBulkPTY(b *testing.B) { compare(b, benchBulkPTY) }

func benchBulkPTY(b *testing.B, tg Target) {
	client := tg.Dial(b)
	defer client.Close()
	b.SetBytes(bulkSize)
	for range b.N {
		s, _, stdout := openSession(b, client, tg.Cmd["zeros"], true)
		n, err := io.Copy(io.Discard, stdout)
		if err != nil || n != bulkSize {
			b.Fatalf("read %d bytes (%v), want %d", n, err, bulkSize)
		}
		if err := s.Wait(); err != nil {
			b.Fatalf("zeros: %v", err)
		}
	}
}

// BenchmarkKeystrokeEcho writes one byte to a raw-mode PTY app that copies
// it back, and waits for it, per op.
func BenchmarkKeystrokeEcho(b *testing.B) { compare(b, benchKeystrokeEcho) }

func benchKeystrokeEcho(b *testing.B, tg Target) {
	client := tg.Dial(b)
	defer client.Close()
	s, stdin, stdout := openSession(b, client, tg.Cmd["echoraw"], true)
	defer s.Close()
	waitOutput(b, stdout, "ready\n")
	key, back := []byte{'x'}, make([]byte, 1)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := stdin.Write(key); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(stdout, back); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat, time.Microsecond, "us")
	s.Signal(ssh.SIGTERM) // raw mode: no ^C, no ^D; end cat directly
}

// openSession starts cmd on a new session of client, in an 80x24 xterm
// PTY if pty.
func openSession(b *testing.B, client *ssh.Client, cmd string, pty bool) (*ssh.Session, io.WriteCloser, io.Reader) {
	b.Helper()
	s, err := client.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if pty {
		if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
			b.Fatalf("pty-req: %v", err)
		}
	}
	if err := s.Start(cmd); err != nil {
		b.Fatalf("start %q: %v", cmd, err)
	}
	return s, stdin, stdout
}

// waitOutput reads r until want has arrived.
func waitOutput(b *testing.B, r io.Reader, want string) {
	b.Helper()
	var got []byte
	buf := make([]byte, 256)
	for !bytes.Contains(got, []byte(want)) {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			b.Fatalf("waiting for %q: got %q, %v", want, got, err)
		}
	}
}

// reportPercentiles reports the p50 and p99 of lat in unit (named name).
func reportPercentiles(b *testing.B, lat []time.Duration, unit time.Duration, name string) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 0.50))/float64(unit), "p50-"+name)
	b.ReportMetric(float64(percentile(lat, 0.99))/float64(unit), "p99-"+name)
}

// percentile is the p-th quantile (0..1) of sorted, by nearest rank below.
func percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[int(p*float64(len(sorted)-1))]
}
