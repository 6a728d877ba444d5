package sshgate

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"switchyard/control"
)

// RedirectTag starts the machine-readable line of a redirect. The line is
//
//	SWITCHYARD-REDIRECT host=H port=P login=L app=A [session=ID pid=N] expires=T
//
// one space between fields, each a key=value whose value holds no space;
// session and pid are there when the app was pre-launched for the client;
// T is RFC 3339 in UTC. Keys may be added: a parser must ignore those it
// does not know. Under a PTY the line ends in "\r\n", else in "\n".
const RedirectTag = "SWITCHYARD-REDIRECT"

// redirectFailure is what a client is told when the broker hands its
// session to another gateway: one line for people with the exact ssh
// command to run instead, one line for wrappers, and exitRedirect. app
// and args are what the client asked to run; nothing was started here.
func redirectFailure(ss *session, rd *control.Redirect, app string, args []string) *failure {
	host, port, err := net.SplitHostPort(rd.Address)
	if err != nil {
		return internal(fmt.Errorf("redirect to %s: bad address %q: %w", rd.Gateway, rd.Address, err))
	}
	cmd := redirectCommand(host, port, ss.id.Login, ss.cmd, ss.hasPty(), app, args)
	line := fmt.Sprintf("use %s for %s; run: %s", rd.Gateway, app, cmd)
	if rd.SessionID != "" {
		line = fmt.Sprintf("%s is ready for you on %s; run: %s", app, rd.Gateway, cmd)
	}
	return &failure{
		Status: exitRedirect,
		Line:   line,
		Also:   redirectLine(host, port, ss.id.Login, app, rd),
		Err:    fmt.Errorf("redirected to %s (%s), session %q pid %d", rd.Gateway, rd.Address, rd.SessionID, rd.PID),
	}
}

// redirectCommand is the ssh command that asks the other gateway for what
// the client asked here: the same login, the app in the command unless it
// came from the login name, -t when the client had a terminal and a
// command is given (ssh allocates none for a command otherwise), and -p
// unless the port is 22. Words are quoted for a POSIX shell where needed.
func redirectCommand(host, port, login, cmd string, pty bool, app string, args []string) string {
	fromLogin := strings.TrimSpace(cmd) == "" && app == login
	parts := []string{"ssh"}
	if pty && !fromLogin {
		parts = append(parts, "-t")
	}
	if port != "22" {
		parts = append(parts, "-p", port)
	}
	parts = append(parts, shellWord(login+"@"+host))
	if !fromLogin {
		parts = append(parts, shellWord(app))
		for _, a := range args {
			parts = append(parts, shellWord(a))
		}
	}
	return strings.Join(parts, " ")
}

// redirectLine is the machine-readable line (see RedirectTag).
func redirectLine(host, port, login, app string, rd *control.Redirect) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s host=%s port=%s login=%s app=%s", RedirectTag, field(host), field(port), field(login), field(app))
	if rd.SessionID != "" {
		fmt.Fprintf(&b, " session=%s pid=%s", field(rd.SessionID), strconv.Itoa(rd.PID))
	}
	fmt.Fprintf(&b, " expires=%s", rd.Expires.UTC().Format(time.RFC3339))
	return b.String()
}

// field keeps a value free of spaces and control characters, which the
// names it carries (validated by the config) never have.
func field(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}

// shellWord quotes w for a POSIX shell unless it is made only of
// characters that need none.
func shellWord(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
