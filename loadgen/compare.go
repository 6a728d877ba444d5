package loadgen

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Compare prints the results in two files of -json lines side by side:
// one row per metric of every run name found in both, with the ratio
// A/B and, where the project sets one (README, "Measured against stock
// OpenSSH"), the target and whether A meets it.
func Compare(args []string, stdout, flagOut io.Writer) error {
	fs := flag.NewFlagSet("load compare", flag.ContinueOnError)
	fs.SetOutput(flagOut)
	labels := fs.String("labels", "", "column `names` A,B (default the file names)")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("%w: compare wants two files of -json results", ErrUsage)
	}
	names := []string{filepath.Base(fs.Arg(0)), filepath.Base(fs.Arg(1))}
	if *labels != "" {
		if names = strings.Split(*labels, ","); len(names) != 2 {
			return fmt.Errorf("%w: -labels wants two names", ErrUsage)
		}
	}
	a, err := readResults(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := readResults(fs.Arg(1))
	if err != nil {
		return err
	}
	return writeComparison(stdout, names, a, b)
}

// readResults reads one Result per line; later lines of a name win.
func readResults(path string) ([]*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*Result
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		r := &Result{}
		if err := json.Unmarshal(sc.Bytes(), r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if i, ok := seen[r.Name]; ok {
			out[i] = r
			continue
		}
		seen[r.Name] = len(out)
		out = append(out, r)
	}
	return out, sc.Err()
}

// row is one line of the comparison.
type row struct {
	run, metric string
	a, b        value
	target      target
}

// value is a measured figure, or missing.
type value struct {
	v    float64
	ok   bool
	unit string // "ms", "us", "MB/s", "/s", "KiB", ""
}

func (v value) String() string {
	if !v.ok {
		return "-"
	}
	switch v.unit {
	case "ms":
		return fmt.Sprintf("%.2f ms", v.v)
	case "us":
		return fmt.Sprintf("%.0f µs", v.v)
	case "":
		return fmt.Sprintf("%.0f", v.v)
	}
	return fmt.Sprintf("%.1f %s", v.v, v.unit)
}

// target is a goal for A: a bound on A/B, on A-B, or on A alone.
type target struct {
	kind  string // "", "ratio<=", "ratio>=", "diff<=", "abs<=", "abs=="
	limit float64
}

func (t target) String() string {
	switch t.kind {
	case "ratio<=":
		return fmt.Sprintf("≤ %.2fx", t.limit)
	case "ratio>=":
		return fmt.Sprintf("≥ %.2fx", t.limit)
	case "diff<=":
		return fmt.Sprintf("≤ B+%.0f", t.limit)
	case "abs<=":
		return fmt.Sprintf("≤ %.0f", t.limit)
	case "abs==":
		return fmt.Sprintf("= %.0f", t.limit)
	}
	return ""
}

// met says whether a meets t against b: "yes", "NO" or "" (no target or
// no figures).
func (t target) met(a, b value) string {
	if t.kind == "" || !a.ok {
		return ""
	}
	var ok bool
	switch t.kind {
	case "ratio<=", "ratio>=", "diff<=":
		if !b.ok || b.v == 0 {
			return ""
		}
		ok = map[string]bool{"ratio<=": a.v/b.v <= t.limit, "ratio>=": a.v/b.v >= t.limit,
			"diff<=": a.v-b.v <= t.limit}[t.kind]
	case "abs<=":
		ok = a.v <= t.limit
	case "abs==":
		ok = a.v == t.limit
	}
	if ok {
		return "yes"
	}
	return "NO"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// rows lists the metrics of one run, a and b of the same name (either may
// be nil).
func rows(a, b *Result) []row {
	r := a
	if r == nil {
		r = b
	}
	lat := func(res *Result, f func(*Summary) time.Duration, conv func(time.Duration) float64, unit string) value {
		if res == nil || res.Latency == nil {
			return value{unit: unit}
		}
		return value{conv(f(res.Latency)), true, unit}
	}
	num := func(res *Result, f func(*Result) float64, unit string) value {
		if res == nil {
			return value{unit: unit}
		}
		return value{f(res), true, unit}
	}
	p50 := func(s *Summary) time.Duration { return s.P50 }
	p90 := func(s *Summary) time.Duration { return s.P90 }
	p99 := func(s *Summary) time.Duration { return s.P99 }
	rate := func(res *Result) float64 { return res.PerSec }
	failed := func(res *Result) float64 { return float64(res.Failed) }
	var out []row
	add := func(metric string, av, bv value, t target) {
		out = append(out, row{run: r.Name, metric: metric, a: av, b: bv, target: t})
	}
	switch r.Mode {
	case "setup":
		add("setup p50", lat(a, p50, ms, "ms"), lat(b, p50, ms, "ms"), target{"ratio<=", 1.0})
		add("setup p99", lat(a, p99, ms, "ms"), lat(b, p99, ms, "ms"), target{})
		add("sessions/s", num(a, rate, "/s"), num(b, rate, "/s"), target{"ratio>=", 1.0})
	case "echo":
		add("echo p50", lat(a, p50, us, "us"), lat(b, p50, us, "us"), target{"diff<=", 100})
		add("echo p99", lat(a, p99, us, "us"), lat(b, p99, us, "us"), target{"diff<=", 200})
	case "bulk":
		t := target{"ratio>=", 0.7}
		if r.PTY {
			t.limit = 0.95
		}
		add("throughput", num(a, func(x *Result) float64 { return x.MBps }, "MB/s"),
			num(b, func(x *Result) float64 { return x.MBps }, "MB/s"), t)
	case "client":
		add("first output p50", lat(a, p50, ms, "ms"), lat(b, p50, ms, "ms"), target{"ratio<=", 1.0})
		add("first output p90", lat(a, p90, ms, "ms"), lat(b, p90, ms, "ms"), target{})
	case "hold":
		held := func(res *Result) float64 { return float64(res.Held) }
		add("sessions held", num(a, held, ""), num(b, held, ""), target{})
		add("opened/s", num(a, rate, "/s"), num(b, rate, "/s"), target{})
		out = append(out, memoryRows(r.Name, a, b)...)
	}
	add("failed", num(a, failed, ""), num(b, failed, ""), target{"abs==", 0})
	return out
}

// pssTarget is the most memory a held session may cost process name, in
// KiB: 72 for a gateway, whose every session is also an SSH connection
// of its own, 64 for the others.
func pssTarget(name string) float64 {
	if name == "gateway" {
		return 72
	}
	return 64
}

// memoryRows are one row per measured process group (A's and B's), then
// the sum over all groups.
func memoryRows(run string, a, b *Result) []row {
	var out []row
	total := [2]value{{unit: "KiB"}, {unit: "KiB"}}
	for side, res := range []*Result{a, b} {
		if res == nil {
			continue
		}
		for _, m := range res.Memory {
			v := value{m.PerSessionPSS, true, "KiB"}
			x := row{run: run, metric: "PSS/session " + m.Name, a: value{unit: "KiB"}, b: value{unit: "KiB"}, target: target{"abs<=", pssTarget(m.Name)}}
			if side == 0 {
				x.a = v
			} else {
				x.b, x.target = v, target{}
			}
			out = append(out, x)
			total[side].v += v.v
			total[side].ok = true
		}
	}
	if len(out) > 0 {
		out = append(out, row{run: run, metric: "PSS/session, all", a: total[0], b: total[1]})
	}
	return out
}

// writeComparison prints the rows of every run in a that b has too.
func writeComparison(w io.Writer, names []string, a, b []*Result) error {
	byName := map[string]*Result{}
	for _, r := range b {
		byName[r.Name] = r
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "run\tmetric\t%s\t%s\tratio\ttarget\tmet\t\n", names[0], names[1])
	for _, ra := range a {
		rb, ok := byName[ra.Name]
		if !ok {
			continue
		}
		for _, x := range rows(ra, rb) {
			ratio := "-"
			if x.a.ok && x.b.ok && x.b.v != 0 {
				ratio = fmt.Sprintf("%.2f", x.a.v/x.b.v)
			}
			if x.target.kind == "diff<=" && x.a.ok && x.b.ok {
				ratio = fmt.Sprintf("%+.0f µs", x.a.v-x.b.v)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", x.run, x.metric, x.a, x.b, ratio, x.target, x.target.met(x.a, x.b))
		}
	}
	return tw.Flush()
}
