package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ListenFDsEnv names the descriptors a gateway process hands to the
// process replacing it: "listen=3,internal=4,ready=5". listen and
// internal are its listening sockets, ready a pipe the successor writes
// "ready\n" to once it serves.
const ListenFDsEnv = "SWITCHYARD_LISTEN_FDS"

// successorWait bounds how long a gateway waits for its successor to
// serve before it gives up the upgrade and keeps serving.
const successorWait = time.Minute

// handover is what a gateway process inherited from its predecessor.
type handover struct {
	files map[string]*os.File
}

// inherit takes the descriptors named in ListenFDsEnv, if it is set, and
// unsets it: nil when this process was not started by a predecessor.
func inherit() (*handover, error) {
	spec, ok := os.LookupEnv(ListenFDsEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(ListenFDsEnv)
	fds, err := parseFDs(spec)
	if err != nil {
		return nil, err
	}
	h := &handover{files: map[string]*os.File{}}
	for name, fd := range fds {
		h.files[name] = os.NewFile(uintptr(fd), name)
	}
	return h, nil
}

// parseFDs reads "name=fd,name=fd".
func parseFDs(spec string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(spec, ",") {
		name, n, ok := strings.Cut(part, "=")
		fd, err := strconv.Atoi(n)
		if !ok || name == "" || err != nil || fd < 3 {
			return nil, fmt.Errorf("%s: bad entry %q (want name=fd, fd ≥ 3)", ListenFDsEnv, part)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s: %q twice", ListenFDsEnv, name)
		}
		out[name] = fd
	}
	return out, nil
}

// formatFDs writes what parseFDs reads, names in the given order, the
// first descriptor being 3 (exec.Cmd.ExtraFiles' first).
func formatFDs(names []string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%d", n, 3+i)
	}
	return strings.Join(parts, ",")
}

// listen returns the listener inherited under name, or, when there is
// none, a new one on addr.
func (h *handover) listen(env Env, name, addr string) (net.Listener, error) {
	if h != nil && h.files[name] != nil {
		f := h.files[name]
		delete(h.files, name)
		defer f.Close() // FileListener holds its own copy
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("inherited %s listener: %w", name, err)
		}
		return ln, nil
	}
	return env.listen(addr)
}

// serving tells the predecessor this process serves, and closes every
// inherited descriptor not taken.
func (h *handover) serving() error {
	if h == nil {
		return nil
	}
	var err error
	if f := h.files["ready"]; f != nil {
		_, err = io.WriteString(f, "ready\n")
		delete(h.files, "ready")
		f.Close()
	}
	for _, f := range h.files {
		f.Close()
	}
	h.files = nil
	if err != nil {
		return fmt.Errorf("tell the previous gateway process: %w", err)
	}
	return nil
}

// executable is the path this process was started from, resolved now:
// after `mv new-slave slave` it names the new binary, while
// /proc/self/exe still names the old one. A symlink stays one.
func executable() string {
	p, err := exec.LookPath(os.Args[0])
	if err != nil {
		return ""
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return ""
	}
	return abs
}

// namedListener is a listener handed to a successor under a name.
type namedListener struct {
	name string
	ln   net.Listener
}

// startSuccessor starts exe with args, handing it lns, and waits until it
// says it serves (nil), exits or fails to within successorWait (an error;
// it is then killed). Its output goes where this process's goes.
//
// The listeners go to the successor as raw descriptors (syscall.ForkExec),
// not as *os.File in exec.Cmd.ExtraFiles: os/exec takes each file's Fd,
// which puts the descriptor in blocking mode, and a socket's descriptors
// share that mode. This process's own accept loops would then block in
// accept(2), and closing a listener (the drain does) would wait for the
// next connection to arrive, holding up every session that waits on it.
func startSuccessor(ctx context.Context, exe string, args []string, lns []namedListener, log *slog.Logger) (int, error) {
	if exe == "" {
		return 0, errors.New("upgrade: this process's executable is unknown")
	}
	var names []string
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, l := range lns {
		fd, err := dupListener(l.ln)
		if err != nil {
			return 0, fmt.Errorf("upgrade: the %s listener: %w", l.name, err)
		}
		names, fds = append(names, l.name), append(fds, fd)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("upgrade: pipe: %w", err)
	}
	defer r.Close()
	names = append(names, "ready")
	// The successor pings systemd's watchdog once it is the main process:
	// WATCHDOG_PID names this one, which would silence it.
	env := append(withoutEnv(withoutEnv(os.Environ(), ListenFDsEnv), "WATCHDOG_PID"), ListenFDsEnv+"="+formatFDs(names))
	pid, err := forkSuccessor(exe, args, env, fds, w)
	w.Close() // the successor holds the only writer: EOF if it dies
	if err != nil {
		return 0, fmt.Errorf("upgrade: start %s: %w", exe, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return 0, fmt.Errorf("upgrade: new process %d: %w", pid, err)
	}
	log.Info("upgrade: started the new gateway process", "pid", pid, "exe", exe)
	if err := awaitReady(ctx, r, successorWait); err != nil {
		proc.Kill()
		proc.Wait()
		return 0, fmt.Errorf("upgrade: new process %d: %w", pid, err)
	}
	go proc.Wait() // reaped if it exits while this process drains
	return pid, nil
}

// dupListener returns a close-on-exec duplicate of ln's descriptor,
// leaving its mode (non-blocking) as it is.
func dupListener(ln net.Listener) (int, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return -1, errors.New("cannot be passed on")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	dup, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("dup: %w", derr)
	}
	return dup, nil
}

// forkSuccessor starts exe with args and env: standard input from
// /dev/null, this process's standard output and error, then fds from
// descriptor 3 on, and ready after them.
func forkSuccessor(exe string, args, env []string, fds []int, ready *os.File) (int, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	files := []uintptr{null.Fd(), os.Stdout.Fd(), os.Stderr.Fd()}
	for _, fd := range fds {
		files = append(files, uintptr(fd))
	}
	files = append(files, ready.Fd())
	dir, err := os.Getwd()
	if err != nil {
		dir = "/"
	}
	return syscall.ForkExec(exe, append([]string{exe}, args...), &syscall.ProcAttr{Dir: dir, Env: env, Files: files})
}

// awaitReady reads the successor's "ready" line from r.
func awaitReady(ctx context.Context, r *os.File, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	r.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { r.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(r, buf, len("ready\n"))
	if err == nil && string(buf[:n]) == "ready\n" {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("exited before serving (see its log lines above)")
	}
	return fmt.Errorf("not serving: %w", err)
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// sdNotify sends state to systemd's notify socket, when there is one
// (Type=notify units); a successor sends MAINPID= with it, which needs
// NotifyAccess=all.
func sdNotify(state string) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	if strings.HasPrefix(sock, "@") {
		sock = "\x00" + sock[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}
