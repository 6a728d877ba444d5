package appd

import (
	"bytes"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// A session's CPU use is that of every process in it, not only its
// leader's: a shell script or a build does its work in short-lived
// children, whose time the kernel adds to their parent's cutime and
// cstime when the parent reaps them. So the probe sums, over the live
// processes of each session (field session of /proc/PID/stat equal to the
// app's pid, which is its session id: apps start with Setsid), utime,
// stime, cutime and cstime, and takes the difference of that sum between
// two samples:
//
//   - a child born and reaped by a member between two samples is counted
//     whole, in its reaper's cutime/cstime;
//   - a member seen at the first sample and reaped by a member before the
//     second leaves the sum with its times at the first sample and comes
//     back into it, in its reaper's cutime/cstime, with its times at
//     death: the difference is what it used in between;
//   - a member that leaves the session (setsid(2)), or is reaped by a
//     process outside it, takes its times with it: the difference may
//     then fall short, or below zero, which counts as zero.
//
// The sum is not read atomically: a member reaped while the scan runs is
// counted twice if read before its reaper, not at all if after. /proc is
// read in ascending pid order, which puts most parents before their
// children, and a session's rate is bounded by the CPUs there are.

// PIDStat is what the probe reads from one /proc/PID/stat.
type PIDStat struct {
	Session int    // session id
	Ticks   uint64 // utime+stime+cutime+cstime, in clock ticks
}

// ParsePIDStat reads the session id and utime+stime+cutime+cstime, in
// clock ticks, from /proc/PID/stat. The command name, in parentheses, may
// hold spaces and parentheses: fields are counted from the last ')'.
func ParsePIDStat(b []byte) (PIDStat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return PIDStat{}, false
	}
	f := bytes.Fields(b[i+1:])
	// After the name: state(3) ppid pgrp session(6) tty_nr tpgid flags
	// minflt cminflt majflt cmajflt utime(14) stime cutime cstime(17).
	if len(f) < 15 {
		return PIDStat{}, false
	}
	sid, err := strconv.Atoi(string(f[3]))
	if err != nil {
		return PIDStat{}, false
	}
	var sum uint64
	for _, s := range f[11:15] {
		v, err := strconv.ParseUint(string(s), 10, 64)
		if err != nil {
			return PIDStat{}, false
		}
		sum += v
	}
	return PIDStat{Session: sid, Ticks: sum}, true
}

// sessionTicks sums, for each session id in want, the CPU ticks of its
// live processes under root (a proc mount). A session none of whose
// processes could be read is left out.
func sessionTicks(root string, want map[int]bool) map[int]uint64 {
	out := make(map[int]uint64, len(want))
	if len(want) == 0 {
		return out
	}
	d, err := os.Open(root)
	if err != nil {
		return out
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	pids := make([]int, 0, len(names))
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	buf, path := make([]byte, 1024), make([]byte, 0, len(root)+32)
	for _, pid := range pids {
		path = append(strconv.AppendInt(append(append(path[:0], root...), '/'), int64(pid), 10), "/stat"...)
		st, ok := readPIDStat(string(path), buf)
		if ok && want[st.Session] {
			out[st.Session] += st.Ticks
		}
	}
	return out
}

// readPIDStat reads and parses one /proc/PID/stat into buf.
func readPIDStat(path string, buf []byte) (PIDStat, bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return PIDStat{}, false
	}
	n, err := unix.Read(fd, buf)
	unix.Close(fd)
	if err != nil || n <= 0 {
		return PIDStat{}, false
	}
	return ParsePIDStat(buf[:n])
}
