package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"time"
)

// sshArgs is the stock ssh command line for c: no user config, batch
// mode, the key in c.KeyFile only, the host key checked against
// c.KnownHosts (or not checked with -insecure-host-key), -tt with a PTY.
func sshArgs(c Config) ([]string, error) {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return nil, err
	}
	args := []string{"-F", "/dev/null", "-p", port, "-i", c.KeyFile,
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "ConnectTimeout=" + fmt.Sprint(int(c.OpTimeout.Seconds()+0.5)),
		"-o", "GlobalKnownHostsFile=/dev/null"}
	if c.Insecure {
		args = append(args, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR")
	} else {
		args = append(args, "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+c.KnownHosts)
	}
	if len(c.Ciphers) > 0 {
		args = append(args, "-c", strings.Join(c.Ciphers, ","))
	}
	if c.PTY {
		args = append(args, "-tt")
	} else {
		args = append(args, "-T")
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return append(args, c.User+"@"+host, c.Cmd), nil
}

// runClient launches the stock ssh client c.N times, one after another,
// with an open and silent stdin, like a waiting user, and times each from
// launch to the first byte of output and to exit.
func runClient(ctx context.Context, c Config, r *Result) {
	var fails failures
	defer fails.into(r)
	r.Attempts = c.N
	args, err := sshArgs(c)
	if err != nil {
		fails.add(err)
		return
	}
	var first, exit []time.Duration
	begin := time.Now()
	for i := range c.N {
		if ctx.Err() != nil {
			fails.addf("%d runs not started: %w", c.N-i, ctx.Err())
			break
		}
		f, e, err := oneClient(ctx, c, args)
		if err != nil {
			fails.addf("run %d: %w", i, err)
			continue
		}
		first, exit = append(first, f), append(exit, e)
	}
	r.Elapsed = time.Since(begin)
	r.Latency, r.Exit = Summarize(first), Summarize(exit)
}

// oneClient runs ssh once.
func oneClient(ctx context.Context, c Config, args []string) (first, exit time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.OpTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.SSH, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, err
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	if _, err := io.ReadFull(stdout, make([]byte, 1)); err != nil {
		cmd.Wait()
		return 0, 0, fmt.Errorf("ssh: no output (%v): %s", err, strings.TrimSpace(stderr.String()))
	}
	first = time.Since(begin)
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("ssh: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return first, time.Since(begin), nil
}
