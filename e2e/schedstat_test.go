package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procRole is one part of a measured path (the client, the gateway, appd,
// the app...) and its processes, as BenchmarkEchoStages accounts for
// them.
type procRole struct {
	name string
	pids func() []int // looked up when the measure starts
}

// schedCount is what the kernel's scheduler did for a set of processes,
// summed over their threads (/proc/PID/task/TID/schedstat): CPU time, time
// spent runnable but waiting for a CPU, and times scheduled in (each a
// wake-up, or a return after preemption).
type schedCount struct {
	cpu, wait time.Duration
	runs      int64
}

// readSched sums the schedstat of every thread of pids. A process that
// is gone counts nothing.
func readSched(pids []int) schedCount {
	var c schedCount
	for _, pid := range pids {
		tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "schedstat"))
		for _, path := range tasks {
			data, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			f := strings.Fields(string(data))
			if len(f) != 3 {
				continue
			}
			cpu, _ := strconv.ParseInt(f[0], 10, 64)
			wait, _ := strconv.ParseInt(f[1], 10, 64)
			runs, _ := strconv.ParseInt(f[2], 10, 64)
			c.cpu += time.Duration(cpu)
			c.wait += time.Duration(wait)
			c.runs += runs
		}
	}
	return c
}

// procInfo is the parent and command name of a process.
type procInfo struct {
	ppid int
	comm string
}

// processes reads the parent and name of every process.
func processes() map[int]procInfo {
	out := map[int]procInfo{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
		if err != nil {
			continue
		}
		f := strings.Fields(s[end+1:]) // state, ppid, ...
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out[pid] = procInfo{ppid: ppid, comm: s[open+1 : end]}
	}
	return out
}

// descendants lists the processes below pid whose name keep accepts.
func descendants(pid int, keep func(comm string) bool) []int {
	all := processes()
	var out []int
	for p, info := range all {
		for q := info.ppid; q > 1; q = all[q].ppid {
			if q == pid {
				if keep(info.comm) {
					out = append(out, p)
				}
				break
			}
			if _, ok := all[q]; !ok {
				break
			}
		}
	}
	return out
}

// anyComm keeps every process.
func anyComm(string) bool { return true }

// pidsOf is a role's fixed list of processes.
func pidsOf(pids ...int) func() []int { return func() []int { return pids } }

// schedMeter measures roles over a stretch of a benchmark.
type schedMeter struct {
	roles  []procRole
	pids   [][]int
	before []schedCount
}

// startSched looks up each role's processes and reads their counts.
func startSched(roles []procRole) *schedMeter {
	m := &schedMeter{roles: roles}
	for _, r := range roles {
		pids := r.pids()
		m.pids = append(m.pids, pids)
		m.before = append(m.before, readSched(pids))
	}
	return m
}

// report reports, per role and per op, the times its processes were
// scheduled in ("ROLE-runs/op"), their CPU time ("ROLE-cpu-µs/op") and
// their time waiting for a CPU ("ROLE-wait-µs/op") since startSched.
func (m *schedMeter) report(b *testing.B, ops int) {
	for i, r := range m.roles {
		after := readSched(m.pids[i])
		n := float64(ops)
		b.ReportMetric(float64(after.runs-m.before[i].runs)/n, r.name+"-runs/op")
		b.ReportMetric(float64(after.cpu-m.before[i].cpu)/float64(time.Microsecond)/n, r.name+"-cpu-µs/op")
		b.ReportMetric(float64(after.wait-m.before[i].wait)/float64(time.Microsecond)/n, r.name+"-wait-µs/op")
	}
}
