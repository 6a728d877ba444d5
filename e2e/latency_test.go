package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// stockClientRuns is how many times TestStockClientLatency runs ssh
// against each server.
const stockClientRuns = 20

// TestStockClientLatency measures what a user feels: the time from
// launching `ssh -tt LOGIN@127.0.0.1 echo ready` to the first byte of
// output, and to ssh's exit, against Switchyard and against a stock sshd,
// alternating between them. It runs only with SWITCHYARD_BENCH=1
// (bench/compare.sh sets it), prints one STOCKCLIENT line per server to
// stdout, and asserts nothing about time.
func TestStockClientLatency(t *testing.T) {
	if os.Getenv("SWITCHYARD_BENCH") != "1" {
		t.Skip("a measurement, not a test: set SWITCHYARD_BENCH=1 (bench/compare.sh does)")
	}
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	gw := GatewayOpenSSH(t, c, "gw1")
	d := StartSSHD(t, c.Alice.PublicKey())
	sd := NewOpenSSH(t, d.Addr, d.HostKey)
	targets := []struct {
		name, key, login string
		o                *OpenSSH
		first, exit      []time.Duration
	}{
		{name: "switchyard", key: gw.Key(t, "alice", c.Alice), login: "alice", o: gw},
		{name: "sshd", key: sd.Key(t, "alice", c.Alice), login: d.User, o: sd},
	}
	for range stockClientRuns {
		for i := range targets {
			tg := &targets[i]
			first, exit := timeStockClient(t, tg.o, tg.key, tg.login)
			tg.first, tg.exit = append(tg.first, first), append(tg.exit, exit)
		}
	}
	for _, tg := range targets {
		slices.Sort(tg.first)
		slices.Sort(tg.exit)
		fmt.Printf("STOCKCLIENT name=%s runs=%d first_p50_ms=%.1f first_p90_ms=%.1f exit_p50_ms=%.1f\n",
			tg.name, len(tg.first), ms(percentile(tg.first, 0.5)), ms(percentile(tg.first, 0.9)), ms(percentile(tg.exit, 0.5)))
	}
}

// timeStockClient runs `ssh -tt LOGIN@127.0.0.1 echo ready` once and
// returns the times from launch to the first byte of stdout and to exit.
func timeStockClient(t *testing.T, o *OpenSSH, key, login string) (first, exit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", o.Args(key, "-tt", o.At(login), "echo", "ready")...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if _, err := cmd.StdinPipe(); err != nil { // open, silent stdin, like a waiting user
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(stdout, make([]byte, 1)); err != nil {
		cmd.Wait()
		t.Fatalf("ssh %s: no output (%v); stderr %q", login, err, errOut.Bytes())
	}
	first = time.Since(start)
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ssh %s: %v; stderr %q", login, err, errOut.Bytes())
	}
	return first, time.Since(start)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
