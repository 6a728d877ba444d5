// Package appd is the app server's session manager: the appd side of the
// control.ChannelSpawn channel.
//
// A gateway opens a "spawn@switchyard" channel on its persistent,
// authenticated SSH connection to appd. The channel's extra data is a JSON
// control.SpawnRequest naming an app; appd resolves the app in its own App
// table (a request never carries a command line), picks the Unix user to run
// it as, builds a minimal environment and starts the program, either in a
// new PTY (interactive sessions) or with separate stdin/stdout/stderr pipes
// (batch sessions). It then relays bytes, window changes and signals between
// the channel and the program, and reports the exit status or signal the way
// sshd does.
//
// The flow on one channel:
//
//	reject "code: one line"                          (bad request, full, start failed)
//	or accept → started@switchyard {id, pid}
//	          → data / extended data 1 (stderr)      ← data, window-change, signal
//	          → EOF → exit-status | exit-signal → close
//
// A session is two things kept apart on purpose: the record of the running
// program (session: pid, process group, terminal or pipes, exit) and the
// attachment that relays it to one SSH channel. A batch session lives
// exactly as long as its channel: when the channel goes away, the program's
// process group gets SIGHUP, then SIGKILL two seconds later. A PTY session
// whose App.Grace is positive is detached instead: its terminal keeps being
// read, the latest 256 KiB of output are kept, and a "attach@switchyard"
// channel (HandleAttach) from any gateway re-attaches it, same pid, after
// resizing the PTY so that the app redraws:
//
//	reject "no_session: no such session"             (unknown id, not the user's, batch)
//	or accept → started@switchyard {id, pid}
//	          → kept output, then live output …      (as on a spawn channel)
//
// A newer attachment takes over an older one, which gets
// taken-over@switchyard, one line on stderr, exit status 0, and is closed.
// When the grace period ends without an attach, the app is hung up as
// above and the session is gone from Sessions. The context given to
// HandleSpawn bounds the session's life (appd shutting down): when it ends
// the app is hung up, attached or not.
//
// The broker may also start an app before its user has connected
// (Prelaunch, served on appd's control link by Handler): the session is
// born detached, held for the time the broker asks, and claimed by an
// attach like any detached session; unclaimed, appd hangs it up when the
// hold ends, with or without the broker.
//
// PTY apps outlive appd (see keeper.go and handover.go): a keeper process
// starts them, holds their terminals and state, and hands them to the
// next appd (Adopt), or ends them when none comes within its hold or when
// appd stops for good. Batch apps die with appd (Pdeathsig, and the keeper
// kills what is left of their sessions).
//
// The package is Linux-only: it relies on waitid(2) with WNOWAIT, on pidfds
// and epoll to wait for apps without a thread each (before Linux 5.3 each
// session holds a thread blocked in waitid instead), and on the Linux PTY
// semantics (EIO on the master once no slave is open).
package appd
