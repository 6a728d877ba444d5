// Package sshgate is the gateway: the SSH server users reach with stock
// OpenSSH (`ssh htop@gw`). It authenticates them, asks the broker where the
// app should run, opens a spawn channel to appd on that server over a
// persistent internal connection, and relays the session both ways.
//
// # Logging in
//
// Only public-key authentication is offered. The key must belong to a
// Switchyard user U. The login name L is either U itself or the name of an
// app, in which case the session belongs to U and L is the app to run when
// the client names none (`ssh htop@gw`). The identity is decided once, in the
// public-key callback, and read back only from the connection's
// Permissions; see auth.go for why.
//
// # Choosing the app
//
// An exec command is split on white space (no quoting, no shell): the first
// word is the app, the rest are its arguments. Without a command the app is
// the login name when that is an app; otherwise Server.NoApp runs (the
// picker's hook), and without a NoApp the user is told how to name one.
//
// # What the user sees when a session cannot run
//
// Exactly one line on stderr, prefixed "switchyard: ", then the exit status
// below, which becomes the exit code of ssh. Statuses follow sysexits(3).
// The full error, with its chain, goes to the log only.
//
//	status  meaning                                        cause
//	64      usage: unknown app, arguments not allowed,     unknown_app, bad_args,
//	        no app named                                   no command and login is a user
//	69      unavailable: try again later                   no_server; broker unavailable
//	                                                       (unreachable, timed out);
//	                                                       app server unreachable or did
//	                                                       not start the app within 10s;
//	                                                       server went away mid-session;
//	                                                       gateway full
//	70      internal error                                 spawn_failed (with its message),
//	                                                       internal, anything else
//	77      forbidden: the user may not run the app        forbidden
//
// Once the app runs, its own exit status (or the signal that killed it) is
// passed through unchanged. Under a PTY these lines end in "\r\n", since the
// client's terminal is in raw mode; without one, in "\n".
package sshgate
