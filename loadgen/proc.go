package loadgen

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ProcSpec names a process whose memory hold reports: NAME=PID, or
// NAME=PID+ for the process and its descendants running the same program
// (comm), such as sshd and the sshd processes it forks per connection,
// without the apps they run. Several specs with one name are summed.
type ProcSpec struct {
	Name string
	PID  int
	Tree bool
}

// Mem is memory in KiB, as /proc/PID/smaps_rollup reports it.
type Mem struct {
	RSS int64 `json:"rss_kib"`
	PSS int64 `json:"pss_kib"`
}

// ProcMem is the memory of one named group of processes before and after
// the sessions were opened.
type ProcMem struct {
	Name          string  `json:"name"`
	PIDs          []int   `json:"pids"`
	Before        Mem     `json:"before"`
	After         Mem     `json:"after"`
	ProcsBefore   int     `json:"procs_before"` // processes counted
	ProcsAfter    int     `json:"procs_after"`
	PerSessionPSS float64 `json:"per_session_pss_kib"` // (After-Before).PSS / sessions held
	PerSessionRSS float64 `json:"per_session_rss_kib"`
}

// ParseProcSpecs parses "NAME=PID[+],..."; "" is no specs.
func ParseProcSpecs(s string) ([]ProcSpec, error) {
	if s == "" {
		return nil, nil
	}
	var specs []ProcSpec
	for _, item := range strings.Split(s, ",") {
		name, pid, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want NAME=PID or NAME=PID+", item)
		}
		sp := ProcSpec{Name: name}
		sp.Tree = strings.HasSuffix(pid, "+")
		n, err := strconv.Atoi(strings.TrimSuffix(pid, "+"))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: %q is not a process id", item, pid)
		}
		sp.PID = n
		specs = append(specs, sp)
	}
	return specs, nil
}

// parseSmapsRollup reads the Rss and Pss lines (in kB) of smaps_rollup.
func parseSmapsRollup(r io.Reader) (Mem, error) {
	var m Mem
	var seen int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		var dst *int64
		switch f[0] {
		case "Rss:":
			dst = &m.RSS
		case "Pss:":
			dst = &m.PSS
		default:
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return m, fmt.Errorf("smaps_rollup: %s %q: %w", f[0], f[1], err)
		}
		*dst = n
		seen++
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if seen < 2 {
		return m, fmt.Errorf("smaps_rollup: no Rss and Pss lines")
	}
	return m, nil
}

// procMem reads the memory of one process.
func procMem(proc string, pid int) (Mem, error) {
	f, err := os.Open(filepath.Join(proc, strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return Mem{}, fmt.Errorf("memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	m, err := parseSmapsRollup(f)
	if err != nil {
		return m, fmt.Errorf("memory of pid %d: %w", pid, err)
	}
	return m, nil
}

// parseStat returns the comm and parent pid from /proc/PID/stat.
func parseStat(b []byte) (comm string, ppid int, err error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, fmt.Errorf("stat: no (comm)")
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 2 {
		return "", 0, fmt.Errorf("stat: too short")
	}
	ppid, err = strconv.Atoi(f[1])
	return string(b[open+1 : end]), ppid, err
}

// processTable maps every process in proc to its comm and parent.
type processTable map[int]struct {
	comm string
	ppid int
}

func readProcessTable(proc string) (processTable, error) {
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	t := processTable{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		comm, ppid, err := parseStat(b)
		if err != nil {
			continue
		}
		t[pid] = struct {
			comm string
			ppid int
		}{comm, ppid}
	}
	return t, nil
}

// tree returns root and its descendants with root's comm, reaching
// through descendants of other programs too.
func (t processTable) tree(root int) []int {
	children := map[int][]int{}
	for pid, p := range t {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	out := []int{root}
	for queue := children[root]; len(queue) > 0; queue = queue[1:] {
		pid := queue[0]
		if t[pid].comm == t[root].comm {
			out = append(out, pid)
		}
		queue = append(queue, children[pid]...)
	}
	return out
}

// measure sums the memory of each named group of specs, read from proc
// (normally "/proc"). A process of a tree that vanishes while being read
// is skipped; a named root that is missing is an error.
func measure(proc string, specs []ProcSpec) (map[string]Mem, map[string]int, error) {
	mems, counts := map[string]Mem{}, map[string]int{}
	var table processTable
	for _, sp := range specs {
		pids := []int{sp.PID}
		if sp.Tree {
			if table == nil {
				var err error
				if table, err = readProcessTable(proc); err != nil {
					return nil, nil, err
				}
			}
			if _, ok := table[sp.PID]; !ok {
				return nil, nil, fmt.Errorf("%s: no process %d", sp.Name, sp.PID)
			}
			pids = table.tree(sp.PID)
		}
		for i, pid := range pids {
			m, err := procMem(proc, pid)
			if err != nil && i == 0 {
				return nil, nil, fmt.Errorf("%s: %w", sp.Name, err)
			}
			if err != nil {
				continue
			}
			sum := mems[sp.Name]
			sum.RSS += m.RSS
			sum.PSS += m.PSS
			mems[sp.Name] = sum
			counts[sp.Name]++
		}
	}
	return mems, counts, nil
}
