package appd

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"switchyard/sshmsg"
)

// rfcSignals are the signal names of RFC 4254 section 6.10, without "SIG".
// Only these are accepted in "signal" requests.
var rfcSignals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT,
	"ALRM": syscall.SIGALRM,
	"FPE":  syscall.SIGFPE,
	"HUP":  syscall.SIGHUP,
	"ILL":  syscall.SIGILL,
	"INT":  syscall.SIGINT,
	"KILL": syscall.SIGKILL,
	"PIPE": syscall.SIGPIPE,
	"QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV,
	"TERM": syscall.SIGTERM,
	"USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

// signalName returns sig's name without "SIG" ("TERM"). Signals outside
// RFC 4254's list get their Linux name ("WINCH"), or the number.
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return strings.TrimPrefix(name, "SIG")
	}
	return strconv.Itoa(int(sig))
}

// exitResult is how an app ended.
type exitResult struct {
	status   int            // exit status, when !signaled
	signal   syscall.Signal // the signal that killed it, when signaled
	signaled bool
	core     bool   // core dumped
	lost     bool   // no status could be collected
	note     string // a line for the user's stderr before the status, with its line end (an administrator's kill, the memory limit); "" for none
}

// resultOf turns what cmd.Wait left into an exitResult.
func resultOf(ps *os.ProcessState) exitResult {
	if ps == nil {
		return exitResult{lost: true}
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return exitResult{status: ps.ExitCode()}
	}
	return resultOfStatus(ws)
}

// resultOfStatus turns a wait status into an exitResult.
func resultOfStatus(ws syscall.WaitStatus) exitResult {
	switch {
	case ws.Signaled():
		return exitResult{signaled: true, signal: ws.Signal(), core: ws.CoreDump()}
	default:
		return exitResult{status: ws.ExitStatus()}
	}
}

// String describes the result for logs: "exit 3", "signal TERM".
func (r exitResult) String() string {
	switch {
	case r.lost:
		return "lost"
	case r.signaled && r.core:
		return "signal " + signalName(r.signal) + " (core dumped)"
	case r.signaled:
		return "signal " + signalName(r.signal)
	}
	return fmt.Sprintf("exit %d", r.status)
}

// send reports the result on ch as an "exit-status" or "exit-signal"
// request (RFC 4254 section 6.10). A lost status sends nothing.
func (r exitResult) send(ch ssh.Channel) error {
	switch {
	case r.lost:
		return nil
	case r.signaled:
		msg := sshmsg.ExitSignal{Signal: signalName(r.signal), CoreDumped: r.core}
		_, err := ch.SendRequest("exit-signal", false, ssh.Marshal(&msg))
		return err
	}
	msg := sshmsg.ExitStatus{Status: uint32(r.status)}
	_, err := ch.SendRequest("exit-status", false, ssh.Marshal(&msg))
	return err
}
