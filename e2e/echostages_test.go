package e2e

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"

	"switchyard/config"
	"switchyard/control"
	"switchyard/internal/sshtest"
	"switchyard/transport"
)

// BenchmarkEchoStages breaks one keystroke's round trip down by stage,
// each stage adding one piece of the path a keystroke takes through
// Switchyard, every daemon a process of its own as in production:
//
//	1-pty      the test writes a byte to a PTY master whose slave runs
//	           `stty raw -echo; cat`, and reads it back: the PTY and the
//	           app, with no network
//	2-ssh      one x/crypto SSH hop on loopback (AES-128-GCM, as the
//	           internal hops) to a child process that copies the channel
//	           back to itself: the hop, with no PTY
//	3-appd     one SSH hop to a real appd, the way a gateway opens a
//	           session (its node key, a spawn channel), running the PTY
//	           app echoraw (the app of 1-pty): 3 - 2 is appd and the PTY
//	4-gateway  the full path, a client through a real gateway to that
//	           appd: 4 - 3 is the gateway and its second hop
//	5-sshd     the same app through a private stock sshd, for reference
//
// Stages 2 to 4 run twice: with the daemons (and the echo child) at the
// Go runtime's default GOMAXPROCS ("procs=def") and with GOMAXPROCS=1
// ("procs=1"), as bench/sidebyside.sh -P 1 does; the client, this test
// process, keeps the default in both. Every stage runs back to back
// (gap=0, the next keystroke as soon as the echo is in, as `load echo`
// does) and paced (gap=3ms, like typing, which lets every thread go
// idle between keystrokes). Each reports the p50 and p99 of the round
// trip in µs; it asserts nothing about time. Run it with -benchtime
// 2000x (2,000 keystrokes per stage) and -count 3, which interleaves the
// stages across the three rounds.
func BenchmarkEchoStages(b *testing.B) {
	stages := []echoStage{{"1-pty", openPTYEcho}}
	for _, procs := range []string{"def", "1"} {
		echod := startEchod(b, procs)
		var opts procOptions
		if procs != "def" {
			env := []string{"env", "GOMAXPROCS=" + procs}
			opts.Prefix = map[string][]string{"broker": env, "gw1": env, "s1": env}
		}
		c := newProcCluster(b, []string{"gw1"}, []string{"s1"}, opts)
		stages = append(stages,
			echoStage{"2-ssh/procs=" + procs, func(tb testing.TB) echoLine { return openSSHEcho(tb, echod) }},
			echoStage{"3-appd/procs=" + procs, func(tb testing.TB) echoLine { return openAppdEcho(tb, c) }},
			echoStage{"4-gateway/procs=" + procs, func(tb testing.TB) echoLine { return openGatewayEcho(tb, c) }})
	}
	if ok, _ := haveSSHD(); ok {
		stages = append(stages, echoStage{"5-sshd", openSSHDEcho})
	}
	// Every line is opened before any is measured, so that no stage's
	// setup runs inside another's measure.
	lines := make([]echoLine, len(stages))
	for i, st := range stages {
		lines[i] = st.open(b)
	}
	for _, gap := range []time.Duration{0, 3 * time.Millisecond} {
		for i, st := range stages {
			b.Run(fmt.Sprintf("gap=%v/%s", gap, st.name), func(b *testing.B) { keystrokes(b, lines[i], gap) })
		}
	}
}

// echoStage is one stage of BenchmarkEchoStages: its name and how to
// open its line.
type echoStage struct {
	name string
	open func(testing.TB) echoLine
}

// echoLine is one open path that copies back what is written to it, and
// the processes on that path other than this one.
type echoLine struct {
	w     io.Writer
	r     io.Reader
	roles []procRole
}

// keystrokesWarmup keystrokes go first and are not counted.
const keystrokesWarmup = 20

// keystrokes writes b.N single bytes to line, each once the previous one
// has come back and gap has passed, and reports the p50 and p99 of the
// round trips, and per keystroke, for this process ("client") and each
// role of line, what the scheduler did (see schedMeter.report). Keystroke i is the letter 'a'+i%26 and the wait is for
// that letter, as in `load echo`.
func keystrokes(b *testing.B, line echoLine, gap time.Duration) {
	buf := make([]byte, 64)
	lat := make([]time.Duration, 0, b.N)
	var sched *schedMeter
	for i := range keystrokesWarmup + b.N {
		if i == keystrokesWarmup {
			sched = startSched(append([]procRole{{"client", pidsOf(os.Getpid())}}, line.roles...))
			b.ResetTimer()
		}
		if gap > 0 {
			time.Sleep(gap) // the pause between keystrokes, not a wait for a condition
		}
		key := byte('a' + i%26)
		t0 := time.Now()
		if _, err := line.w.Write([]byte{key}); err != nil {
			b.Fatalf("keystroke %d: %v", i, err)
		}
		if err := readKey(line.r, buf, key); err != nil {
			b.Fatalf("keystroke %d: %v", i, err)
		}
		if i >= keystrokesWarmup {
			lat = append(lat, time.Since(t0))
		}
	}
	b.StopTimer()
	sched.report(b, b.N)
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 0.50))/float64(time.Microsecond), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.99))/float64(time.Microsecond), "p99-µs")
}

// readKey reads r until key arrives.
func readKey(r io.Reader, buf []byte, key byte) error {
	for {
		n, err := r.Read(buf)
		if slices.Contains(buf[:n], key) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("waiting for the echo of %q: %w", key, err)
		}
	}
}

// echorawScript is the echoraw app of the test clusters, run directly.
const echorawScript = "stty raw -echo; echo ready; exec cat"

// openPTYEcho starts echorawScript on a new PTY of this process.
func openPTYEcho(tb testing.TB) echoLine {
	cmd := exec.Command("sh", "-c", echorawScript)
	master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		tb.Fatalf("start echoraw on a PTY: %v", err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		master.Close()
	})
	waitReady(tb, master)
	return echoLine{w: master, r: master, roles: []procRole{{"app", pidsOf(cmd.Process.Pid)}}}
}

// waitReady reads r until the app's "ready" line.
func waitReady(tb testing.TB, r io.Reader) {
	tb.Helper()
	var got []byte
	buf := make([]byte, 256)
	for !strings.Contains(string(got), "ready\n") {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			tb.Fatalf("waiting for ready: got %q, %v", got, err)
		}
	}
}

// echodEnv, set in the environment of this test binary, makes TestMain
// run runEchod instead of the tests.
const echodEnv = "SWITCHYARD_ECHOD"

// echodTarget is where a child echo server listens, and its host key.
type echodTarget struct {
	addr string
	host ssh.PublicKey
	pid  int
}

// startEchod runs this test binary as an SSH echo server (runEchod) with
// GOMAXPROCS procs ("def": the runtime's default), and stops it at
// cleanup.
func startEchod(tb testing.TB, procs string) echodTarget {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), echodEnv+"=1")
	if procs != "def" {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+procs)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // runEchod exits when it closes
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("echo server: no address (%v)", err)
	}
	addr, key, _ := strings.Cut(strings.TrimSpace(line), " ")
	host, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		tb.Fatalf("echo server: %q: %v", line, err)
	}
	return echodTarget{addr: addr, host: host, pid: cmd.Process.Pid}
}

// echoAlgorithms are the internal hops' key exchange and cipher
// (transport/algo.go).
var echoAlgorithms = ssh.Config{KeyExchanges: []string{ssh.KeyExchangeCurve25519}, Ciphers: []string{ssh.CipherAES128GCM}}

// runEchod is the child of startEchod: an SSH server on a loopback port
// that accepts any client and copies every channel's data back to it. It
// prints "ADDR HOSTKEY" on stdout and returns when stdin closes.
func runEchod() {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echod:", err)
		os.Exit(1)
	}
	priv, err := ssh.NewSignerFromKey(key)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echod:", err)
		os.Exit(1)
	}
	cfg := &ssh.ServerConfig{Config: echoAlgorithms, NoClientAuth: true}
	cfg.AddHostKey(priv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "echod:", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s", ln.Addr(), ssh.MarshalAuthorizedKey(priv.PublicKey()))
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serveEcho(nc, cfg)
		}
	}()
	io.Copy(io.Discard, os.Stdin)
}

// serveEcho serves one connection of runEchod.
func serveEcho(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go ssh.DiscardRequests(creqs)
		go func() { io.Copy(ch, ch); ch.Close() }()
	}
}

// openSSHEcho opens a channel to a child echo server.
func openSSHEcho(tb testing.TB, t echodTarget) echoLine {
	tb.Helper()
	client, err := ssh.Dial("tcp", t.addr, &ssh.ClientConfig{
		Config: echoAlgorithms, User: "bench", HostKeyCallback: ssh.FixedHostKey(t.host), Timeout: 10 * time.Second,
	})
	if err != nil {
		tb.Fatalf("dial the echo server: %v", err)
	}
	tb.Cleanup(func() { client.Close() })
	ch, reqs, err := client.OpenChannel("session", nil)
	if err != nil {
		tb.Fatal(err)
	}
	go ssh.DiscardRequests(reqs)
	return echoLine{w: ch, r: ch, roles: []procRole{{"echod", pidsOf(t.pid)}}}
}

// openAppdEcho opens a session of echoraw on c's appd s1 as gateway gw1
// would: dialled with gw1's node key (transport.Dial, as the gateway's
// pool does), a spawn channel, the started request acknowledged.
func openAppdEcho(tb testing.TB, c *ProcCluster) echoLine {
	tb.Helper()
	signer, err := config.EnsureKey(c.cfg.NodeSignerPath("gw1"))
	if err != nil {
		tb.Fatal(err)
	}
	host, err := c.cfg.NodeKey("s1")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := transport.Dial(ctx, transport.Identity{Name: "gw1", Signer: signer}, "s1", c.cfg.Servers["s1"].Listen, host)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close() })
	req, err := json.Marshal(control.SpawnRequest{App: "echoraw", User: "alice",
		Pty: &control.PtySpec{Term: "xterm", Cols: 80, Rows: 24}})
	if err != nil {
		tb.Fatal(err)
	}
	ch, reqs, err := client.OpenChannel(control.ChannelSpawn, req)
	if err != nil {
		tb.Fatalf("spawn echoraw on s1: %v", err)
	}
	select {
	case r := <-reqs:
		if r == nil || r.Type != control.RequestStarted {
			tb.Fatalf("spawn echoraw on s1: first request %v, want %s", r, control.RequestStarted)
		}
		r.Reply(true, nil)
	case <-ctx.Done():
		tb.Fatalf("spawn echoraw on s1: no %s", control.RequestStarted)
	}
	go ssh.DiscardRequests(reqs)
	waitReady(tb, ch)
	return echoLine{w: ch, r: ch, roles: appdRoles(c)}
}

// openGatewayEcho logs alice in at c's gateway gw1 and starts echoraw in
// a PTY.
func openGatewayEcho(tb testing.TB, c *ProcCluster) echoLine {
	tb.Helper()
	line := openTargetEcho(tb, c.Dial("gw1"), "echoraw")
	line.roles = append([]procRole{{"gw", pidsOf(c.PID("gw1"))}}, appdRoles(c)...)
	return line
}

// appdRoles are c's appd s1 ("appd") and its keeper and apps ("app").
func appdRoles(c *ProcCluster) []procRole {
	appd := c.PID("s1")
	return []procRole{{"appd", pidsOf(appd)}, {"app", func() []int { return descendants(appd, anyComm) }}}
}

// openSSHDEcho starts echorawScript in a PTY on a private stock sshd.
func openSSHDEcho(tb testing.TB) echoLine {
	tb.Helper()
	signer := sshtest.NewSigner(tb)
	d := StartSSHD(tb, signer.PublicKey())
	tg := Target{Addr: d.Addr, Login: d.User, Signer: signer, HostKey: d.HostKey, Cmd: sshdCmds}
	client := tg.Dial(tb)
	tb.Cleanup(func() { client.Close() })
	line := openTargetEcho(tb, client, tg.Cmd["echoraw"])
	isSSHD := func(comm string) bool { return comm == "sshd" }
	line.roles = []procRole{
		{"sshd", func() []int { return append(descendants(d.PID, isSSHD), d.PID) }},
		{"app", func() []int { return descendants(d.PID, func(comm string) bool { return !isSSHD(comm) }) }},
	}
	return line
}

// openTargetEcho starts cmd in an 80x24 xterm PTY on a new session of
// client and waits for its ready line.
func openTargetEcho(tb testing.TB, client *ssh.Client, cmd string) echoLine {
	tb.Helper()
	s, err := client.NewSession()
	if err != nil {
		tb.Fatal(err)
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		tb.Fatalf("pty-req: %v", err)
	}
	if err := s.Start(cmd); err != nil {
		tb.Fatalf("start %q: %v", cmd, err)
	}
	tb.Cleanup(func() { s.Signal(ssh.SIGTERM); s.Close() })
	waitReady(tb, stdout)
	return echoLine{w: stdin, r: stdout}
}
