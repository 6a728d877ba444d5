package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"
)

// ErrUsage marks a command-line mistake; the tool exits 2 on it.
var ErrUsage = errors.New("usage")

// usageError wraps a flag error in ErrUsage, but keeps flag.ErrHelp (the
// flags were printed, as asked) as it is.
func usageError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUsage, err)
}

// Modes that open SSH sessions (compare only reads files).
var modes = []string{"setup", "echo", "bulk", "hold", "client"}

// Config is one run of the load tool. ParseFlags fills it from a command
// line and Validate checks it; a zero field takes the default noted.
type Config struct {
	Mode        string        // one of setup, echo, bulk, hold, client
	Name        string        // label of the result; the mode if empty
	Addr        string        // SSH server host:port
	User        string        // login
	KeyFile     string        // OpenSSH private key file
	KnownHosts  string        // known_hosts file holding the server's key
	Insecure    bool          // accept any host key instead
	Ciphers     []string      // x/crypto/ssh's default order if empty
	Cmd         string        // exec request: an app name for Switchyard, a command line for sshd
	PTY         bool          // request a PTY (echo and client: on unless -pty=false)
	Term        string        // PTY terminal type; "xterm" if empty
	Rows, Cols  int           // PTY size; 24x80 if zero
	N           int           // sessions (setup, hold), keystrokes (echo), runs (client)
	Concurrency int           // setup: sessions in flight at once; 1 if zero
	Bytes       int64         // bulk: bytes to move; 64 MiB if zero
	Conns       int           // hold: connections carrying the sessions; N if zero
	Rate        float64       // hold: sessions opened per second; 0 means all at once
	Parallel    int           // hold: most sessions being opened at once; 0 means no bound
	Hold        time.Duration // hold: how long to keep them open
	Ready       string        // output to wait for before measuring (echo)
	PIDs        []ProcSpec    // hold: processes whose memory is reported
	WhileHeld   string        // hold: sh command run while the sessions are held, after measuring
	OpTimeout   time.Duration // one session's open or verify; 30s if zero
	Timeout     time.Duration // the whole run; 5m if zero
	AllowRemote bool          // permit a non-loopback Addr
	JSON        bool          // print one JSON object instead of a table
	SSH         string        // client: the ssh binary; "ssh" if empty
}

// defaultN is -n when not given, by mode.
var defaultN = map[string]int{"setup": 50, "echo": 1000, "bulk": 1, "hold": 100, "client": 20}

// ParseFlags parses the flags of mode from args; -h prints them to
// flagOut and returns flag.ErrHelp, and a bad command line returns an
// error wrapping ErrUsage.
func ParseFlags(mode string, args []string, flagOut io.Writer) (Config, error) {
	c := Config{Mode: mode}
	fs := flag.NewFlagSet("load "+mode, flag.ContinueOnError)
	fs.SetOutput(flagOut)
	fs.StringVar(&c.Name, "name", "", "label of the result (default the mode)")
	fs.StringVar(&c.Addr, "addr", "", "SSH server `host:port` (loopback unless -allow-remote)")
	fs.StringVar(&c.User, "user", "", "login `name`")
	fs.StringVar(&c.KeyFile, "key", "", "OpenSSH private key `file`")
	fs.StringVar(&c.KnownHosts, "known-hosts", "", "known_hosts `file` with the server's host key")
	fs.BoolVar(&c.Insecure, "insecure-host-key", false, "accept any host key")
	ciphers := fs.String("ciphers", "", "comma-separated cipher `list` (default x/crypto/ssh's)")
	fs.StringVar(&c.Cmd, "cmd", "", "`command` to exec: an app for Switchyard, a command line for sshd")
	fs.BoolVar(&c.PTY, "pty", mode == "echo" || mode == "client", "request a PTY (client: ssh -tt)")
	fs.StringVar(&c.Term, "term", "xterm", "PTY terminal `type`")
	fs.IntVar(&c.Rows, "rows", 24, "PTY rows")
	fs.IntVar(&c.Cols, "cols", 80, "PTY columns")
	fs.IntVar(&c.N, "n", defaultN[mode], "sessions (setup, hold), keystrokes (echo) or runs (client)")
	fs.IntVar(&c.Concurrency, "c", 1, "setup: sessions in flight at once")
	fs.Int64Var(&c.Bytes, "bytes", 64<<20, "bulk: bytes to send through the app (no PTY) or to read from it (PTY)")
	fs.IntVar(&c.Conns, "conns", 0, "hold: connections carrying the sessions (default one per session)")
	fs.Float64Var(&c.Rate, "rate", 0, "hold: sessions opened per `second` (0: all at once)")
	fs.IntVar(&c.Parallel, "parallel", 0, "hold: most sessions being opened at once, so a slow server is not flooded (0: no bound)")
	fs.DurationVar(&c.Hold, "hold", 10*time.Second, "hold: how long to keep the sessions open")
	fs.StringVar(&c.Ready, "ready", "", "echo: output to wait for before the first keystroke")
	pids := fs.String("pids", "", "hold: processes to measure, `NAME=PID[+],...` (+: with descendants running the same program)")
	fs.StringVar(&c.WhileHeld, "while-held", "", "hold: sh `command` to run while the sessions are held, after the memory reading (e.g. fetch a heap profile)")
	fs.DurationVar(&c.OpTimeout, "op-timeout", 30*time.Second, "bound on opening or verifying one session")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	fs.BoolVar(&c.AllowRemote, "allow-remote", false, "allow a target that is not loopback")
	fs.BoolVar(&c.JSON, "json", false, "print the result as one JSON object")
	fs.StringVar(&c.SSH, "ssh", "ssh", "client: the ssh `binary`")
	if err := fs.Parse(args); err != nil {
		return c, usageError(err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	if *ciphers != "" {
		c.Ciphers = strings.Split(*ciphers, ",")
	}
	var err error
	if c.PIDs, err = ParseProcSpecs(*pids); err != nil {
		return c, fmt.Errorf("%w: -pids: %v", ErrUsage, err)
	}
	if c.Name == "" {
		c.Name = mode
	}
	return c, nil
}

// Validate returns every problem with c at once, wrapping ErrUsage.
func (c Config) Validate() error {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if !slices.Contains(modes, c.Mode) {
		bad("unknown mode %q (want %s)", c.Mode, strings.Join(modes, ", "))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("-addr %q: want host:port", c.Addr)
	}
	if c.User == "" {
		bad("-user is required")
	}
	if c.KeyFile == "" {
		bad("-key is required")
	}
	if (c.KnownHosts == "") == !c.Insecure {
		bad("give exactly one of -known-hosts FILE and -insecure-host-key")
	}
	if c.Cmd == "" {
		bad("-cmd is required")
	}
	if c.N < 1 {
		bad("-n must be at least 1")
	}
	if c.Concurrency < 1 || c.Concurrency > c.N {
		bad("-c must be between 1 and -n (%d)", c.N)
	}
	if c.Bytes < 1 {
		bad("-bytes must be positive")
	}
	if c.Conns < 0 || c.Conns > c.N {
		bad("-conns must be between 0 (one per session) and -n (%d)", c.N)
	}
	if c.Rate < 0 || c.Parallel < 0 {
		bad("-rate and -parallel must not be negative")
	}
	if c.Rows < 1 || c.Cols < 1 {
		bad("-rows and -cols must be positive")
	}
	if c.OpTimeout <= 0 || c.Timeout <= 0 || c.Hold < 0 {
		bad("-op-timeout and -timeout must be positive, -hold not negative")
	}
	if c.Mode == "hold" && c.Timeout <= c.Hold {
		bad("-timeout (%v) must exceed -hold (%v)", c.Timeout, c.Hold)
	}
	if (len(c.PIDs) > 0 || c.WhileHeld != "") && c.Mode != "hold" {
		bad("-pids and -while-held are for hold only")
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrUsage, strings.Join(probs, "; "))
	}
	return nil
}

// CheckTarget refuses an Addr that is not loopback (127.0.0.0/8, ::1),
// resolving a host name, unless AllowRemote.
func (c Config) CheckTarget(ctx context.Context) error {
	if c.AllowRemote {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("%w: -addr %q: %v", ErrUsage, c.Addr, err)
	}
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return fmt.Errorf("resolve %s: %w", host, err)
		}
		ips = ips[:0]
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%w: -addr %s is not a loopback address (127.0.0.0/8, ::1); -allow-remote permits it", ErrUsage, c.Addr)
		}
	}
	return nil
}
