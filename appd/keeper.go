package appd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// When appd dies, however it dies (kill -9, a crash, the OOM killer), the
// apps it ran must end with it: nobody could reach them any more. Two
// layers see to it:
//
//  1. Every app's leader is started with Pdeathsig SIGKILL, from one
//     thread that never exits (see spawnThread): the kernel kills it when
//     appd dies. That covers the leader only, not the rest of its process
//     group, and the kernel forgets it when the leader execs a set-user-ID
//     program.
//  2. The keeper, a small process of its own (appd re-executed with
//     KeeperArg, in a session of its own so that no signal meant for appd's
//     process group reaches it), holds one end of a socketpair. appd tells
//     it each app's pid, which is also its process group and session id,
//     as the app starts and ends. When appd's end closes, because appd
//     exited or died, the keeper sends SIGKILL to every app still
//     registered: its process group, and every process of its session in
//     another group (killSessions), then exits.
//
// The socket is SOCK_SEQPACKET: message boundaries are kept, and a later
// version can pass descriptors over it (SCM_RIGHTS). Keeping sessions
// across an appd restart would grow from here: the keeper would hold each
// session's terminal and pipes, a restarted appd would connect to it and
// take them back, and it would kill only what nobody claimed in time. The
// apps would then have to outlive appd: Pdeathsig would go, or the keeper
// would start the apps and be their parent.

// KeeperArg is the first argument that makes appd's binary run as its
// keeper (see RunKeeper) instead of as appd.
const KeeperArg = "-switchyard-keeper"

// keeperFD is the descriptor of the keeper's end of the socket in the
// keeper process (exec.Cmd.ExtraFiles[0]).
const keeperFD = 3

// keeperSendTimeout bounds how long a message to the keeper may wait for
// room in the socket.
const keeperSendTimeout = time.Second

// keeperMsgLen is the size of every keeper message.
const keeperMsgLen = 8

// Keeper message operations.
const (
	opAdd    byte = 'A' // kill this app (session and process group) if appd goes away
	opRemove byte = 'R' // forget it: the app has ended
)

// keeperMsg is one message from appd to its keeper: 8 bytes, the
// operation, three zero bytes, and the process group id as a little-endian
// uint32. The keeper ignores messages of another size or operation, so
// that the protocol can grow.
type keeperMsg struct {
	op   byte
	pgid int
}

func (m keeperMsg) marshal() []byte {
	b := make([]byte, keeperMsgLen)
	b[0] = m.op
	binary.LittleEndian.PutUint32(b[4:], uint32(m.pgid))
	return b
}

func parseKeeperMsg(b []byte) (keeperMsg, bool) {
	if len(b) != keeperMsgLen || (b[0] != opAdd && b[0] != opRemove) {
		return keeperMsg{}, false
	}
	pgid := binary.LittleEndian.Uint32(b[4:])
	if pgid <= 1 || pgid > 1<<30 { // never kill(-1) nor kill(0)
		return keeperMsg{}, false
	}
	return keeperMsg{op: b[0], pgid: int(pgid)}, true
}

// Keeper is appd's end of the link to its keeper process. Its methods are
// safe for concurrent use, and a nil *Keeper does nothing (no keeper).
type Keeper struct {
	Logger *slog.Logger // slog.Default() if nil

	mu   sync.Mutex
	fd   int  // appd's end of the socketpair; -1 once closed
	lost bool // a send failed: no more are tried (see send)
	cmd  *exec.Cmd
}

// StartKeeper starts the keeper: the program exe (appd's own binary,
// "/proc/self/exe") with KeeperArg as its first argument, in a session of
// its own, its working directory "/", its stderr appd's. It returns once
// the keeper runs; the keeper ends when appd's end of the socket closes
// (Close, or appd exiting). exe's main must call RunKeeper when it sees
// KeeperArg.
func StartKeeper(exe string, log *slog.Logger) (*Keeper, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("keeper socketpair: %w", err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "keeper")
	defer theirs.Close()
	// A keeper that stops reading (SIGSTOP) must not stall every spawn.
	tv := unix.NsecToTimeval(keeperSendTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fds[0], unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("keeper SO_SNDTIMEO: %w", err)
	}
	cmd := &exec.Cmd{Path: exe, Args: []string{exe, KeeperArg}, Dir: "/",
		Env:         []string{"GOMAXPROCS=1", "GOGC=off"},
		Stderr:      os.Stderr,
		ExtraFiles:  []*os.File{theirs},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("start keeper %s: %w", exe, err)
	}
	go cmd.Wait() // reap it whenever it ends
	return &Keeper{Logger: log, fd: fds[0], cmd: cmd}, nil
}

// newKeeperConn is a Keeper over an already connected socket, for tests.
func newKeeperConn(fd int) *Keeper { return &Keeper{fd: fd} }

// PID returns the keeper process's pid, 0 if unknown.
func (k *Keeper) PID() int {
	if k == nil || k.cmd == nil || k.cmd.Process == nil {
		return 0
	}
	return k.cmd.Process.Pid
}

// Add registers the app whose pid, process group and session id is pgid:
// the keeper kills them if appd goes away before Remove.
func (k *Keeper) Add(pgid int) error { return k.send(keeperMsg{op: opAdd, pgid: pgid}) }

// Remove forgets the app pgid. Call it before the app is reaped, while its
// pid cannot have been reused.
func (k *Keeper) Remove(pgid int) error { return k.send(keeperMsg{op: opRemove, pgid: pgid}) }

// errKeeperClosed is returned by sends after Close.
var errKeeperClosed = errors.New("appd: keeper link closed")

// errKeeperLost is returned by sends after one failed.
var errKeeperLost = errors.New("appd: keeper lost")

// send writes one message. A failure means the keeper is gone (or stopped
// reading for keeperSendTimeout): it is logged once, at error level, and
// no further message is sent, since the apps then rely on Pdeathsig alone.
// The socket stays open: closing it would make a keeper still there kill
// every app.
func (k *Keeper) send(m keeperMsg) error {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.fd < 0:
		return errKeeperClosed
	case k.lost:
		return errKeeperLost
	}
	var err error
	for {
		err = unix.Sendmsg(k.fd, m.marshal(), nil, nil, unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		k.lost = true
		k.logger().Error("keeper lost: if appd dies, only each app's first process is sure to be killed",
			"keeper_pid", k.PID(), "err", err)
		return fmt.Errorf("keeper send: %w", err)
	}
	return nil
}

// Close closes appd's end of the socket: the keeper kills the process
// groups still registered and exits.
func (k *Keeper) Close() error {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fd < 0 {
		return nil
	}
	err := unix.Close(k.fd)
	k.fd = -1
	if err != nil {
		return fmt.Errorf("keeper close: %w", err)
	}
	return nil
}

func (k *Keeper) logger() *slog.Logger {
	if k.Logger != nil {
		return k.Logger
	}
	return slog.Default()
}

// RunKeeper is the keeper process: it reads messages from descriptor 3
// until appd's end closes, then kills every app still registered, its
// session and process group (see killSessions), and returns how many apps
// it found to kill. It ignores SIGHUP, SIGINT
// and SIGTERM: it ends when appd does, not before.
func RunKeeper() (int, error) {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	return serveKeeper(keeperFD)
}

// serveKeeper is RunKeeper on any connected socket.
func serveKeeper(fd int) (int, error) {
	groups := make(map[int]struct{})
	buf := make([]byte, 64)
	var err error
	for {
		var n int
		n, _, _, _, err = unix.Recvmsg(fd, buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 { // EOF: appd is gone
			break
		}
		m, ok := parseKeeperMsg(buf[:n])
		switch {
		case !ok:
		case m.op == opAdd:
			groups[m.pgid] = struct{}{}
		case m.op == opRemove:
			delete(groups, m.pgid)
		}
	}
	unix.Close(fd)
	killed := killSessions(groups)
	if err != nil && err != unix.ECONNRESET {
		return killed, fmt.Errorf("keeper recvmsg: %w", err)
	}
	return killed, nil
}
