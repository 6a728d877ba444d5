package loadgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Usage is the tool's synopsis, printed after a command-line mistake.
const Usage = `usage: load MODE [flags]     MODE: setup, echo, bulk, hold, client
       load compare [-labels A,B] A.jsonl B.jsonl
Run "load -h" for help, "load MODE -h" for the flags of a mode.`

// Help is what load -h prints.
const Help = `usage: load MODE -addr HOST:PORT -user NAME -key FILE -cmd CMD [flags]
       load compare [-labels A,B] A.jsonl B.jsonl
       load -version

Opens SSH sessions against a Switchyard gateway or any SSH server on
loopback and measures them. Modes:

  setup    N sessions, each on a new connection, timed from TCP connect to
           the app's first byte; p50, p99, max and sessions per second
  echo     one PTY session; one byte at a time, timed until it comes back
  bulk     bytes through cat and back, sha256-checked (with -pty, read
           from an app writing to its PTY); MB/s
  hold     N sessions held open, echo-verified, with the memory (RSS, PSS)
           of the -pids processes before and after, and per session
  client   the stock ssh binary launched N times, timed to its first output
  compare  two files of -json results side by side, with ratios and targets

Run "load MODE -h" for the flags of a mode. Only loopback targets are
accepted unless -allow-remote is given.

Exit status: 0 done, 1 a failure (some sessions failed: the figures are
still printed), 2 a command-line mistake.
`

// ErrVersion is Run's answer to -version: the caller prints the version.
var ErrVersion = errors.New("version requested")

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// ErrFailed reports that a run completed with failed sessions; its
// figures are still printed.
var ErrFailed = errors.New("some sessions failed")

// Run runs the tool with its arguments (args[0] is the mode) and writes
// the result to stdout.
func Run(ctx context.Context, args []string, stdout io.Writer) error {
	switch {
	case len(args) > 0 && isHelp(args[0]):
		_, err := io.WriteString(stdout, Help)
		return err
	case len(args) > 0 && (args[0] == "-version" || args[0] == "--version"):
		return ErrVersion
	case len(args) == 0 || strings.HasPrefix(args[0], "-"):
		return fmt.Errorf("%w: no mode", ErrUsage)
	}
	if args[0] != "compare" && !slices.Contains(modes, args[0]) {
		return fmt.Errorf("%w: unknown mode %q", ErrUsage, args[0])
	}
	// A flag mistake comes back as the error, which the caller prints
	// with the synopsis; the flags are printed only when asked for.
	out := io.Discard
	if slices.ContainsFunc(args[1:], isHelp) {
		out = stdout
	}
	if args[0] == "compare" {
		return noHelpError(Compare(args[1:], stdout, out))
	}
	c, err := ParseFlags(args[0], args[1:], out)
	if err != nil {
		return noHelpError(err)
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := c.CheckTarget(ctx); err != nil {
		return err
	}
	r, err := Measure(ctx, c)
	if err != nil {
		return err
	}
	write := WriteText
	if c.JSON {
		write = WriteJSON
	}
	if err := write(stdout, r); err != nil {
		return err
	}
	if r.Failed > 0 {
		return fmt.Errorf("%s: %d of %d %w", c.Name, r.Failed, r.Attempts, ErrFailed)
	}
	return nil
}

// noHelpError is err, or nil when it only says that help was printed.
func noHelpError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// Measure runs the measurement c describes, within c.Timeout. An error
// means it could not start (a bad key file); failed sessions are counted
// in the Result instead.
func Measure(ctx context.Context, c Config) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	r := &Result{Name: c.Name, Mode: c.Mode, Addr: c.Addr, User: c.User, Cmd: c.Cmd, PTY: c.PTY}
	if c.Mode == "client" {
		runClient(ctx, c, r)
		return r, nil
	}
	d, err := newDialer(c)
	if err != nil {
		return nil, err
	}
	switch c.Mode {
	case "setup":
		runSetup(ctx, c, d, r)
	case "echo":
		runEcho(ctx, c, d, r)
	case "bulk":
		runBulk(ctx, c, d, r)
	case "hold":
		runHold(ctx, c, d, r)
	default:
		return nil, fmt.Errorf("%w: unknown mode %q", ErrUsage, c.Mode)
	}
	return r, nil
}
