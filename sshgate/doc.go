// Package sshgate is the gateway: the SSH server users reach with stock
// OpenSSH (`ssh htop@gw`). It authenticates them, asks the broker where the
// app should run, opens a spawn channel to appd on that server over a
// persistent internal connection, and bridges the client's channel to
// it: bytes both ways, window changes, signals, and the exit status.
//
// # Logging in
//
// Public keys and OpenSSH user certificates are offered, and passwords
// when Server.PasswordAuth is set. A key must belong to a Switchyard user
// U; a certificate must be signed by a CA the Directory trusts
// (CertAuthority), be valid now (Server.Clock), carry a principal mapping
// to U and no critical option but source-address (enforced by x/crypto;
// force-command refuses the certificate). Revoked keys, certificate keys
// and CAs (Revocations) are refused. A password logs in as the user whose
// name is the login. The login name L is either U itself or the name of an
// app, in which case the session belongs to U and L is the app to run when
// the client names none (`ssh htop@gw`). The identity is decided once, in
// the authentication callbacks, and read back only from the connection's
// Permissions; see auth.go for why.
//
// # Limits
//
// Each limit is a Server field with a default. An address over
// MaxConnsPerSource, or blocked after AuthFailLimit failed attempts within
// AuthFailWindow (for AuthFailWindow), is closed before the SSH handshake
// and logged. A connection not authenticated within HandshakeTimeout is
// closed; after MaxAuthTries failures x/crypto disconnects it ("too many
// authentication failures"). A session channel beyond MaxChannelsPerConn
// is rejected (resource shortage) with a reason OpenSSH prints. A session
// beyond its user's MaxSessionsPerUser gets "switchyard: too many sessions
// for user U (N)" and exit 69. A session idle (no byte either way) for its
// app's idle timeout (AppLimits) gets "switchyard: idle for D; session
// ended" and exit 69 (or "detached, resume with: ..." for a PTY app with a grace period,
// which stays resumable).
//
// # Upgrades
//
// Drain (the wiring calls it once a new gateway process serves on the
// inherited listener) stops accepting and lets established connections
// run; at its deadline Evict detaches every PTY session, whose user gets
// "switchyard: this gateway is being upgraded; resume with: ssh -t ...
// resume ID", and ends batch sessions with "...; session ended, run it
// again"; exit 69 for both.
//
// # Choosing the app
//
// An exec command is split on white space (no quoting, no shell): the first
// word is the app, the rest are its arguments. Without a command the app is
// the login name when that is an app; otherwise, under a PTY, Server.NoApp
// runs (the picker's hook) with the user's detached sessions and apps, and
// what it chooses is launched or resumed in the same SSH session; without a
// PTY or a NoApp the user is told how to name an app.
//
// # The gateway's own commands
//
// Two words are answered by the gateway itself when they come first in the
// command (config reserves them as app names):
//
//	ssh HOST sessions      a plain table of the user's sessions: ID, APP,
//	                       SERVER, STATE (attached/detached), AGE, IDLE
//	ssh -t HOST resume     re-attach the user's most recently detached session
//	ssh -t HOST resume ID  re-attach that session, taking it over if it is
//	                       attached elsewhere
//
// The user is always the authenticated one: the broker lists only that
// user's sessions and appd checks the owner again on attach, so an id that
// is not the user's reads exactly like one that does not exist.
//
// # Detach and resume
//
// When a PTY session's client goes away (killed, network cut, this gateway
// stopped), the gateway closes its appd channel and does not report the
// session ended: appd detaches it and keeps the app running for the app's
// grace period. The gateway tells the broker at once (session.detached),
// so that a resume right after, here or elsewhere, finds it detached;
// appd's next report confirms it. A resume opens an
// "attach@switchyard" channel to appd and serves it like a new session;
// when this gateway does not reach the session's server, the broker's
// session list names a gateway to relay through (SessionInfo.Via), as
// for a relayed new session (below), whatever this gateway's redirect
// mode. A
// client whose session is taken over by a newer attach gets appd's one line
// "switchyard: session taken over by a newer connection" and exit status 0;
// the session is not reported ended either.
//
// # Many gateways
//
// The broker chooses the gateway that carries a session as well as its
// server. When it chooses another one (this gateway does not reach the
// server, is full, or another is much closer to the client or much less
// busy), its answer is a redirect: the gateway starts nothing, writes two
// lines on stderr and exits 75 (EX_TEMPFAIL: try again, elsewhere):
//
//	switchyard: htop is ready for you on gw2; run: ssh -p 2223 htop@gw2.example.com
//	SWITCHYARD-REDIRECT host=gw2.example.com port=2223 login=htop app=htop session=ID pid=PID expires=RFC3339
//
// The first is the exact command to run (see redirectCommand); the second
// is for wrappers (see RedirectTag for its grammar). With a PTY the
// broker has already started the app on the chosen server (its pid is in
// the line) and holds it for the user; without one nothing is started
// and the first line reads "use gw2 for APP; run: ...". On the second
// gateway the broker confirms the reservation, and the session is an
// attach@switchyard to that very process: same pid, what it wrote while
// waiting replayed, then live. A client with a reservation is never
// redirected again: it is served, or told why not in one line.
//
// A gateway configured with redirect = "relay" gets no redirects: the
// broker names the gateway to go through (Placement.Via), and this one
// opens a relay@switchyard channel on that gateway's internal listener,
// which opens the spawn or attach channel to the server and splices the
// two (Relay serves that listener). The client sees an ordinary session.
//
// # What the user sees when a session cannot run
//
// Exactly one line on stderr, prefixed "switchyard: " (two for a redirect,
// 75), then the exit status below, which becomes the exit code of ssh. Statuses follow sysexits(3).
// The full error, with its chain, goes to the log only.
//
//	status  meaning                                        cause
//	64      usage: unknown app, arguments not allowed,     unknown_app, bad_args,
//	        no app named (without a PTY; with one the      no command and login is a user;
//	        picker runs), resume without a PTY             resume or sessions misused
//	69      unavailable: try again later                   no_server; broker unavailable
//	                                                       (unreachable, timed out, not
//	                                                       leading: unavailable);
//	                                                       app server (or the gateway
//	                                                       relaying to it) unreachable or
//	                                                       did not start the app within 10s;
//	                                                       server went away mid-session;
//	                                                       gateway full; the app pre-launched
//	                                                       for a redirected client is gone;
//	                                                       resume: the session's server is not
//	                                                       reachable from this gateway
//	66      no such session (resume): not the user's, or   no_session from appd;
//	        gone; or none detached for a bare resume       not in the broker's list
//	70      internal error                                 spawn_failed (with its message),
//	                                                       internal, anything else
//	75      use another gateway: two lines on stderr, the  redirect from the broker
//	        command to run and a SWITCHYARD-REDIRECT line
//	77      forbidden: the user may not run the app        forbidden
//
// Once the app runs, its own exit status (or the signal that killed it) is
// passed through unchanged. Under a PTY these lines end in "\r\n", since the
// client's terminal is in raw mode; without one, in "\n".
package sshgate
