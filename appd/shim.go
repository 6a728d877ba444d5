package appd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// An app's resource limits must hold from its first instruction, and its
// first process must be in its session's control group before it can
// fork. os/exec cannot do either: SysProcAttr has no resource limits, and
// once Start returns the program already runs. So, when an app has
// limits, appd starts its own binary instead (the shim, ExecArg), with
// the app's user, session, terminal and environment, and one end of a
// socket as descriptor 3:
//
//  1. appd moves the shim into the session's control group, and writes
//     "g" and the resource limits (lowered to appd's own hard limits, which
//     the app's user could not exceed);
//  2. the shim sets them on itself (setrlimit(2), which also makes the Go
//     runtime forget the open-files limit it saved at start, which
//     syscall.Exec would otherwise restore over them) and execs the app:
//     the same process, now the app, with its limits, in its group. The
//     socket is close-on-exec, so appd reads EOF. If a limit or the exec
//     failed, the shim writes the errno (4 bytes) and exits 127, and appd
//     refuses the spawn with that errno, as it would have without the
//     shim.
//
// The shim needs no privilege: it only lowers its own limits. The binary
// is started by its path when every user may reach and run it there and
// it is still the file appd runs; otherwise (a test binary in a private
// temporary directory, a binary replaced on disk by an upgrade) through
// an O_PATH descriptor appd opened at start (/proc/self/fd/N), so what
// runs is always appd's own binary. The path comes first because, under a
// high rate of process creation, Linux now and then refuses the exec of
// /proc/self/fd/N with EACCES (seen about once in 250 spawns with pids
// wrapping every few seconds; TestHAFailover).

// ExecArg is the first argument that makes appd's binary run as the exec
// shim (RunExec) instead of as appd.
const ExecArg = "-switchyard-exec"

// shimFD is the shim's end of its socket in the shim process.
const shimFD = 3

// shimTimeout bounds each wait for the shim: for its Go runtime to start,
// and for its exec.
const shimTimeout = 10 * time.Second

// Shim starts apps through appd's own binary so that their limits hold
// before they run. A nil *Shim starts apps directly: limits are then set
// just after the app started (see Manager.Shim).
type Shim struct {
	fd     int    // O_PATH, close-on-exec descriptor of the binary
	path   string // "/proc/self/fd/N"
	onDisk string // the binary's own path, when every user may reach and run it; "" if not
}

// shimMinFD is the lowest descriptor number the shim's binary gets: well
// above those os/exec moves and dups in the child before it execs.
const shimMinFD = 100

// OpenShim opens exe, appd's own binary ("/proc/self/exe"), whose main
// must call RunExec when its first argument is ExecArg.
func OpenShim(exe string) (*Shim, error) {
	fd, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open shim %s: %w", exe, err)
	}
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, shimMinFD)
	unix.Close(fd)
	if err != nil {
		return nil, fmt.Errorf("shim F_DUPFD_CLOEXEC: %w", err)
	}
	return &Shim{fd: high, path: fmt.Sprintf("/proc/self/fd/%d", high), onDisk: publicPath(exe)}, nil
}

// publicPath is the path of the executable exe ("/proc/self/exe"), if
// every user may search each directory above it and execute it; "".
func publicPath(exe string) string {
	p, err := os.Readlink(exe)
	if err != nil || !filepath.IsAbs(p) {
		return ""
	}
	for dir, file := filepath.Dir(p), p; ; dir, file = filepath.Dir(dir), dir {
		fi, err := os.Stat(file)
		if err != nil || fi.Mode().Perm()&0o001 == 0 { // others' search or execute bit
			return ""
		}
		if file == dir { // "/"
			return p
		}
	}
}

// execPath is what starts the shim: the binary's own path while it is
// still the file appd runs, else the descriptor's.
func (sh *Shim) execPath() string {
	if sh.onDisk != "" {
		if now, err := os.Readlink("/proc/self/exe"); err == nil && now == sh.onDisk {
			return sh.onDisk
		}
	}
	return sh.path
}

// shimLink is appd's end of the socket to one starting shim.
type shimLink struct {
	ours, theirs *os.File
	env          []string // the app's environment, sent to the shim
}

// shimEnv is the shim's own environment; the app's is sent over the
// socket. The Go runtime reads GODEBUG, GOGC and the like from it, and a
// package's init may query the terminal (bubbletea asks it for its
// background colour, waiting up to 5 s for an answer) unless TERM is
// "dumb": nothing of the app's may change how the shim runs.
var shimEnv = []string{"TERM=dumb", "GOMAXPROCS=1", "GOGC=off"}

// wrap makes cmd start the shim, which will exec cmd's program with cmd's
// arguments once released. Call close on the link when done with it.
func (sh *Shim) wrap(cmd *exec.Cmd) (*shimLink, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("shim socketpair: %w", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil { // pollable: reads honour deadlines
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("shim socket O_NONBLOCK: %w", err)
	}
	l := &shimLink{ours: os.NewFile(uintptr(fds[0]), "shim"), theirs: os.NewFile(uintptr(fds[1]), "shim-child"),
		env: cmd.Env}
	cmd.Args = append([]string{"switchyard-exec", ExecArg, cmd.Path}, cmd.Args...)
	cmd.Path = sh.execPath()
	cmd.Env = shimEnv
	cmd.ExtraFiles = []*os.File{l.theirs} // descriptor 3 in the shim
	return l, nil
}

// started closes the shim's end in appd, once the shim has it (or the
// start failed), so that appd reads EOF when the shim execs or dies.
func (l *shimLink) started() {
	if l != nil {
		l.theirs.Close()
	}
}

// close closes both ends.
func (l *shimLink) close() {
	if l != nil {
		l.theirs.Close()
		l.ours.Close()
	}
}

// shimLimitLen is the size of one resource limit on the shim's socket:
// the resource (uint32), then the soft and hard limits (uint64 each).
const shimLimitLen = 20

// release sends the shim "g", the resource limits rl and the app's
// environment, lets it exec the app, and waits for the outcome: nil once the exec succeeded, the
// syscall.Errno of what failed otherwise.
func (l *shimLink) release(rl []rlimit) error {
	msg := []byte{'g', byte(len(rl))}
	for _, r := range rl {
		msg = binary.LittleEndian.AppendUint32(msg, uint32(r.resource))
		msg = binary.LittleEndian.AppendUint64(msg, r.lim.Cur)
		msg = binary.LittleEndian.AppendUint64(msg, r.lim.Max)
	}
	env := strings.Join(l.env, "\x00")
	msg = binary.LittleEndian.AppendUint32(msg, uint32(len(env)))
	msg = append(msg, env...)
	l.ours.SetDeadline(time.Now().Add(shimTimeout))
	if _, err := l.ours.Write(msg); err != nil {
		return fmt.Errorf("shim release: %w", err)
	}
	var b [4]byte
	n, err := io.ReadFull(l.ours, b[:])
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return nil // close-on-exec closed the shim's end: the app runs
	case n == 4:
		return fmt.Errorf("shim: %w", syscall.Errno(binary.LittleEndian.Uint32(b[:])))
	}
	return fmt.Errorf("shim exec: %w", err)
}

// RunExec is the exec shim (see ExecArg): os.Args are [name, ExecArg,
// path, argv...]; the limits and environment come over descriptor 3. It never returns: it becomes the app, or exits 125 when
// appd went away before releasing it, 127 when the exec failed.
func RunExec() {
	link := os.NewFile(shimFD, "switchyard-exec")
	if len(os.Args) < 4 || link == nil {
		os.Exit(125)
	}
	path, argv := os.Args[2], os.Args[3:]
	var head [2]byte
	if _, err := io.ReadFull(link, head[:]); err != nil || head[0] != 'g' {
		os.Exit(125) // appd went away, or gave up on this spawn
	}
	limits := make([]byte, int(head[1])*shimLimitLen+4)
	if _, err := io.ReadFull(link, limits); err != nil {
		os.Exit(125)
	}
	env := make([]byte, binary.LittleEndian.Uint32(limits[len(limits)-4:]))
	if _, err := io.ReadFull(link, env); err != nil {
		os.Exit(125)
	}
	err := setLimits(limits[:len(limits)-4])
	if err == nil {
		unix.CloseOnExec(shimFD)
		err = syscall.Exec(path, argv, splitEnv(env))
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		errno = syscall.EINVAL
	}
	var msg [4]byte
	binary.LittleEndian.PutUint32(msg[:], uint32(errno))
	link.Write(msg[:])
	os.Exit(127)
}

// splitEnv splits the NUL-separated environment the shim was sent.
func splitEnv(b []byte) []string {
	if len(b) == 0 {
		return []string{}
	}
	return strings.Split(string(b), "\x00")
}

// setLimits sets the resource limits the shim was sent on itself.
// syscall.Setrlimit, unlike a raw prlimit, also makes the Go runtime
// forget the open-files limit it saved at start, which syscall.Exec would
// restore over appd's.
func setLimits(b []byte) error {
	for ; len(b) >= shimLimitLen; b = b[shimLimitLen:] {
		res := int(binary.LittleEndian.Uint32(b))
		lim := syscall.Rlimit{Cur: binary.LittleEndian.Uint64(b[4:]), Max: binary.LittleEndian.Uint64(b[12:])}
		if err := syscall.Setrlimit(res, &lim); err != nil {
			return err
		}
	}
	return nil
}
