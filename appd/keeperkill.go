package appd

import (
	"bytes"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// killBound bounds how long the keeper keeps killing what it finds of its
// apps: processes that fork as fast as they are killed could otherwise
// keep it busy for ever.
const killBound = 5 * time.Second

// killSessions sends SIGKILL to everything of the given apps. Each id is
// an app's process id, which is also its process group and session id
// (apps are started with Setsid). A process group alone is not enough: a
// shell with job control (an interactive bash) puts each job in a process
// group of its own, in the app's session. So after kill(-id), the keeper
// scans /proc for live processes whose session or process group is one of
// ids and kills them, until a scan finds none or killBound has passed. It
// returns how many ids had a process to kill.
//
// A process that left its app's session (setsid(2), as daemons do) is not
// found.
func killSessions(ids map[int]struct{}) int {
	hit := make(map[int]bool)
	for id := range ids {
		if unix.Kill(-id, unix.SIGKILL) == nil {
			hit[id] = true
		}
	}
	for deadline := time.Now().Add(killBound); time.Now().Before(deadline); {
		found := sessionMembers(ids)
		if len(found) == 0 {
			break
		}
		for pid, id := range found {
			if killMember(pid, id) {
				hit[id] = true
			}
		}
		time.Sleep(time.Millisecond) // let the killed become zombies
	}
	return len(hit)
}

// killMember sends SIGKILL to pid, found in app id's session or process
// group, through a pidfd after checking again that pid is still in it, so
// that a pid reused since the scan is never hit. Without pidfds (Linux
// before 5.3) it falls back to kill(2).
func killMember(pid, id int) bool {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return err != unix.ESRCH && unix.Kill(pid, unix.SIGKILL) == nil
	}
	defer unix.Close(pidfd)
	var buf [512]byte
	_, pgrp, sid, ok := readStat(pid, buf[:])
	if !ok || (sid != id && pgrp != id) {
		return false
	}
	return unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0) == nil
}

// sessionMembers maps every live (not zombie) process whose session or
// process group is in ids to that id.
func sessionMembers(ids map[int]struct{}) map[int]int {
	found := make(map[int]int)
	d, err := os.Open("/proc")
	if err != nil {
		return found
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	buf := make([]byte, 512)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		state, pgrp, sid, ok := readStat(pid, buf)
		if !ok || state == 'Z' || state == 'X' {
			continue
		}
		if _, in := ids[sid]; in {
			found[pid] = sid
		} else if _, in := ids[pgrp]; in {
			found[pid] = pgrp
		}
	}
	return found
}

// readStat reads the state, process group and session of pid from
// /proc/PID/stat, using buf.
func readStat(pid int, buf []byte) (state byte, pgrp, sid int, ok bool) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, 0, false
	}
	n, err := unix.Read(fd, buf)
	unix.Close(fd)
	if err != nil || n <= 0 {
		return 0, 0, 0, false
	}
	// "pid (comm) state ppid pgrp session ...": comm may hold anything, so
	// fields are counted after its last ')'.
	b := buf[:n]
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 4 || len(f[0]) != 1 {
		return 0, 0, 0, false
	}
	pgrp, err1 := strconv.Atoi(string(f[2]))
	sid, err2 := strconv.Atoi(string(f[3]))
	return f[0][0], pgrp, sid, err1 == nil && err2 == nil
}
