package appd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// KeeperHoldEnv tells a keeper how long it keeps its apps once no appd is
// connected (a Go duration); DefaultKeeperHold if unset or invalid.
const KeeperHoldEnv = "SWITCHYARD_KEEPER_HOLD"

// DefaultKeeperHold is how long a keeper waits for an appd to come back
// before it ends the apps it holds.
const DefaultKeeperHold = 30 * time.Second

// keeperReplyTimeout bounds how long either side waits for the socket to
// take a message, or appd for an answer.
const keeperReplyTimeout = 5 * time.Second

// heldApp is an app the keeper started and has not been told to forget.
type heldApp struct {
	meta   json.RawMessage
	files  []*os.File // what appd asked to keep: the PTY master, kept output
	status *int       // the wait status once reaped
}

func (h *heldApp) closeFiles() {
	for _, f := range h.files {
		f.Close()
	}
	h.files = nil
}

// keeperEvent is what the keeper's loop waits for besides signals.
type keeperEvent struct {
	conn int // a new connection's descriptor, when accepted
	seq  int // the connection a packet came from (keeperd.seq)
	pkt  keeperPacket
	err  error // the connection ended
	acc  bool  // conn was just accepted
}

// keeperd is the keeper process's state. Only its loop touches it.
type keeperd struct {
	ln     int
	hold   time.Duration
	apps   map[int]*heldApp
	groups map[int]struct{} // apps appd started itself: killed as soon as appd goes
	conn   int              // the connected appd; -1 for none
	queue  []int            // appds that connected meanwhile: the next is served once conn goes
	seq    int              // counts connections: events of an earlier one are ignored
	events chan keeperEvent
}

// RunKeeper is the keeper process (see StartKeeper): it serves appds on
// the listening socket at descriptor 3, one at a time, starts their apps
// as its own children, holds what each session needs to survive its appd,
// and ends every app when appd asks it to (Quit) or when no appd has been
// connected for KeeperHoldEnv. It returns how many apps it had to kill.
// It ignores SIGHUP, SIGINT and SIGTERM: it ends when its apps do.
func RunKeeper() (int, error) {
	// Caught, not ignored: an ignored signal would stay ignored in every
	// app the keeper starts (execve keeps SIG_IGN, resets handlers).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	hold, err := time.ParseDuration(os.Getenv(KeeperHoldEnv))
	if err != nil || hold <= 0 {
		hold = DefaultKeeperHold
	}
	// Orphans of the apps (a daemonised grandchild) come to the keeper,
	// which reaps them, instead of to init.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	k := &keeperd{ln: keeperFD, hold: hold, apps: map[int]*heldApp{}, groups: map[int]struct{}{},
		conn: -1, events: make(chan keeperEvent)}
	return k.run()
}

// run is the keeper's loop.
func (k *keeperd) run() (int, error) {
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	if err := unix.Listen(k.ln, 4); err != nil {
		return 0, fmt.Errorf("keeper listen: %w", err)
	}
	go k.accept()
	idle := time.NewTimer(k.hold)
	defer idle.Stop()
	for {
		select {
		case ev := <-k.events:
			switch {
			case ev.acc:
				if k.connect(ev.conn) {
					idle.Stop()
				}
			case ev.seq != k.seq || k.conn < 0:
				ev.pkt.close()
			case ev.err != nil:
				k.disconnect(ev.err)
				if k.next() {
					continue
				}
				if len(k.apps) == 0 {
					return 0, nil
				}
				idle.Reset(k.hold)
			case ev.pkt.op == opQuit:
				unix.Shutdown(k.conn, unix.SHUT_RDWR)
				return k.killAll(), nil
			default:
				k.handle(ev.pkt)
			}
		case <-chld:
			k.reap()
		case <-idle.C:
			if k.conn < 0 {
				n := k.killAll()
				keeperLogf("no appd came back within %s: ended %d app(s)", k.hold, n)
				return n, nil
			}
		}
	}
}

// accept hands each new connection to the loop.
func (k *keeperd) accept() {
	for {
		fd, _, err := unix.Accept4(k.ln, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			keeperLogf("accept: %v", err)
			return
		}
		k.events <- keeperEvent{conn: fd, acc: true}
	}
}

// connect takes fd as the appd, unless fd's peer is not this keeper's
// user; it sends the apps held so far. While an appd is connected, fd
// waits its turn (a restarted appd may connect before the keeper has read
// the end of the last one).
func (k *keeperd) connect(fd int) bool {
	switch {
	case !samePeer(fd):
		keeperLogf("refused a connection: not my user")
		unix.Close(fd)
		return false
	case k.conn >= 0 && len(k.queue) < 4:
		k.queue = append(k.queue, fd)
		return false
	case k.conn >= 0:
		keeperLogf("refused a connection: an appd is connected")
		unix.Close(fd)
		return false
	}
	setSendTimeout(fd, keeperReplyTimeout)
	k.conn = fd
	k.seq++
	go k.read(fd, k.seq)
	for pid, h := range k.apps {
		if k.send(opAdopted, keeperMsg{PID: pid, Meta: h.meta, Status: h.status}, h.files) != nil {
			return false
		}
	}
	return k.send(opListed, keeperMsg{Version: keeperProtocol}, nil) == nil
}

// next serves the first appd that waited its turn, if any.
func (k *keeperd) next() bool {
	for len(k.queue) > 0 && k.conn < 0 {
		fd := k.queue[0]
		k.queue = k.queue[1:]
		k.connect(fd)
	}
	return k.conn >= 0
}

// read hands the loop every packet of connection fd, number seq, then its
// end, and closes it.
func (k *keeperd) read(fd, seq int) {
	defer unix.Close(fd)
	buf, oob := keeperBuffers()
	for {
		p, err := recvKeeperMsg(fd, buf, oob)
		if errors.Is(err, errKeeperMalformed) {
			keeperLogf("ignored: %v", err)
			continue
		}
		if err != nil {
			k.events <- keeperEvent{seq: seq, err: err}
			return
		}
		k.events <- keeperEvent{seq: seq, pkt: p}
	}
}

// disconnect forgets the appd: the groups it started itself are killed
// now (nobody can reach them any more); the apps the keeper holds wait.
func (k *keeperd) disconnect(err error) {
	if k.conn >= 0 {
		unix.Shutdown(k.conn, unix.SHUT_RDWR) // its reader closes it
	}
	k.conn = -1
	if n := killSessions(k.groups); n > 0 {
		keeperLogf("appd is gone (%v): killed what was left of %d app(s) it started itself", err, n)
	}
	k.groups = map[int]struct{}{}
}

// send writes to the connected appd; a failure drops the connection.
func (k *keeperd) send(op byte, m keeperMsg, files []*os.File) error {
	if k.conn < 0 {
		return errKeeperEOF
	}
	err := sendKeeperMsg(k.conn, op, m, files)
	if err != nil {
		keeperLogf("dropping appd: %v", err)
		k.disconnect(err)
	}
	return err
}

// handle applies one request from appd.
func (k *keeperd) handle(p keeperPacket) {
	m := p.msg
	h := k.apps[m.PID]
	switch p.op {
	case opSpawn:
		k.spawn(p)
		return
	case opHold:
		if h != nil {
			h.closeFiles()
			h.files, h.meta, p.files = p.files, m.Meta, nil
		}
	case opMeta:
		if h != nil {
			h.meta = m.Meta
		}
	case opSignal:
		if h != nil && h.status == nil && m.Sig > 0 {
			unix.Kill(-m.PID, syscall.Signal(m.Sig))
		}
	case opForget:
		if h != nil {
			h.closeFiles()
			delete(k.apps, m.PID)
		}
	case opAdd:
		if m.PID > 1 {
			k.groups[m.PID] = struct{}{}
		}
	case opRemove:
		delete(k.groups, m.PID)
	case opWait:
		if m.Hold > 0 {
			k.hold = m.Hold
		}
	}
	p.close()
}

// spawn starts an app as appd asked, answers with its pid, and holds the
// descriptors after the app's own.
func (k *keeperd) spawn(p keeperPacket) {
	m := p.msg
	if m.Spawn == nil || m.Child < 1 || m.Child > len(p.files) {
		p.close()
		k.send(opStarted, keeperMsg{Ref: m.Ref, Err: "malformed spawn request"}, nil)
		return
	}
	child, held := p.files[:m.Child], p.files[m.Child:]
	if m.Exe && len(held) > 0 { // run appd's program through the descriptor it sent
		exe := held[len(held)-1]
		held = held[:len(held)-1]
		defer exe.Close()
		fd, err := rawFD(exe)
		if err != nil {
			p.close()
			k.send(opStarted, keeperMsg{Ref: m.Ref, Err: err.Error()}, nil)
			return
		}
		m.Spawn.Path = fmt.Sprintf("/proc/self/fd/%d", fd)
	}
	pid, err := startHeld(m.Spawn, child)
	for _, f := range child {
		f.Close()
	}
	if err != nil {
		for _, f := range held {
			f.Close()
		}
		k.send(opStarted, keeperMsg{Ref: m.Ref, Err: err.Error()}, nil)
		return
	}
	k.apps[pid] = &heldApp{meta: m.Meta, files: held}
	k.send(opStarted, keeperMsg{Ref: m.Ref, PID: pid}, nil)
}

// startHeld starts spec in a session of its own, from the spawn thread so
// that it dies with the keeper (Pdeathsig), and returns its pid. The
// keeper reaps it (reap), so the os.Process is released at once.
func startHeld(spec *spawnSpec, files []*os.File) (int, error) {
	attr := &os.ProcAttr{Dir: spec.Dir, Env: spec.Env, Files: files, Sys: &syscall.SysProcAttr{
		Setsid: true, Setctty: spec.Setctty, Credential: spec.credential(), Pdeathsig: syscall.SIGKILL}}
	var proc *os.Process
	err := onSpawnThread(func() error {
		var err error
		proc, err = os.StartProcess(spec.Path, spec.Argv, attr)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	pid := proc.Pid
	proc.Release()
	return pid, nil
}

// reap collects every child that exited: an app's status is kept and
// sent to appd; orphans that came to the keeper are only reaped.
func (k *keeperd) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		h := k.apps[pid]
		if h == nil || h.status != nil {
			continue
		}
		st := int(ws)
		h.status = &st
		k.send(opExited, keeperMsg{PID: pid, Status: &st}, nil)
	}
}

// killAll ends every app still running, its session and process group,
// and returns how many there were.
func (k *keeperd) killAll() int {
	ids := make(map[int]struct{}, len(k.apps)+len(k.groups))
	for pid, h := range k.apps {
		if h.status == nil {
			ids[pid] = struct{}{}
		}
		h.closeFiles()
	}
	for pid := range k.groups {
		ids[pid] = struct{}{}
	}
	return killSessions(ids)
}

// samePeer reports whether fd's peer runs as this process's user.
func samePeer(fd int) bool {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	return err == nil && cred.Uid == uint32(os.Geteuid())
}

// setSendTimeout bounds how long a send on fd may wait for room.
func setSendTimeout(fd int, d time.Duration) error {
	tv := unix.NsecToTimeval(d.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return fmt.Errorf("keeper SO_SNDTIMEO: %w", err)
	}
	return nil
}

// errKeeperEOF is the end of the other side.
var errKeeperEOF = errors.New("appd: keeper link closed")

func keeperLogf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "switchyard keeper: "+format+"\n", args...)
}
