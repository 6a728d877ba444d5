package appd

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sessions outlive appd through its keeper, a small process of its own
// (appd's binary re-executed with KeeperArg, in a session of its own so
// that no signal meant for appd's process group reaches it), which a
// restarted appd finds again at a socket in the state directory:
//
//   - the keeper starts every PTY app, as its own child, from a thread that
//     never exits, with Pdeathsig SIGKILL: apps never outlive their keeper;
//   - it holds each session's PTY master and, at a graceful handover, the
//     output kept for a detached session, with appd's state of the session
//     (id, user, app, grace...), which it does not read;
//   - it reaps its apps and tells appd their wait status;
//   - when appd goes away (a restart, an upgrade, kill -9, a crash) it
//     keeps everything for its hold (KeeperHoldEnv); an appd that connects
//     meanwhile takes every session back (Manager.Adopt): same process,
//     same terminal, same id. Once the hold runs out, or when appd stops
//     for good (Quit), it kills every app, its process group and every
//     process of its session (killSessions), and exits;
//   - batch apps (pipes, exact bytes) appd starts itself and registers
//     (Add): they end as soon as appd goes, as their client's stream
//     cannot be resumed.
//
// One appd is connected at a time, and only from the keeper's own user
// (SO_PEERCRED); the socket's directory is the state directory.

// KeeperArg is the first argument that makes appd's binary run as its
// keeper (see RunKeeper) instead of as appd.
const KeeperArg = "-switchyard-keeper"

// keeperFD is the descriptor of the keeper's listening socket in the
// keeper process (exec.Cmd.ExtraFiles[0]).
const keeperFD = 3

// HeldApp is a session a keeper held for this appd from an earlier one.
type HeldApp struct {
	PID    int
	Meta   json.RawMessage
	Files  []*os.File // the PTY master, then the kept output, if any
	Status *int       // the wait status if the app has exited meanwhile
}

// Keeper is appd's link to its keeper process. Its methods are safe for
// concurrent use, and a nil *Keeper does nothing (no keeper: apps are
// started by appd and die with it).
type Keeper struct {
	Logger *slog.Logger // slog.Default() if nil

	pid  int // the keeper process
	done chan struct{}

	mu      sync.Mutex
	fd      int  // -1 once closed
	lost    bool // the link failed: apps started through it are gone
	reading bool // read runs, and closes fd when it ends
	ref     uint64
	waiting map[uint64]chan keeperMsg
	exits   map[int]func(status int)
	early   map[int]int // exits heard before anyone waited for them
	version int         // the keeper's protocol version (keeperProtocol)
}

// Version is the protocol version the keeper speaks: 1 for keepers from
// before versions were sent. Its apps' handover works the same in both.
func (k *Keeper) Version() int { return k.version }

// ConnectKeeper connects to the keeper listening at path, or starts one
// there (the program exe, appd's own binary, with KeeperArg, holding apps
// for hold once appd goes) if none answers, and returns the link with the
// sessions the keeper held from an earlier appd.
func ConnectKeeper(path, exe string, hold time.Duration, log *slog.Logger) (*Keeper, []HeldApp, error) {
	fd, err := dialKeeper(path)
	if err != nil {
		if err := startKeeper(path, exe, hold); err != nil {
			return nil, nil, err
		}
		// The keeper listens itself (so that SO_PEERCRED names it): wait.
		for deadline := time.Now().Add(keeperReplyTimeout); ; time.Sleep(5 * time.Millisecond) {
			if fd, err = dialKeeper(path); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			return nil, nil, err
		}
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil || cred.Uid != uint32(os.Geteuid()) {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("keeper at %s: not run by this user (%v)", path, err)
	}
	k := newKeeperConn(fd, int(cred.Pid))
	k.Logger = log
	held, err := k.list()
	if err != nil {
		k.Close()
		return nil, nil, err
	}
	k.mu.Lock()
	k.reading = true
	k.mu.Unlock()
	go k.read(fd)
	return k, held, nil
}

// KeeperPath is where appd node's keeper listens, under stateDir.
func KeeperPath(stateDir, node string) string {
	return filepath.Join(stateDir, "keeper-"+node+".sock")
}

// dialKeeper connects to path.
func dialKeeper(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("keeper socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("keeper connect %s: %w", path, err)
	}
	return fd, nil
}

// startKeeper binds path, replacing a socket nobody answers on, and
// starts a keeper that listens on it.
func startKeeper(path, exe string, hold time.Duration) error {
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return fmt.Errorf("keeper socket path %s is too long for a Unix socket: use a shorter state_dir", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("keeper: remove stale %s: %w", path, err)
	}
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("keeper socket: %w", err)
	}
	f := os.NewFile(uintptr(ln), "keeper-listen") // owns ln from here
	defer f.Close()
	old := unix.Umask(0o077)
	err = unix.Bind(ln, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("keeper bind %s: %w", path, err)
	}
	cmd := &exec.Cmd{Path: exe, Args: []string{exe, KeeperArg}, Dir: "/",
		Env:         []string{"GOMAXPROCS=1", KeeperHoldEnv + "=" + hold.String()},
		Stderr:      os.Stderr,
		ExtraFiles:  []*os.File{f},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start keeper %s: %w", exe, err)
	}
	go cmd.Wait() // reap it if it ends while this appd runs
	return nil
}

// newKeeperConn is a Keeper over a connected socket.
func newKeeperConn(fd, pid int) *Keeper {
	setSendTimeout(fd, keeperReplyTimeout)
	return &Keeper{fd: fd, pid: pid, done: make(chan struct{}), waiting: map[uint64]chan keeperMsg{},
		exits: map[int]func(int){}, early: map[int]int{}}
}

// list reads the sessions the keeper holds, up to opListed.
func (k *Keeper) list() ([]HeldApp, error) {
	tv := unix.NsecToTimeval(keeperReplyTimeout.Nanoseconds())
	unix.SetsockoptTimeval(k.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	defer unix.SetsockoptTimeval(k.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{})
	buf, oob := keeperBuffers()
	var held []HeldApp
	for {
		p, err := recvKeeperMsg(k.fd, buf, oob)
		if err != nil {
			for _, h := range held {
				closeAll(h.Files)
			}
			return nil, fmt.Errorf("keeper: listing held sessions: %w", err)
		}
		switch p.op {
		case opListed:
			k.version = max(p.msg.Version, 1)
			return held, nil
		case opAdopted:
			held = append(held, HeldApp{PID: p.msg.PID, Meta: p.msg.Meta, Files: p.files, Status: p.msg.Status})
		default:
			p.close()
		}
	}
}

// read delivers the keeper's answers and exits until the link ends; then
// every app started through it counts as killed (they die with their
// keeper).
func (k *Keeper) read(fd int) {
	defer unix.Close(fd)
	buf, oob := keeperBuffers()
	var err error
	for {
		var p keeperPacket
		p, err = recvKeeperMsg(fd, buf, oob)
		if errors.Is(err, errKeeperMalformed) {
			continue
		}
		if err != nil {
			break
		}
		p.close()
		switch p.op {
		case opStarted:
			k.mu.Lock()
			ch := k.waiting[p.msg.Ref]
			delete(k.waiting, p.msg.Ref)
			k.mu.Unlock()
			if ch != nil {
				ch <- p.msg
			}
		case opExited:
			if p.msg.Status != nil {
				k.exited(p.msg.PID, *p.msg.Status)
			}
		}
	}
	k.fail(err)
}

// killedStatus is the wait status of a process killed by SIGKILL.
const killedStatus = int(syscall.SIGKILL)

// fail marks the link lost: unless appd closed it (a handover, the apps
// live on), every app waited for is reported killed.
func (k *Keeper) fail(err error) {
	k.mu.Lock()
	closed := k.fd < 0
	k.lost = true
	exits := k.exits
	k.exits = map[int]func(int){}
	k.mu.Unlock()
	close(k.done)
	if closed {
		return
	}
	k.logger().Error("keeper lost: the apps it started are gone", "keeper_pid", k.pid, "apps", len(exits), "err", err)
	// Their leaders died with the keeper (Pdeathsig); what else ran in
	// their sessions must not be left to init.
	ids := make(map[int]struct{}, len(exits))
	for pid := range exits {
		ids[pid] = struct{}{}
	}
	killSessions(ids)
	for _, f := range exits {
		f(killedStatus)
	}
}

// exited calls the function waiting for pid's exit, or keeps the status
// for OnExit.
func (k *Keeper) exited(pid, status int) {
	k.mu.Lock()
	f := k.exits[pid]
	delete(k.exits, pid)
	if f == nil {
		k.early[pid] = status
	}
	k.mu.Unlock()
	if f != nil {
		f(status)
	}
}

// OnExit arranges for f to run, on the keeper's goroutine or at once,
// with pid's wait status when the app exits. f must not block.
func (k *Keeper) OnExit(pid int, f func(status int)) {
	k.mu.Lock()
	st, early := k.early[pid]
	delete(k.early, pid)
	lost := k.lost
	if !early && !lost {
		k.exits[pid] = f
	}
	k.mu.Unlock()
	switch {
	case early:
		f(st)
	case lost:
		f(killedStatus)
	}
}

// Spawns reports whether apps can be started through the keeper.
func (k *Keeper) Spawns() bool {
	if k == nil {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.lost && k.fd >= 0
}

// Spawn has the keeper start cmd (its Stdin, Stdout and Stderr must be
// files) in a session of its own, with descriptor 0 as its controlling
// terminal when setctty, and hold the files held and meta for it. It
// returns the app's pid.
func (k *Keeper) Spawn(cmd *exec.Cmd, setctty bool, meta json.RawMessage, held []*os.File) (int, error) {
	spec, files, err := spawnSpecOf(cmd, setctty)
	if err != nil {
		return 0, err
	}
	// A program run through one of appd's descriptors (the exec shim's
	// /proc/self/fd/N) goes along: the keeper runs it through its copy.
	var exe *os.File
	if n, ok := strings.CutPrefix(cmd.Path, "/proc/self/fd/"); ok {
		if exe, err = dupFD(n); err != nil {
			return 0, err
		}
		defer exe.Close()
		held = append(slices.Clone(held), exe)
	}
	ch := make(chan keeperMsg, 1)
	k.mu.Lock()
	k.ref++
	ref := k.ref
	k.waiting[ref] = ch
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		delete(k.waiting, ref)
		k.mu.Unlock()
	}()
	m := keeperMsg{Ref: ref, Spawn: spec, Child: len(files), Meta: meta, Exe: exe != nil}
	if err := k.send(opSpawn, m, append(files, held...)); err != nil {
		return 0, err
	}
	t := time.NewTimer(keeperReplyTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.Err != "" {
			return 0, errors.New(r.Err)
		}
		return r.PID, nil
	case <-k.done:
		return 0, errKeeperLost
	case <-t.C:
		return 0, fmt.Errorf("keeper: no answer to a spawn within %s", keeperReplyTimeout)
	}
}

// dupFD duplicates descriptor number n (a string) of this process.
func dupFD(n string) (*os.File, error) {
	fd, err := strconv.Atoi(n)
	if err != nil {
		return nil, fmt.Errorf("keeper spawn: program %q: %w", n, err)
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("keeper spawn: dup program descriptor: %w", err)
	}
	return os.NewFile(uintptr(dup), "program"), nil
}

// spawnSpecOf is cmd as a keeper spawn request and the app's files.
func spawnSpecOf(cmd *exec.Cmd, setctty bool) (*spawnSpec, []*os.File, error) {
	var files []*os.File
	for _, s := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		f, ok := s.(*os.File)
		if !ok {
			return nil, nil, errors.New("keeper spawn: stdin, stdout and stderr must be files")
		}
		files = append(files, f)
	}
	files = append(files, cmd.ExtraFiles...)
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	spec := &spawnSpec{Path: cmd.Path, Argv: cmd.Args, Env: env, Dir: cmd.Dir, Setctty: setctty}
	if sys := cmd.SysProcAttr; sys != nil && sys.Credential != nil {
		uid := sys.Credential.Uid
		spec.UID, spec.GID, spec.Groups = &uid, sys.Credential.Gid, sys.Credential.Groups
	}
	return spec, files, nil
}

// Hold replaces what the keeper holds for pid: files and meta.
func (k *Keeper) Hold(pid int, meta json.RawMessage, files []*os.File) error {
	return k.send(opHold, keeperMsg{PID: pid, Meta: meta}, files)
}

// Meta replaces the state the keeper holds for pid.
func (k *Keeper) Meta(pid int, meta json.RawMessage) error {
	return k.send(opMeta, keeperMsg{PID: pid, Meta: meta}, nil)
}

// Signal sends sig to the process group of app pid, unless the keeper
// has reaped it.
func (k *Keeper) Signal(pid int, sig syscall.Signal) error {
	return k.send(opSignal, keeperMsg{PID: pid, Sig: int(sig)}, nil)
}

// Forget tells the keeper that app pid's session is over.
func (k *Keeper) Forget(pid int) error { return k.send(opForget, keeperMsg{PID: pid}, nil) }

// Add registers an app appd started itself, whose pid is its process
// group and session id: the keeper kills them if appd goes away before
// Remove.
func (k *Keeper) Add(pgid int) error { return k.send(opAdd, keeperMsg{PID: pgid}, nil) }

// Remove forgets the app pgid. Call it before the app is reaped, while its
// pid cannot have been reused.
func (k *Keeper) Remove(pgid int) error { return k.send(opRemove, keeperMsg{PID: pgid}, nil) }

// SetHold sets how long the keeper holds the apps once appd goes (the
// config's handover, which reloads).
func (k *Keeper) SetHold(d time.Duration) error { return k.send(opWait, keeperMsg{Hold: d}, nil) }

// Quit tells the keeper to end every app now and exit: appd stops for
// good.
func (k *Keeper) Quit() error { return k.send(opQuit, keeperMsg{}, nil) }

// errKeeperLost is returned by sends after one failed.
var errKeeperLost = errors.New("appd: keeper lost")

// send writes one message. A failure means the keeper is gone (or stopped
// reading for keeperReplyTimeout): it is logged once, and no further
// message is sent.
func (k *Keeper) send(op byte, m keeperMsg, files []*os.File) error {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.fd < 0:
		return errKeeperEOF
	case k.lost:
		return errKeeperLost
	}
	err := sendKeeperMsg(k.fd, op, m, files)
	if err != nil {
		k.lost = true
		k.logger().Error("keeper lost: apps may not outlive this appd", "keeper_pid", k.pid, "err", err)
	}
	return err
}

// PID returns the keeper process's pid, 0 if unknown.
func (k *Keeper) PID() int {
	if k == nil {
		return 0
	}
	return k.pid
}

// Close closes appd's end of the link: the keeper holds the sessions for
// the next appd, and kills the apps appd registered with Add.
func (k *Keeper) Close() error {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fd < 0 {
		return nil
	}
	err := unix.Shutdown(k.fd, unix.SHUT_RDWR) // wakes read, which then fails nothing: fd < 0
	if !k.reading {
		unix.Close(k.fd)
	} // else read closes it, so that its descriptor is not reused under it
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

// closeAll closes files.
func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
