package appd

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A goroutine blocked in waitid(2) (or in exec.Cmd.Wait) holds its OS
// thread for as long as it waits: one waiting reaper per session made appd
// run a thread per session, each with a 32 KiB signal stack from the Go
// heap, a system stack and the runtime's M. So apps are waited for the way
// network I/O is: each app's pidfd (pidfd_open(2)), which turns readable
// when the process exits, goes into one epoll(7) set, and that set's
// descriptor is itself registered with the runtime poller. One goroutine,
// parked without a thread, waits for every app of the process.

// exitWaiter waits for the exit of many processes at once.
type exitWaiter struct {
	ep *os.File // the epoll set: non-blocking, registered with the runtime poller

	mu      sync.Mutex
	waiting map[int]func(zombie bool) // by pidfd
	broken  error                     // the wait loop failed: new waits are refused
}

var (
	waiterOnce sync.Once
	waiter     *exitWaiter
	waiterErr  error
)

// notifyExit arranges for exited to be called, on the waiter's goroutine,
// once process pid (a child of this process that nobody else waits for)
// has exited. zombie is true when waitid(WNOWAIT) confirmed that the
// process is a zombie, not yet reaped, its pid still reserved; false when
// that could not be confirmed and the caller must wait for it the blocking
// way. exited must not block: a zombie's exec.Cmd.Wait returns at once.
//
// An error means nothing was arranged (no pidfd support: Linux before 5.3,
// or a seccomp filter); the caller waits the blocking way.
func notifyExit(pid int, exited func(zombie bool)) error {
	waiterOnce.Do(func() { waiter, waiterErr = newExitWaiter() })
	if waiterErr != nil {
		return waiterErr
	}
	return waiter.add(pid, exited)
}

// newExitWaiter creates the epoll set and starts the wait loop.
func newExitWaiter() (*exitWaiter, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile registers it with the poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("epoll set O_NONBLOCK: %w", err)
	}
	w := &exitWaiter{ep: os.NewFile(uintptr(fd), "exit-waiter"), waiting: make(map[int]func(bool))}
	rc, err := w.ep.SyscallConn()
	if err != nil {
		w.ep.Close()
		return nil, fmt.Errorf("epoll SyscallConn: %w", err)
	}
	go w.run(rc)
	return w, nil
}

// add opens pid's pidfd and adds it to the set.
func (w *exitWaiter) add(pid int, exited func(zombie bool)) error {
	pidfd, err := unix.PidfdOpen(pid, 0) // close-on-exec
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken != nil {
		unix.Close(pidfd)
		return w.broken
	}
	// In the table before the set: the process may have exited already.
	w.waiting[pidfd] = exited
	var ctlErr error
	rcErr := w.control(func(ep int) {
		ctlErr = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, pidfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(pidfd)})
	})
	if err := errors.Join(rcErr, ctlErr); err != nil {
		delete(w.waiting, pidfd)
		unix.Close(pidfd)
		return fmt.Errorf("epoll_ctl add pidfd: %w", err)
	}
	return nil
}

// control runs f on the epoll descriptor.
func (w *exitWaiter) control(f func(ep int)) error {
	rc, err := w.ep.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { f(int(fd)) })
}

// run waits for readable pidfds and hands each to its caller, until the
// epoll set fails (it should not), when every waiting caller is told to
// wait the blocking way.
func (w *exitWaiter) run(rc syscall.RawConn) {
	events := make([]unix.EpollEvent, 64)
	var n int
	var waitErr error
	for {
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, waitErr = unix.EpollWait(int(fd), events, 0)
				if waitErr != unix.EINTR {
					break
				}
			}
			return n > 0 || waitErr != nil
		})
		if err = errors.Join(err, waitErr); err != nil {
			w.fail(fmt.Errorf("epoll_wait: %w", err))
			return
		}
		for _, ev := range events[:n] {
			w.fire(int(ev.Fd))
		}
	}
}

// fire removes a readable pidfd from the set, closes it and tells its
// caller whether the process is a zombie.
func (w *exitWaiter) fire(pidfd int) {
	w.mu.Lock()
	exited, ok := w.waiting[pidfd]
	delete(w.waiting, pidfd)
	w.mu.Unlock()
	if !ok {
		return
	}
	w.control(func(ep int) { unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, pidfd, nil) })
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
	unix.Close(pidfd)
	// Linux sets si_signo to SIGCHLD when it found a waitable child, to 0
	// when (WNOHANG) there was none.
	exited(err == nil && info.Signo == int32(unix.SIGCHLD))
}

// fail refuses new waits and tells every waiting caller to wait the
// blocking way.
func (w *exitWaiter) fail(err error) {
	w.mu.Lock()
	w.broken = err
	waiting := w.waiting
	w.waiting = nil
	w.mu.Unlock()
	for pidfd, exited := range waiting {
		unix.Close(pidfd)
		exited(false)
	}
}
