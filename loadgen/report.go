package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what one run measured. Durations are in nanoseconds in JSON.
type Result struct {
	Name     string        `json:"name"`
	Mode     string        `json:"mode"`
	Addr     string        `json:"addr"`
	User     string        `json:"user"`
	Cmd      string        `json:"cmd"`
	PTY      bool          `json:"pty"`
	Attempts int           `json:"attempts"` // sessions, keystrokes or runs tried
	Failed   int           `json:"failed"`
	Errors   []string      `json:"errors,omitempty"` // the first few
	Elapsed  time.Duration `json:"elapsed_ns"`

	Latency *Summary `json:"latency,omitempty"` // setup, echo; client: to first output
	Exit    *Summary `json:"exit,omitempty"`    // client: to ssh's exit
	PerSec  float64  `json:"per_sec,omitempty"` // setup, hold: sessions opened per second

	Bytes  int64   `json:"bytes,omitempty"` // bulk: bytes that came back
	MBps   float64 `json:"mb_per_sec,omitempty"`
	SHA256 string  `json:"sha256,omitempty"` // bulk without PTY: "match" or "MISMATCH"

	Held    int           `json:"held,omitempty"` // hold: sessions open and verified
	Lost    int           `json:"lost,omitempty"` // hold: verified at open, not at the end
	HeldFor time.Duration `json:"held_ns,omitempty"`
	Memory  []ProcMem     `json:"memory,omitempty"`
	// WhileHeld is how the -while-held command failed, if it did.
	WhileHeld string `json:"while_held_error,omitempty"`
}

// WriteJSON writes r as one line of JSON.
func WriteJSON(w io.Writer, r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// WriteText writes r as a small table for people.
func WriteText(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	pty := "no pty"
	if r.PTY {
		pty = "pty"
	}
	row(r.Name, "%s %s@%s %q (%s)", r.Mode, r.User, r.Addr, r.Cmd, pty)
	row("attempts", "%d in %v, %d failed", r.Attempts, r.Elapsed.Round(time.Millisecond), r.Failed)
	if r.Latency != nil {
		what := map[string]string{"setup": "TCP connect to first output", "echo": "keystroke round trip",
			"client": "launch to first output"}[r.Mode]
		row("latency", "%s (%s)", summaryText(r.Latency), what)
	}
	if r.Exit != nil {
		row("exit", "%s (launch to exit)", summaryText(r.Exit))
	}
	if r.PerSec > 0 {
		row("rate", "%.1f sessions/s", r.PerSec)
	}
	if r.MBps > 0 {
		row("throughput", "%.1f MB/s (%d bytes)", r.MBps, r.Bytes)
	}
	if r.SHA256 != "" {
		row("sha256", "%s", r.SHA256)
	}
	if r.Mode == "hold" {
		row("held", "%d sessions for %v, %d lost meanwhile", r.Held, r.HeldFor.Round(time.Millisecond), r.Lost)
	}
	for _, m := range r.Memory {
		row("mem "+m.Name, "PSS %d -> %d KiB, RSS %d -> %d KiB, %d -> %d procs; per session PSS %.1f KiB, RSS %.1f KiB",
			m.Before.PSS, m.After.PSS, m.Before.RSS, m.After.RSS, m.ProcsBefore, m.ProcsAfter, m.PerSessionPSS, m.PerSessionRSS)
	}
	if r.WhileHeld != "" {
		row("while-held", "%s", r.WhileHeld)
	}
	for _, e := range r.Errors {
		row("error", "%s", strings.ReplaceAll(e, "\n", " "))
	}
	return tw.Flush()
}

func summaryText(s *Summary) string {
	return fmt.Sprintf("p50 %v  p90 %v  p99 %v  max %v  (n=%d)", round(s.P50), round(s.P90), round(s.P99), round(s.Max), s.N)
}

// round keeps three significant digits or so.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
