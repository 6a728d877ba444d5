package appd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// appd and its keeper speak over a SOCK_SEQPACKET Unix socket: one
// message is one packet, an operation byte followed by a JSON body,
// descriptors riding along as SCM_RIGHTS. Packets keep their boundaries,
// so a message is never split nor merged with the next, and the
// descriptors arrive with the message they belong to.

// Operations from appd to the keeper.
const (
	opSpawn   byte = 'S' // start an app; the keeper becomes its parent (Spawn)
	opHold    byte = 'H' // keep these descriptors and this state for the app, replacing earlier ones
	opMeta    byte = 'M' // replace the app's state, keeping its descriptors
	opSignal  byte = 'K' // signal the app's process group, unless it was reaped
	opForget  byte = 'F' // the session is over: close what is held for it
	opAdd     byte = 'G' // kill this process group at once if appd goes away (apps appd started itself)
	opRemove  byte = 'R' // forget a group registered with opAdd
	opQuit    byte = 'Q' // end every app now and exit: appd stops for good
	opWait    byte = 'W' // hold the apps this long once appd goes (Hold: nanoseconds)
	opAdopted byte = 'A' // keeper to appd: an app held since before this appd
	opListed  byte = 'D' // keeper to appd: every held app was sent
	opStarted byte = 'P' // keeper to appd: the answer to opSpawn
	opExited  byte = 'X' // keeper to appd: an app exited (wait status)
)

// Bounds of one message.
const (
	maxKeeperMsg = 64 << 10
	maxKeeperFDs = 16
)

// keeperMsg is every message's body; each operation uses some fields.
type keeperMsg struct {
	Ref    uint64          `json:"ref,omitempty"`    // spawn: matches the answer to the request
	PID    int             `json:"pid,omitempty"`    // the app (its pid is its process group and session)
	Sig    int             `json:"sig,omitempty"`    // signal
	Status *int            `json:"status,omitempty"` // exited, adopted: the wait status, nil while it runs
	Err    string          `json:"err,omitempty"`    // started: why the spawn failed
	Spawn  *spawnSpec      `json:"spawn,omitempty"`  // spawn
	Child  int             `json:"child,omitempty"`  // spawn: the first Child descriptors are the app's 0, 1, 2...; the rest are held
	Exe    bool            `json:"exe,omitempty"`    // spawn: the last descriptor is the program to run (appd's /proc/self/fd/N)
	Meta   json.RawMessage `json:"meta,omitempty"`   // spawn, hold, meta, adopted: appd's state of the session, opaque to the keeper
	Hold   time.Duration   `json:"hold,omitempty"`   // wait
	// Version is the keeper's protocol version (listed); absent from
	// the first keepers, which spoke version 1.
	Version int `json:"version,omitempty"`
}

// keeperProtocol is the version of this protocol. A keeper outlives the
// appd that started it, so a new appd may find an older keeper: it must
// use only what that keeper's version has. Version 2 added Version.
const keeperProtocol = 2

// spawnSpec is what the keeper needs to start an app: what exec.Cmd and
// its SysProcAttr say, the descriptors aside.
type spawnSpec struct {
	Path    string   `json:"path"`
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Dir     string   `json:"dir,omitempty"`
	UID     *uint32  `json:"uid,omitempty"` // with GID and Groups: run as this user
	GID     uint32   `json:"gid,omitempty"`
	Groups  []uint32 `json:"groups,omitempty"`
	Setctty bool     `json:"setctty,omitempty"` // descriptor 0 becomes the controlling terminal
}

// credential is the spec's user, nil to keep the keeper's.
func (s *spawnSpec) credential() *syscall.Credential {
	if s.UID == nil {
		return nil
	}
	return &syscall.Credential{Uid: *s.UID, Gid: s.GID, Groups: s.Groups}
}

// sendKeeperMsg writes one message with files' descriptors.
func sendKeeperMsg(fd int, op byte, m keeperMsg, files []*os.File) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("keeper message encode: %w", err)
	}
	if len(body)+1 > maxKeeperMsg || len(files) > maxKeeperFDs {
		return fmt.Errorf("keeper message of %d bytes and %d descriptors is too large", len(body)+1, len(files))
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			if fds[i], err = rawFD(f); err != nil {
				return err
			}
		}
		oob = unix.UnixRights(fds...)
	}
	pkt := append([]byte{op}, body...)
	for {
		err = unix.Sendmsg(fd, pkt, oob, nil, unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("keeper sendmsg: %w", err)
	}
	return nil
}

// rawFD is f's descriptor, read without Fd(), which would make a
// pollable file blocking for good (see terminal). f must stay open until
// the descriptor's use is over.
func rawFD(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("keeper descriptor: %w", err)
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return -1, fmt.Errorf("keeper descriptor: %w", err)
	}
	return fd, nil
}

// errKeeperMalformed marks a message that is not the protocol's; the
// link goes on.
var errKeeperMalformed = errors.New("malformed keeper message")

// keeperPacket is one message received, with its descriptors as files
// (close-on-exec) that the receiver owns.
type keeperPacket struct {
	op    byte
	msg   keeperMsg
	files []*os.File
}

// recvKeeperMsg reads one message; io.EOF-like failures come back as
// errKeeperEOF. A malformed message is an error, its descriptors closed.
func recvKeeperMsg(fd int, buf, oob []byte) (keeperPacket, error) {
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return keeperPacket{}, fmt.Errorf("keeper recvmsg: %w", err)
	}
	if n == 0 && oobn == 0 {
		return keeperPacket{}, errKeeperEOF
	}
	p := keeperPacket{files: parseRights(oob[:oobn])}
	if n == 0 {
		p.close()
		return keeperPacket{}, fmt.Errorf("%w: no operation", errKeeperMalformed)
	}
	p.op = buf[0]
	if err := json.Unmarshal(buf[1:n], &p.msg); err != nil {
		p.close()
		return keeperPacket{}, fmt.Errorf("%w: %q: %v", errKeeperMalformed, p.op, err)
	}
	return p, nil
}

// parseRights turns the SCM_RIGHTS of a control message into files.
func parseRights(oob []byte) []*os.File {
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var files []*os.File
	for _, c := range cmsgs {
		fds, err := unix.ParseUnixRights(&c)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "held"))
		}
	}
	return files
}

// close closes the packet's files.
func (p keeperPacket) close() {
	for _, f := range p.files {
		f.Close()
	}
}

// keeperBuffers returns buffers for recvKeeperMsg.
func keeperBuffers() (buf, oob []byte) {
	return make([]byte, maxKeeperMsg), make([]byte, unix.CmsgSpace(4*maxKeeperFDs))
}
