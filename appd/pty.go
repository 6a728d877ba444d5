package appd

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"switchyard/control"
)

// drainTimeout bounds how long appd keeps reading a PTY after the app has
// exited. Normally the read ends at once with EIO, when the last slave
// descriptor closes; a background grandchild that still holds the slave
// would otherwise keep the session open forever.
const drainTimeout = time.Second

// terminal is the PTY master of a session.
//
// creack/pty opens the master with os.OpenFile, so it is registered with
// the runtime poller, and then calls Fd() on it (for TIOCGPTN, TIOCSPTLCK
// and TIOCSWINSZ). Fd() puts the descriptor in blocking mode for good. The
// file stays registered, so SetReadDeadline still returns nil, but every
// Read is a plain blocking read(2): a deadline that expires during the read
// never interrupts it, and neither does Close. So startPTY replaces the
// master with a non-blocking duplicate that os.NewFile registers with the
// poller, resize goes through SyscallConn instead of Fd(), and nothing may
// call Fd() on master (nor pty.Setsize, which does). pollable records
// whether that worked.
type terminal struct {
	master   *os.File
	pollable bool // read deadlines and Close interrupt a blocked Read
}

// startPTY starts s.cmd on a new PTY of the requested size, in a new
// session with the PTY as controlling terminal, and starts the reaper.
// With a keeper that spawns, the keeper starts it and holds its terminal
// (see Keeper); otherwise appd does, registers its process group with the
// keeper, if any, and must call it on the spawn thread (see
// onSpawnThread): the app gets SIGKILL when that thread dies.
func (s *session) startPTY(spec *control.PtySpec, cred *syscall.Credential) error {
	attrs := &syscall.SysProcAttr{Setsid: true, Setctty: true, Credential: cred, Pdeathsig: syscall.SIGKILL}
	p, err := openPTY(spec)
	if err != nil {
		return err
	}
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = p.tty, p.tty, p.tty
	s.cmd.SysProcAttr = attrs
	if s.viaKeeper {
		s.pid, err = s.keeper.Spawn(s.cmd, true, nil, []*os.File{p.pty})
	} else if err = s.cmd.Start(); err == nil {
		s.pid = s.cmd.Process.Pid
	}
	p.tty.Close()
	if err != nil {
		p.pty.Close()
		return fmt.Errorf("start: %w", err)
	}
	s.term = newTerminal(p.pty)
	if s.viaKeeper {
		s.pumped = make(chan struct{})
	} else {
		s.keeper.Add(s.pid) // a failure is logged; Pdeathsig still holds
	}
	s.startReaping()
	return nil
}

// ptyPair is a new PTY: pty is the master, tty the slave.
type ptyPair struct{ pty, tty *os.File }

// openPTY opens a PTY of spec's size with the client's terminal modes, as
// pty.StartWithAttrs would, but sets the modes before the app can read them.
func openPTY(spec *control.PtySpec) (ptyPair, error) {
	master, tty, err := pty.Open()
	if err != nil {
		return ptyPair{}, fmt.Errorf("pty.Open: %w", err)
	}
	p := ptyPair{pty: master, tty: tty}
	ws := &pty.Winsize{Rows: clamp16(spec.Rows), Cols: clamp16(spec.Cols)}
	if err := pty.Setsize(master, ws); err != nil {
		p.close()
		return ptyPair{}, fmt.Errorf("pty.Setsize: %w", err)
	}
	if err := applyModes(int(tty.Fd()), spec.Modes); err != nil {
		p.close()
		return ptyPair{}, fmt.Errorf("terminal modes: %w", err)
	}
	return p, nil
}

func (p ptyPair) close() {
	p.pty.Close()
	p.tty.Close()
}

// newTerminal wraps master, swapping it for a pollable duplicate when it
// can. If it cannot, the blocking master is kept and drain falls back to a
// timer (see terminal.drain).
func newTerminal(master *os.File) *terminal {
	dup, err := pollableDup(master)
	if err != nil {
		return &terminal{master: master, pollable: false}
	}
	master.Close()
	return &terminal{master: dup, pollable: isPollable(dup)}
}

// isPollable reports whether f's reads honour deadlines: f is registered
// with the poller (SetReadDeadline does not fail with os.ErrNoDeadline) and
// its descriptor is non-blocking (checked without Fd(), which would make
// it blocking).
func isPollable(f *os.File) bool {
	if f.SetReadDeadline(time.Time{}) != nil {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var flags int
	var fcntlErr error
	if err := rc.Control(func(fd uintptr) { flags, fcntlErr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil {
		return false
	}
	return fcntlErr == nil && flags&unix.O_NONBLOCK != 0
}

// pollableDup returns a close-on-exec, non-blocking duplicate of f, which
// os.NewFile adds to the runtime poller. O_NONBLOCK is shared with f (one
// open file description), so f must not be used afterwards.
func pollableDup(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("fcntl F_DUPFD_CLOEXEC: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set O_NONBLOCK: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// resize sets the PTY size; the kernel then sends SIGWINCH to the
// foreground process group.
func (t *terminal) resize(cols, rows, width, height uint32) error {
	ws := &unix.Winsize{Row: clamp16(rows), Col: clamp16(cols), Xpixel: clamp16(width), Ypixel: clamp16(height)}
	rc, err := t.master.SyscallConn()
	if err != nil {
		return fmt.Errorf("pty SyscallConn: %w", err)
	}
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) {
		ioctlErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws)
	}); err != nil {
		return fmt.Errorf("pty Control: %w", err)
	}
	if ioctlErr != nil {
		return fmt.Errorf("ioctl TIOCSWINSZ: %w", ioctlErr)
	}
	return nil
}

// size returns the PTY's window size.
func (t *terminal) size() (*unix.Winsize, error) {
	rc, err := t.master.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("pty SyscallConn: %w", err)
	}
	var ws *unix.Winsize
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) {
		ws, ioctlErr = unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ)
	}); err != nil {
		return nil, fmt.Errorf("pty Control: %w", err)
	}
	if ioctlErr != nil {
		return nil, fmt.Errorf("ioctl TIOCGWINSZ: %w", ioctlErr)
	}
	return ws, nil
}

func (t *terminal) close() { t.master.Close() }

// appExited bounds, once the app has exited, how long the output copy may
// still read a pollable master: reads return what is buffered, then EIO,
// or time out if someone still holds the slave.
func (t *terminal) appExited() {
	if t.pollable {
		t.master.SetReadDeadline(time.Now().Add(drainTimeout))
	}
}

// drain waits, after the app has exited, for the output copy of a master
// that is not pollable. Such a read cannot be interrupted, so drain waits
// on a timer, then returns, leaving its reader blocked until the last
// slave descriptor closes (the kernel has sent SIGHUP to the foreground
// process group when the session leader exited, so that is usually soon).
func (t *terminal) drain(outDone <-chan struct{}) {
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	select {
	case <-outDone:
	case <-timer.C:
	}
}

// ptyReader reads a PTY master, turning the EIO Linux returns once no slave
// descriptor is open, and the drain deadline, into io.EOF.
type ptyReader struct{ f *os.File }

func (r ptyReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if errors.Is(err, syscall.EIO) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) {
		err = io.EOF
	}
	return n, err
}

// readMore tops up buf with what the terminal already holds, without
// waiting, so that output arriving faster than it is read leaves in full
// packets rather than one per (at most 4 KiB) PTY read.
func (t *terminal) readMore(buf []byte) int {
	if !t.pollable {
		return 0
	}
	rc, err := t.master.SyscallConn()
	if err != nil {
		return 0
	}
	total := 0
	rc.Read(func(fd uintptr) bool {
		for total < len(buf) {
			n, err := unix.Read(int(fd), buf[total:])
			if n <= 0 || err != nil {
				break
			}
			total += n
		}
		return true
	})
	return total
}

// clamp16 fits a size from the wire into a winsize field.
func clamp16(v uint32) uint16 {
	return uint16(min(v, math.MaxUint16))
}
