package appd

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"switchyard/control"
)

// UnknownLoad is the CPU load per CPU reported when it cannot be read or
// parsed: an unknown load counts as busy, so the broker prefers servers
// that can say how idle they are.
const UnknownLoad = 100.0

// clockTicks is the kernel's USER_HZ, the unit of the CPU times in
// /proc/PID/stat: 100 on every Linux architecture Go supports.
const clockTicks = 100

// appSmoothing is the weight of the latest interval in an app's CPU
// estimate (an exponentially weighted moving average).
const appSmoothing = 0.3

// minSample is the shortest interval the CPU in use is measured over.
// Reports to several brokers come within microseconds of each other: each
// but the first carries the CPU measured for the first, since a delta of
// a few jiffies says little.
const minSample = 100 * time.Millisecond

// minLearn is the shortest interval an app's estimate learns from. Clock
// ticks are 10 ms: over a second, one tick more or less moves a session's
// rate by 0.01 CPU; over a millisecond, by 10 CPUs.
const minLearn = time.Second

// Load is what a LoadProbe measured for one report.
type Load struct {
	Avg    float64            // 1-minute load average per CPU, UnknownLoad if unreadable
	CPU    float64            // CPU in use per CPU over the last interval measured (from /proc/stat), UnknownLoad if unreadable
	CPUs   int                // CPUs counted
	AppCPU map[string]float64 // CPUs a running session of each app uses, learned
	// MemAvail is MemAvailable from meminfo in bytes: what the kernel
	// estimates new apps can take without swapping; 0 if unreadable.
	MemAvail uint64
}

// LoadProbe measures the server's memory available (/proc/meminfo) and
// its CPU use from the deltas of /proc/stat between two calls of Measure
// at least minSample apart, and learns per app the CPUs a session uses
// from the CPU times of all of each session's processes (see
// loadsession.go) over intervals of at least minLearn, each session's
// rate bounded by the CPUs there are, averaged over the app's sessions
// and smoothed over intervals. Set estimates (from the config) replace
// what is learned. It is not safe for concurrent use.
type LoadProbe struct {
	Root string                    // where proc is mounted, "/proc" if empty
	CPUs int                       // runtime.NumCPU() if zero
	Set  func() map[string]float64 // apps whose estimate the config sets; may be nil

	prevTotal, prevIdle uint64
	have                bool      // prevTotal and prevIdle were read
	statAt              time.Time // when they were
	cpu                 float64   // the CPU in use last measured
	prevAt              time.Time
	prevProc            map[int]uint64 // session id → its processes' CPU ticks at prevAt
	est                 map[string]float64
}

func (p *LoadProbe) root() string {
	if p.Root == "" {
		return "/proc"
	}
	return p.Root
}

func (p *LoadProbe) cpus() int {
	if p.CPUs > 0 {
		return p.CPUs
	}
	return runtime.NumCPU()
}

// Prime takes a first reading of /proc/stat at now, so that a Measure at
// least minSample later reports the CPU in use since then rather than
// since boot. appd primes its probe at start.
func (p *LoadProbe) Prime(now time.Time) { p.measureCPU(now) }

// Measure reads the server's load at now and the CPU times of sessions.
// The first reading of /proc/stat, with nothing to take a delta from,
// gives the CPU in use since boot (a share of the CPUs, as every later
// one; the load average, a queue length, would say 18 for a load of 37
// on 2 CPUs); a call less than minSample after the last reading reports
// the CPU in use measured then.
func (p *LoadProbe) Measure(now time.Time, sessions []control.SessionInfo) Load {
	cpus := p.cpus()
	l := Load{CPUs: cpus}
	b, err := os.ReadFile(filepath.Join(p.root(), "loadavg"))
	l.Avg = ParseLoadavg(b, err, cpus)
	if !p.have || now.Sub(p.statAt) >= minSample {
		p.measureCPU(now)
	}
	l.CPU = p.cpu
	b, err = os.ReadFile(filepath.Join(p.root(), "meminfo"))
	if err == nil {
		l.MemAvail = ParseMemAvailable(b)
	}
	if p.prevAt.IsZero() || now.Sub(p.prevAt) >= minLearn {
		p.learn(now, sessions, cpus)
	}
	l.AppCPU = p.estimates()
	return l
}

// measureCPU takes the CPU in use at now from the delta of /proc/stat
// since the last reading, or since boot when there is none.
func (p *LoadProbe) measureCPU(now time.Time) {
	b, err := os.ReadFile(filepath.Join(p.root(), "stat"))
	total, idle, ok := ParseProcStat(b)
	switch {
	case err != nil || !ok:
		p.cpu, p.have = UnknownLoad, false
		return
	case !p.have:
		p.cpu = CPUInUse(0, 0, total, idle)
	case total > p.prevTotal:
		p.cpu = CPUInUse(p.prevTotal, p.prevIdle, total, idle)
	}
	p.prevTotal, p.prevIdle, p.have, p.statAt = total, idle, true, now
}

// learn takes one interval's CPU use of each session into the estimate
// of its app: the session's rate in CPUs, at most cpus.
func (p *LoadProbe) learn(now time.Time, sessions []control.SessionInfo, cpus int) {
	dt := now.Sub(p.prevAt).Seconds()
	want := make(map[int]bool, len(sessions))
	for _, s := range sessions {
		if s.PID > 0 {
			want[s.PID] = true
		}
	}
	ticks := sessionTicks(p.root(), want)
	sum, n := map[string]float64{}, map[string]int{}
	for _, s := range sessions {
		t, ok := ticks[s.PID]
		if !ok {
			continue
		}
		if prev, seen := p.prevProc[s.PID]; seen && dt > 0 {
			used := 0.0
			if t > prev {
				used = float64(t-prev) / clockTicks
			}
			sum[s.App] += min(used/dt, float64(cpus))
			n[s.App]++
		}
	}
	if p.est == nil {
		p.est = map[string]float64{}
	}
	for app, k := range n {
		v := sum[app] / float64(k)
		if old, ok := p.est[app]; ok {
			v = old + appSmoothing*(v-old)
		}
		p.est[app] = v
	}
	p.prevProc, p.prevAt = ticks, now
}

// estimates is a copy of the learned estimates, with those the config
// sets in their place.
func (p *LoadProbe) estimates() map[string]float64 {
	out := make(map[string]float64, len(p.est))
	for app, v := range p.est {
		out[app] = v
	}
	if p.Set != nil {
		for app, v := range p.Set() {
			out[app] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// CPUInUse is the CPU in use per CPU between two /proc/stat readings:
// the share of the jiffies that were not idle.
func CPUInUse(prevTotal, prevIdle, total, idle uint64) float64 {
	dt := total - prevTotal
	if dt == 0 || idle < prevIdle {
		return UnknownLoad
	}
	busy := dt - min(dt, idle-prevIdle)
	return float64(busy) / float64(dt)
}

// ParseProcStat reads the aggregate "cpu" line of /proc/stat: the jiffies
// spent in all states but guest (counted in user already) and those idle
// (idle and iowait).
func ParseProcStat(b []byte) (total, idle uint64, ok bool) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return total, idle, true
}

// ParseLoadavg turns /proc/loadavg's content (read with err) into the
// 1-minute load per CPU; UnknownLoad if it says nothing usable.
func ParseLoadavg(b []byte, err error, cpus int) float64 {
	f := strings.Fields(string(b))
	if err != nil || len(f) == 0 || cpus <= 0 {
		return UnknownLoad
	}
	v, perr := strconv.ParseFloat(f[0], 64)
	if perr != nil || v < 0 {
		return UnknownLoad
	}
	return v / float64(cpus)
}

// ParseMemAvailable reads MemAvailable, in bytes, from /proc/meminfo's
// content ("MemAvailable:   24171852 kB"); 0 if the line is missing or
// malformed (kernels before 3.14 have none).
func ParseMemAvailable(b []byte) uint64 {
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || kb > math.MaxUint64/1024 {
			return 0
		}
		return kb * 1024
	}
	return 0
}
