package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Usage is the tool's synopsis.
const Usage = `usage: load MODE [flags]     MODE: setup, echo, bulk, hold, client
       load compare [-labels A,B] A.jsonl B.jsonl
Run "load MODE -h" for the flags of a mode.`

// ErrFailed reports that a run completed with failed sessions; its
// figures are still printed.
var ErrFailed = errors.New("some sessions failed")

// Run runs the tool with its arguments (args[0] is the mode) and writes
// the result to stdout.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, Usage)
		return fmt.Errorf("%w: no mode", ErrUsage)
	}
	if args[0] == "compare" {
		return Compare(args[1:], stdout, stderr)
	}
	c, err := ParseFlags(args[0], args[1:], stderr)
	if err != nil {
		return err
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
