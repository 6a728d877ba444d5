package appd

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"switchyard/control"
)

// killGrace is how long a hung-up app has to exit before SIGKILL, and how
// long a killed app's I/O stays open before appd closes it.
const killGrace = 2 * time.Second

// errReaped is returned when signalling a session whose process has already
// been reaped: its pid may belong to someone else by now.
var errReaped = errors.New("appd: process already reaped")

// session is one running app: the record that outlives any one attachment.
// It owns the process, its process group (pgid == pid, thanks to Setsid)
// and its I/O (a PTY master or three pipes); an attachment relays that I/O
// to an SSH channel.
//
// A PTY session outlives its attachments: see detach.go for how its output
// is pumped, kept while detached, and how the grace period ends it.
type session struct {
	info   control.SessionInfo // immutable once registered; view adds the live fields
	grace  time.Duration       // PTY: how long it may stay detached; 0 hangs up at once
	cmd    *exec.Cmd
	keeper *Keeper // kills the process group if appd dies; nil for none
	pid    int     // the app's pid, its process group and session id

	// viaKeeper: the keeper started the app (or held it for this appd):
	// it reaps and signals it, and holds it across an appd restart.
	viaKeeper bool
	pumped    chan struct{} // closed when the pump returns; nil if pump is not watched
	term      *terminal     // PTY sessions; nil for batch
	pipe      *pipes        // batch sessions; nil for PTY
	rec       *recorder     // the session's recording; nil when not recorded
	cg        *cgroup       // the session's control group; nil for none

	// Lock order: attachMu, then outMu, then mu.
	attachMu sync.Mutex // serialises attach and end
	outMu    sync.Mutex // held while output is written to an attachment

	mu       sync.Mutex  // guards the fields below
	reaped   bool        // set before cmd.Wait; no signal is sent after it
	reason   string      // why appd hung the app up, "" if it ended by itself
	killedBy string      // the admin who ended the session (broker kill), "" if none
	killNote string      // the reason that admin gave, shown to the user
	att      *attachment // PTY: where output goes; nil while detached
	gateway  string      // gateway of the latest attachment
	detached time.Time   // when the last attachment went away; zero while attached
	gen      uint64      // counts detaches, so a stale grace timer does nothing
	timer    *time.Timer // the running grace period, if detached
	kept     ring        // output produced while detached
	mirror   *keptFile   // kept, in a file the keeper holds (viaKeeper, once detached); nil if none
	closing  bool        // a hang-up was requested: no new attachments, no second hang-up
	handed   bool        // handed over to the next appd (handover.go): nothing more is done to it
	held     bool        // pre-launched and never attached yet: its timer is the hold
	ended    bool        // the app exited and its output is drained
	tail     tailRing    // PTY: the latest output, a watcher's first screen
	watchers []*watcher  // admins watching the session (watch.go)

	unixUser string   // the Unix user the app runs as, for the audit log
	argv     []string // the app's argv, for the audit log (cmd.Args may start the exec shim)

	exited chan struct{} // closed once cmd.Wait has returned
	result exitResult    // written before exited is closed

	in, out atomic.Int64 // bytes channel → app, app → channel

	// The client's input reaches the terminal from one attachment at a
	// time (input.go), so that a gateway re-attaching can tell from in
	// what it sent that never arrived.
	inAtt   atomic.Pointer[attachment] // whose input is written; nil: none
	inMu    sync.Mutex                 // held while input is written and counted
	inExact bool                       // in counts every byte written to the terminal; guarded by inMu
	inFinal bool                       // in is final: input stopped for a handover; guarded by mu
}

// mode names the kind of session for logs.
func (s *session) mode() string {
	if s.term != nil {
		return "pty"
	}
	return "batch"
}

// signal sends sig to the app's process group unless the app has been
// reaped.
func (s *session) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.reaped:
		return errReaped
	case s.handed:
		return errHanded
	case s.viaKeeper:
		return s.keeper.Signal(s.pid, sig)
	}
	return syscall.Kill(-s.pid, sig)
}

// errHanded is returned when signalling a session handed to the next appd.
var errHanded = errors.New("appd: session handed over")

// reap waits for the app to exit and reaps it: once it returns, reaped is
// set, cmd.Wait has returned and s.exited is closed.
func (s *session) reap() {
	s.startReaping()
	<-s.exited
}

// startReaping arranges for the app to be reaped as soon as it exits (see
// collect), without a thread waiting for it (see exitWaiter), or where
// pidfds are not available, by a goroutine blocked in waitid.
func (s *session) startReaping() {
	if s.viaKeeper {
		s.keeper.OnExit(s.pid, s.collectStatus)
		return
	}
	err := notifyExit(s.pid, func(zombie bool) {
		if !zombie {
			go s.reapBlocking()
			return
		}
		s.collect(true)
	})
	if err != nil {
		go s.reapBlocking()
	}
}

// reapBlocking waits for the app to exit with waitid(WNOWAIT), blocking a
// thread, then collects it.
func (s *session) reapBlocking() {
	var info unix.Siginfo
	var err error
	for {
		err = unix.Waitid(unix.P_PID, s.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	s.collect(err == nil)
}

// collect reaps the app with cmd.Wait and closes s.exited. It happens in
// two steps so that signal never races with the reaping: the app is known
// to be a zombie (zombie is true: its pid is still reserved, so signals
// stay safe), then reaped is set under s.mu, and only then does cmd.Wait
// release the pid. Should that not be known, which it should be, liveness
// wins: signals stay possible until cmd.Wait returns.
func (s *session) collect(zombie bool) {
	if zombie {
		s.markReaped()
		s.keeper.Remove(s.pid) // while the pid cannot have been reused
	}
	s.cmd.Wait() // the status is in ProcessState; I/O errors do not matter here
	s.markReaped()
	if !zombie {
		s.keeper.Remove(s.pid)
	}
	s.exit(resultOf(s.cmd.ProcessState))
}

// collectStatus is collect for an app the keeper reaped: status is its
// wait status.
func (s *session) collectStatus(status int) {
	s.markReaped()
	s.exit(resultOfStatus(syscall.WaitStatus(status)))
}

// exit records the app's result once it is reaped and closes s.exited.
func (s *session) exit(r exitResult) {
	s.result = r
	if cg := s.group(); cg.oomKills() > 0 {
		s.result = s.result.outOfMemory(cg.memory, s.term != nil)
	}
	if s.term != nil {
		s.term.appExited()
	}
	close(s.exited)
}

// group is the session's control group, nil for none.
func (s *session) group() *cgroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cg
}

func (s *session) markReaped() {
	s.mu.Lock()
	s.reaped = true
	s.mu.Unlock()
}

// waitExited reports whether the app was reaped within d.
func (s *session) waitExited(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.exited:
		return true
	case <-t.C:
		return false
	}
}

// hangup ends an app nobody is attached to any more: SIGHUP to its process
// group, SIGKILL if it has not exited within killGrace, and if even that did
// not end it, its I/O is closed so that the relay can finish.
func (s *session) hangup(reason string) {
	s.setReason(reason)
	s.signal(syscall.SIGHUP)
	if s.waitExited(killGrace) {
		return
	}
	s.signal(syscall.SIGKILL)
	if s.waitExited(killGrace) {
		return
	}
	s.abort()
}

// kill sends SIGKILL to the process group and closes the app's I/O.
func (s *session) kill() {
	s.setReason("killed")
	s.signal(syscall.SIGKILL)
	s.abort()
}

// abort closes the app's side of the I/O so that blocked copies end.
func (s *session) abort() {
	if s.term != nil {
		s.term.close()
	}
	if s.pipe != nil {
		s.pipe.close()
	}
}

// discard kills a session that never got attached and waits for it.
func (s *session) discard() {
	s.kill()
	if s.pipe != nil {
		s.reap() // batch sessions are reaped by their relay, which never ran
	} else {
		<-s.exited
		s.rec.close("discarded: the session's channel could not be accepted")
	}
	s.removeCgroup(nil)
	if s.viaKeeper {
		s.keeper.Forget(s.pid)
	}
}

// requestHangup hangs the app up (see hangup) on a goroutine of its own,
// unless that was requested already or the app has been reaped, and
// refuses further attachments. Callers hold s.mu.
func (s *session) requestHangup(reason string) {
	if s.closing || s.handed {
		return
	}
	s.closing = true
	if !s.reaped {
		go s.hangup(reason)
	}
}

// hangupLater is requestHangup for callers that do not hold s.mu.
func (s *session) hangupLater(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requestHangup(reason)
}

// hangupWhenDone hangs the app up when ctx ends, until stop is called. It
// takes no goroutine while it waits (context.AfterFunc).
func (s *session) hangupWhenDone(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() { s.hangupLater("context ended") })
}

// shutdown is Shutdown's hang-up: SIGHUP to the process group. Shutdown
// escalates itself when its context ends.
func (s *session) shutdown() {
	s.setReason("appd shutting down")
	s.signal(syscall.SIGHUP)
}

func (s *session) setReason(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason == "" {
		s.reason = reason
	}
}

func (s *session) hangupReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}
