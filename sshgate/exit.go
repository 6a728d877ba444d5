package sshgate

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
)

// Exit statuses a session ends with when the app could not run (sysexits).
const (
	exitUsage       = 64 // EX_USAGE: unknown app, bad arguments, no app named
	exitNoSession   = 66 // EX_NOINPUT: no such session to resume, or none detached
	exitUnavailable = 69 // EX_UNAVAILABLE: no server, broker or server unreachable, gateway full
	exitSoftware    = 70 // EX_SOFTWARE: internal error, spawn failed
	exitRedirect    = 75 // EX_TEMPFAIL: use another gateway, as the two lines on stderr say
	exitNoPerm      = 77 // EX_NOPERM: forbidden
)

// maxLineRunes bounds a message taken from a peer before it is shown.
const maxLineRunes = 200

// failure is why a session could not run: what the user is shown (Line,
// after "switchyard: ") with its exit status, and the full error for the log.
type failure struct {
	Status int
	Line   string
	Also   string // a second line, written as is after Line; only a redirect has one
	Err    error  // logged, never shown; may be nil
}

func (f *failure) Error() string {
	if f.Err == nil {
		return f.Line
	}
	return f.Line + ": " + f.Err.Error()
}

func (f *failure) Unwrap() error { return f.Err }

// codeStatus maps a control error code to its exit status.
func codeStatus(code string) int {
	switch code {
	case control.CodeUnknownApp, control.CodeBadArgs:
		return exitUsage
	case control.CodeForbidden, control.CodeLocked:
		return exitNoPerm
	case control.CodeNoServer, control.CodeUnavailable, control.CodeNotLeader:
		return exitUnavailable
	case control.CodeNoSession:
		return exitNoSession
	default:
		return exitSoftware
	}
}

// codeLine is the line shown for a code when the peer gave no message.
func codeLine(code, app string) string {
	switch code {
	case control.CodeUnknownApp:
		return fmt.Sprintf("unknown app %q", app)
	case control.CodeBadArgs:
		return fmt.Sprintf("app %q takes no arguments", app)
	case control.CodeForbidden:
		return fmt.Sprintf("you may not run %q", app)
	case control.CodeNoServer:
		return fmt.Sprintf("no server can run %q right now, try again later", app)
	case control.CodeSpawnFailed:
		return fmt.Sprintf("%q could not be started", app)
	case control.CodeNoSession:
		return "no such session"
	case control.CodeLocked:
		return "user locked by an administrator"
	case control.CodeUnavailable, control.CodeNotLeader:
		return "broker unavailable"
	default:
		return "internal error"
	}
}

// remoteFailure turns a RemoteError (from the broker or appd) into a failure.
func remoteFailure(re *control.RemoteError, app string, err error) *failure {
	line := oneLine(re.Message)
	if line == "" || re.Code == control.CodeUnavailable || re.Code == control.CodeNotLeader { // one line, whatever the broker's reason
		line = codeLine(re.Code, app)
	}
	return &failure{Status: codeStatus(re.Code), Line: line, Err: err}
}

// placeFailure maps an error from Placer.Place: a RemoteError by its code,
// anything else (refused, timed out, closed) as the broker being unavailable.
func placeFailure(app string, err error) *failure {
	var re *control.RemoteError
	if errors.As(err, &re) {
		return remoteFailure(re, app, fmt.Errorf("place: %w", err))
	}
	return &failure{Status: exitUnavailable, Line: "broker unavailable", Err: fmt.Errorf("place: %w", err)}
}

// openFailure maps an error from opening a channel for pl: appd's
// rejection ("code: text"), passed back as is by a relaying gateway, by
// its code; anything else as the server (or the relaying gateway) being
// unreachable.
func openFailure(pl control.Placement, app string, err error) *failure {
	server := pl.Server
	err = fmt.Errorf("open channel on %s (via %q): %w", server, viaName(pl), err)
	var oce *gossh.OpenChannelError
	if errors.As(err, &oce) {
		return remoteFailure(control.ParseRejection(oce.Message), app, err)
	}
	line := fmt.Sprintf("server %s is unreachable, try again later", server)
	if pl.Via != nil {
		line = fmt.Sprintf("server %s is unreachable through gateway %s, try again later", server, pl.Via.Gateway)
	}
	return &failure{Status: exitUnavailable, Line: line, Err: unreachable{err}}
}

// unreachable is the error of a channel that could not be opened for want
// of a connection to the server (or to the relaying gateway), rather than
// refused.
type unreachable struct{ error }

func (u unreachable) Unwrap() error { return u.error }

// wentAway is the failure of a session whose server closed the channel
// without an exit status. A batch session has ended; a terminal session
// may live on, detached, if only the link was lost (a relaying gateway
// died, the network was cut), so its client is told how to try resuming,
// and whether input it typed (unsent bytes) never reached the app.
func wentAway(server string, pty bool, resume string, unsent int) *failure {
	line := fmt.Sprintf("server %s went away; session ended", server)
	if pty {
		line = fmt.Sprintf("lost the link to server %s; if the app still runs it is detached, resume with: %s", server, resume)
	}
	if unsent > 0 {
		line += fmt.Sprintf(" (the last %d bytes you typed were not delivered)", unsent)
	}
	return &failure{Status: exitUnavailable, Line: line}
}

var (
	errFull  = &failure{Status: exitUnavailable, Line: "gateway full, try again later"}
	errNoApp = &failure{Status: exitUsage, Line: "no app named; try: ssh -t APP@HOST or ssh HOST APP"}
)

// internal wraps an unexpected error: the user sees only "internal error".
func internal(err error) *failure {
	return &failure{Status: exitSoftware, Line: "internal error", Err: err}
}

// asFailure returns err as a failure, mapping RemoteErrors by code and
// anything unknown to internal.
func asFailure(app string, err error) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	if errors.Is(err, ErrNoApp) {
		return errNoApp
	}
	var re *control.RemoteError
	if errors.As(err, &re) {
		return remoteFailure(re, app, err)
	}
	return internal(err)
}

// oneLine makes a peer's message safe to print as one terminal line: the
// first line only, control characters dropped, bounded in length.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxLineRunes {
			b.WriteString("...")
			break
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			continue
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
