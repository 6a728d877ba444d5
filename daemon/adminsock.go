package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"switchyard/broker"
)

// socketMode is the admin socket's mode: its user and group only.
const socketMode = 0o660

// listenAdminSocket opens the admin Unix socket at path with mode 0660,
// owned by group when set. The socket is bound in a private (0700)
// directory beside path, given its mode and group there, and only then
// renamed into place, so no one else can connect in between. A live
// socket at path (another broker) is an error; a stale one is replaced.
func listenAdminSocket(path, group string) (net.Listener, error) {
	gid, err := lookupGroup(group)
	if err != nil {
		return nil, err
	}
	if err := checkStale(path); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("admin socket directory: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".adm")
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	bound := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bound, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := placeSocket(bound, path, gid); err != nil {
		ln.Close()
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	return &socketListener{UnixListener: ln, path: path, fi: fi}, nil
}

// placeSocket gives the socket at bound its group and mode and moves it
// to path.
func placeSocket(bound, path string, gid int) error {
	if gid >= 0 && gid != os.Getegid() {
		if err := os.Chown(bound, -1, gid); err != nil {
			return fmt.Errorf("admin socket group: %w", err)
		}
	}
	if err := os.Chmod(bound, socketMode); err != nil {
		return fmt.Errorf("admin socket mode: %w", err)
	}
	if err := os.Rename(bound, path); err != nil {
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	return nil
}

// checkStale refuses a path that is something other than a socket, or a
// socket a broker still answers on.
func checkStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("admin socket %s: exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("admin socket %s: another broker is serving on it", path)
	}
	return nil
}

// lookupGroup returns the gid of group (a name or a number), or -1 for "".
func lookupGroup(group string) (int, error) {
	if group == "" {
		return -1, nil
	}
	if gid, err := strconv.Atoi(group); err == nil {
		return gid, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, fmt.Errorf("admin_group: %w", err)
	}
	return strconv.Atoi(g.Gid)
}

// adminCaller names, in ctx, the user at the other end of an admin
// connection on the Unix socket (SO_PEERCRED), for drains' "who"; a TCP
// connection's caller is the token's.
func adminCaller(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return ctx
	}
	uid := strconv.FormatUint(uint64(cred.Uid), 10)
	if u, err := user.LookupId(uid); err == nil {
		return broker.WithCaller(ctx, u.Username)
	}
	return broker.WithCaller(ctx, "uid "+uid)
}

// socketListener removes its socket file when closed, unless another
// broker has replaced it since.
type socketListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
}

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.fi) {
		os.Remove(l.path)
	}
	return err
}
