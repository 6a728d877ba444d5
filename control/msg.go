package control

import "time"

// Method names of the control protocol. Calls expect a reply; notifications
// (Notify) do not.
const (
	// MethodPlace asks the broker where a new session should run
	// (gateway → broker, call). Body PlaceRequest, reply Placement.
	MethodPlace = "place"
	// MethodSessionStarted tells the broker a session is running
	// (gateway → broker, notify). Body SessionInfo.
	MethodSessionStarted = "session.started"
	// MethodSessionEnded tells the broker a session has ended
	// (gateway → broker, notify). Body SessionEnded.
	MethodSessionEnded = "session.ended"
	// MethodSessionDetached tells the broker that a PTY session's client
	// went away and the session was detached, still running for its grace
	// period (gateway → broker, notify). Body SessionInfo: ID, Server and
	// User. The broker lists it as detached at once, rather than at the
	// server's next report, so that a resume right after finds it.
	MethodSessionDetached = "session.detached"
	// MethodServerReport is an app server's heartbeat
	// (appd → broker, notify). Body ServerReport.
	MethodServerReport = "report.server"
	// MethodGatewayReport is a gateway's heartbeat
	// (gateway → broker, notify). Body GatewayReport.
	MethodGatewayReport = "report.gateway"
	// MethodSessionsList asks the broker for one user's sessions, attached
	// and detached, on every server (gateway → broker, call). Body
	// UserRequest, reply SessionList. The gateway fills User from the
	// authenticated identity; the broker returns only that user's sessions.
	MethodSessionsList = "sessions.list"
	// MethodAppsList asks the broker for the apps one user may run, with a
	// description and an availability hint (gateway → broker, call). Body
	// UserRequest, reply AppList.
	MethodAppsList = "apps.list"
	// MethodPrelaunch asks appd to start an app at once, before its user
	// has connected to the gateway that will carry it (broker → appd,
	// call; the patent's S903a-b). Body PrelaunchRequest, reply Started.
	// appd starts the app as a detached PTY session of the user, held for
	// PrelaunchRequest.Hold: an attach@switchyard channel claims it like a
	// resume; unclaimed, it is hung up when the hold ends, by appd's own
	// timer, whether or not the broker is still there.
	MethodPrelaunch = "prelaunch"
	// MethodPrelaunchRelease asks appd to end a pre-launched session that
	// will not be claimed (broker → appd, call). Body ReleaseRequest, no
	// reply body. A session that has been attached since it was started is
	// left alone.
	MethodPrelaunchRelease = "prelaunch.release"
)

// SSH channel and request names used on internal connections.
const (
	// ChannelControl carries the framed control protocol between two nodes.
	ChannelControl = "control@switchyard"
	// ChannelSpawn asks appd to start an app; its extra data is a JSON
	// SpawnRequest. appd rejects the channel with a one-line message, or
	// accepts it and first sends RequestStarted, then the app's output
	// (stdout as data, stderr as extended data 1), then exit-status or
	// exit-signal, then closes. Gateway → appd requests on it are the
	// standard "window-change" and "signal"; CloseWrite is stdin EOF.
	ChannelSpawn = "spawn@switchyard"
	// RequestStarted is sent by appd on a spawn channel once the app runs;
	// its payload is a JSON Started.
	RequestStarted = "started@switchyard"
	// ChannelAttach re-attaches a gateway to a running PTY session (resume);
	// its extra data is a JSON AttachRequest. appd rejects it with
	// "no_session: no such session" when the session does not exist, is not
	// a terminal session or belongs to another user (one message for all,
	// so ids cannot be probed). Otherwise it accepts, resizes the PTY to the
	// new window (which makes the app redraw), sends RequestStarted with the
	// session's id and pid, then the output kept while the session was
	// detached, then live output; from there on the channel behaves as a
	// spawn channel. An older attachment of the session is taken over.
	ChannelAttach = "attach@switchyard"
	// RequestTakenOver is sent by appd, without payload, on an attachment a
	// newer one has replaced, just before it writes one line on extended
	// data 1 ("switchyard: session taken over by a newer connection"),
	// exit-status 0, and closes the channel. The session keeps running: the
	// gateway must not report it ended.
	RequestTakenOver = "taken-over@switchyard"
	// ChannelRelay is opened by one gateway on another gateway's internal
	// listener to reach a server it cannot reach itself (redirect =
	// "relay"). Its extra data is in SSH's wire encoding (RFC 4251), not
	// JSON: string server (node name), string inner channel type
	// (ChannelSpawn or ChannelAttach), then the inner channel's extra data
	// as is, to the end. The relaying gateway opens the inner channel to
	// the server and splices the two: data, extended data, EOF, every
	// request both ways (want-reply honoured) and close. A rejection of the inner channel is passed back as is; a
	// server the relaying gateway does not reach is rejected with
	// "no_server: ...".
	ChannelRelay = "relay@switchyard"
)

// Session states in SessionInfo.State.
const (
	StateAttached = "attached" // a gateway relays the session
	StateDetached = "detached" // nobody is attached; the app runs out its grace period
	// StateUnreachable is set by the broker in a SessionList, never by
	// appd: the session's server is not healthy in the broker's picture
	// (link down or reports stopped), so whether the session still runs,
	// and in which state, is unknown, and it cannot be resumed now.
	StateUnreachable = "unreachable"
)

// Error codes carried by RemoteError.Code and by rejected spawn and attach
// channels.
const (
	CodeUnknownApp  = "unknown_app"  // no such app
	CodeForbidden   = "forbidden"    // the user may not run the app
	CodeNoServer    = "no_server"    // no healthy server offers the app with room
	CodeBadArgs     = "bad_args"     // arguments given to an app that takes none
	CodeSpawnFailed = "spawn_failed" // the app could not be started
	CodeInternal    = "internal"     // anything else
	CodeNoSession   = "no_session"   // no such session for this user (attach, resume)
	// CodeNotLeader: this broker does not place now; the Message is the
	// leading broker's node name, or "" when none is known (an election
	// is under way, or etcd has lost its quorum). Nodes move the call to
	// the leader (transport.Brokers).
	CodeNotLeader = "not_leader"
	// CodeUnavailable: the broker cannot place now (it cannot keep its
	// state); the user sees "broker unavailable". From appd: it is
	// handing its sessions over or stopping (a watch tries again).
	CodeUnavailable = "unavailable"
)

// PlaceRequest is a gateway's selection request for one new session.
type PlaceRequest struct {
	User       string `json:"user"`
	App        string `json:"app"`
	ClientAddr string `json:"client_addr"` // ip:port of the SSH client
	Gateway    string `json:"gateway"`     // requesting gateway's node name
	// RegionHint is the region the client named itself (SetEnv
	// SWITCHYARD_REGION=...); it overrides the region of ClientAddr when
	// it names a configured region.
	RegionHint string `json:"region_hint,omitempty"`
	// Args, Pty and Env describe the session as the spawn request will:
	// the broker needs them to pre-launch the app on a redirect.
	Args []string          `json:"args,omitempty"`
	Pty  *PtySpec          `json:"pty,omitempty"` // nil for a batch session
	Env  map[string]string `json:"env,omitempty"`
	// Conn is the gateway's id of the client's connection, which ties the
	// placement to the login in the audit trail.
	Conn string `json:"conn,omitempty"`
	// Avoid names servers the gateway could not reach for this session
	// a moment ago: the broker places it elsewhere (as if they were
	// down, for this decision only). At most MaxAvoid are read.
	Avoid []string `json:"avoid,omitempty"`
}

// MaxAvoid bounds PlaceRequest.Avoid.
const MaxAvoid = 8

// Placement is the broker's answer: where to run the session and why.
// At most one of Redirect and Claim is set; Via may go with Claim or with
// neither.
type Placement struct {
	Server string `json:"server"` // node name of the chosen app server
	Addr   string `json:"addr"`   // its internal listen address
	Reason string `json:"reason"` // one-line explanation of the decision
	// Redirect, when set, means another gateway carries the session: the
	// requesting gateway tells the client where to go and spawns nothing.
	Redirect *Redirect `json:"redirect,omitempty"`
	// Claim, when set, means the client holds a reservation: attach to
	// that pre-launched session instead of spawning a new one.
	Claim *Claim `json:"claim,omitempty"`
	// Via, when set, means the requesting gateway cannot reach Server and
	// opens its channel through that gateway's internal listener.
	Via *Via `json:"via,omitempty"`
	// Route is how the session reaches its server, for the session's
	// record: RouteDirect, RouteRelay, RouteClaim, or RouteRedirected
	// (the client came from a redirect hint, nothing was pre-launched);
	// RouteRedirect when Redirect is set. Empty from an older broker.
	Route string `json:"route,omitempty"`
}

// Routes of a session (Placement.Route, SessionInfo.Route).
const (
	RouteDirect     = "direct"     // the gateway the client reached carries it to the server
	RouteRelay      = "relay"      // carried through another gateway's internal listener
	RouteRedirect   = "redirect"   // the client is told to use another gateway (a Placement only)
	RouteRedirected = "redirected" // the client came here following a redirect hint; nothing was pre-launched
	RouteClaim      = "claim"      // the client attached to the app pre-launched for it after a redirect
	RouteResume     = "resume"     // the user resumed a detached session
)

// Redirect sends a client to another gateway (the patent's redirection
// message). SessionID and PID are set when the broker pre-launched the app
// there; Expires is when the reservation lapses.
type Redirect struct {
	Gateway   string    `json:"gateway"`              // node name of the gateway to use
	Address   string    `json:"address"`              // host:port users reach it at
	SessionID string    `json:"session_id,omitempty"` // pre-launched session, if any
	PID       int       `json:"pid,omitempty"`        // its process id
	Expires   time.Time `json:"expires"`              // end of the reservation
}

// Claim is a reservation confirmed to the gateway the client reached.
type Claim struct {
	SessionID string `json:"session_id"`
	PID       int    `json:"pid"`
}

// Via names the gateway a relayed session goes through.
type Via struct {
	Gateway string `json:"gateway"` // node name
	Addr    string `json:"addr"`    // its internal listener
}

// PrelaunchRequest is the body of MethodPrelaunch.
type PrelaunchRequest struct {
	Spawn   SpawnRequest  `json:"spawn"`   // must have a Pty
	Hold    time.Duration `json:"hold"`    // how long the session waits for its user, in nanoseconds
	Gateway string        `json:"gateway"` // gateway the user was sent to, for the session's record
}

// ReleaseRequest is the body of MethodPrelaunchRelease.
type ReleaseRequest struct {
	ID   string `json:"id"`   // session id
	User string `json:"user"` // its owner
}

// PtySpec describes the terminal the client asked for.
type PtySpec struct {
	Term string `json:"term"`
	Cols uint32 `json:"cols"`
	Rows uint32 `json:"rows"`
	// Modes are the terminal modes of the pty-req (RFC 4254 section 8),
	// opcode to value, applied when the PTY is opened; a peer that predates
	// them sends none and the PTY keeps the kernel's defaults.
	Modes map[uint8]uint32 `json:"modes,omitempty"`
}

// SpawnRequest is the extra data of a ChannelSpawn channel. It names an app,
// never a command line; appd resolves the argv from its own config.
type SpawnRequest struct {
	App  string            `json:"app"`
	User string            `json:"user"`           // Switchyard user the session belongs to
	Args []string          `json:"args,omitempty"` // extra argv, refused unless the app allows it
	Pty  *PtySpec          `json:"pty,omitempty"`  // nil for a batch session (pipes)
	Env  map[string]string `json:"env,omitempty"`  // client env; appd keeps only its allow-list
	// Gateway is the gateway the client reached, when another gateway
	// relays the channel: appd reports the session as that gateway's.
	// Empty: the node that opened the channel.
	Gateway string `json:"gateway,omitempty"`
}

// Started is the payload of RequestStarted.
type Started struct {
	ID  string `json:"id"`  // session id assigned by appd
	PID int    `json:"pid"` // process id of the app on its server
	InputCount
}

// InputCount is where a PTY attachment's input starts: In bytes of input
// had reached the session's terminal when it began. Exact says In counts
// every byte the terminal got (false after an appd died without handing
// the session over, or from an appd that does not count). A gateway that
// re-attaches after losing its link compares In with what it sent on the
// lost attachment, resends what never arrived, and tells the user what
// it cannot resend.
type InputCount struct {
	In    int64 `json:"in,omitempty"`
	Exact bool  `json:"in_exact,omitempty"`
}

// SessionInfo describes one running session.
type SessionInfo struct {
	ID       string    `json:"id"`
	PID      int       `json:"pid"`
	User     string    `json:"user"`
	App      string    `json:"app"`
	Server   string    `json:"server"`
	Gateway  string    `json:"gateway"`
	Started  time.Time `json:"started"`
	State    string    `json:"state,omitempty"`   // StateAttached, StateDetached or (SessionList only) StateUnreachable; "" means attached
	Detached time.Time `json:"detached,omitzero"` // when the session was detached, if it is
	Addr     string    `json:"addr,omitempty"`    // server's internal address, in SessionList only
	// Via is set in a SessionList when the asking gateway cannot reach
	// Server and must relay through that gateway to attach to the
	// session; nil when it reaches Server, or when no gateway can relay
	// there (an attach to Addr then fails).
	Via *Via `json:"via,omitempty"`
	// ClientAddr is the ip:port of the SSH client attached last, and
	// Route how its gateway reached the server (the Route constants);
	// both set by the gateway, kept by the broker through appd's reports.
	ClientAddr string `json:"client_addr,omitempty"`
	Route      string `json:"route,omitempty"`
}

// AttachRequest is the extra data of a ChannelAttach channel.
type AttachRequest struct {
	ID   string   `json:"id"`            // session id
	User string   `json:"user"`          // Switchyard user attaching; must own the session
	Pty  *PtySpec `json:"pty,omitempty"` // the new terminal; nil keeps the current size
	// Gateway is the gateway the client reached, when another gateway
	// relays the channel (see SpawnRequest.Gateway).
	Gateway string `json:"gateway,omitempty"`
	// Rejoin marks a gateway re-attaching a session after losing its
	// link to appd (ride-through): appd refuses it, as it refuses an
	// unknown session, when the session is attached through another
	// gateway meanwhile, so that a ride-through never takes a session
	// back from a user who resumed it elsewhere.
	Rejoin bool `json:"rejoin,omitempty"`
}

// UserRequest is the body of MethodSessionsList and MethodAppsList.
type UserRequest struct {
	User string `json:"user"` // the authenticated user the gateway asks for
}

// SessionList is the reply to MethodSessionsList: the user's sessions,
// most recently started first, each with its server's Addr and, when the
// asking gateway does not reach that server, the gateway to relay
// through (Via).
type SessionList struct {
	Sessions []SessionInfo `json:"sessions"`
}

// AppInfo is one app a user may run, as the picker shows it.
type AppInfo struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Available   bool   `json:"available"` // some healthy server offering it has room
	Hint        string `json:"hint"`      // "3 servers, low load", "1 server, busy", "unavailable"
}

// AppList is the reply to MethodAppsList, sorted by name.
type AppList struct {
	Apps []AppInfo `json:"apps"`
}

// SessionEnded reports the end of a session.
type SessionEnded struct {
	ID     string `json:"id"`
	Server string `json:"server"`
	Status int    `json:"status"` // exit status, or -1 when the app died of a signal or was lost
	Reason string `json:"reason,omitempty"`
}

// ServerReport is an appd heartbeat: its load and every session it runs.
type ServerReport struct {
	Load float64 `json:"load"` // 1-minute load average divided by CPU count
	// CPU is the CPU in use per CPU since the previous report (from
	// /proc/stat), CPUs how many there are, AppCPU the CPUs one running
	// session of each app uses (learned, or set by the config). Reports
	// of an appd older than these fields have CPUs 0: the broker uses
	// Load then.
	CPU         float64            `json:"cpu,omitempty"`
	CPUs        int                `json:"cpus,omitempty"`
	AppCPU      map[string]float64 `json:"app_cpu,omitempty"`
	MemAvail    uint64             `json:"mem_avail"`    // bytes of memory available
	MaxSessions int                `json:"max_sessions"` // capacity from the config
	Apps        []string           `json:"apps"`         // apps this server offers
	Version     string             `json:"version"`
	Sessions    []SessionInfo      `json:"sessions"`
	// ConfigHash is the hash of the config file the server runs
	// (config.Config.Hash), RestartNeeded the keys a refused reload
	// changed that only a restart applies ("server.s1.listen").
	ConfigHash    string   `json:"config_hash,omitempty"`
	RestartNeeded []string `json:"restart_needed,omitempty"`
}

// GatewayReport is a gateway heartbeat.
type GatewayReport struct {
	Sessions     int    `json:"sessions"`
	Capacity     int    `json:"capacity"`
	Version      string `json:"version"`
	AuthFailures uint64 `json:"auth_failures"` // failed logins since the gateway started
	// ConfigHash and RestartNeeded are as in ServerReport.
	ConfigHash    string   `json:"config_hash,omitempty"`
	RestartNeeded []string `json:"restart_needed,omitempty"`
	// Address is where users reach this gateway and Internal its
	// internal listener, as the running process has them: the broker
	// sends redirected and relayed sessions there rather than to a
	// changed config's address the gateway does not serve yet.
	Address  string `json:"address,omitempty"`
	Internal string `json:"internal,omitempty"`
}
