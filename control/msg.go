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
	// MethodServerReport is an app server's heartbeat
	// (appd → broker, notify). Body ServerReport.
	MethodServerReport = "report.server"
	// MethodGatewayReport is a gateway's heartbeat
	// (gateway → broker, notify). Body GatewayReport.
	MethodGatewayReport = "report.gateway"
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
)

// Error codes carried by RemoteError.Code and by rejected spawn channels.
const (
	CodeUnknownApp  = "unknown_app"  // no such app
	CodeForbidden   = "forbidden"    // the user may not run the app
	CodeNoServer    = "no_server"    // no healthy server offers the app with room
	CodeBadArgs     = "bad_args"     // arguments given to an app that takes none
	CodeSpawnFailed = "spawn_failed" // the app could not be started
	CodeInternal    = "internal"     // anything else
)

// PlaceRequest is a gateway's selection request for one new session.
type PlaceRequest struct {
	User       string `json:"user"`
	App        string `json:"app"`
	ClientAddr string `json:"client_addr"` // ip:port of the SSH client
	Gateway    string `json:"gateway"`     // requesting gateway's node name
}

// Placement is the broker's answer: where to run the session and why.
type Placement struct {
	Server string `json:"server"` // node name of the chosen app server
	Addr   string `json:"addr"`   // its internal listen address
	Reason string `json:"reason"` // one-line explanation of the decision
}

// PtySpec describes the terminal the client asked for.
type PtySpec struct {
	Term string `json:"term"`
	Cols uint32 `json:"cols"`
	Rows uint32 `json:"rows"`
}

// SpawnRequest is the extra data of a ChannelSpawn channel. It names an app,
// never a command line; appd resolves the argv from its own config.
type SpawnRequest struct {
	App  string            `json:"app"`
	User string            `json:"user"`           // Switchyard user the session belongs to
	Args []string          `json:"args,omitempty"` // extra argv, refused unless the app allows it
	Pty  *PtySpec          `json:"pty,omitempty"`  // nil for a batch session (pipes)
	Env  map[string]string `json:"env,omitempty"`  // client env; appd keeps only its allow-list
}

// Started is the payload of RequestStarted.
type Started struct {
	ID  string `json:"id"`  // session id assigned by appd
	PID int    `json:"pid"` // process id of the app on its server
}

// SessionInfo describes one running session.
type SessionInfo struct {
	ID      string    `json:"id"`
	PID     int       `json:"pid"`
	User    string    `json:"user"`
	App     string    `json:"app"`
	Server  string    `json:"server"`
	Gateway string    `json:"gateway"`
	Started time.Time `json:"started"`
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
	Load        float64       `json:"load"`         // 1-minute load average divided by CPU count
	MemAvail    uint64        `json:"mem_avail"`    // bytes of memory available
	MaxSessions int           `json:"max_sessions"` // capacity from the config
	Apps        []string      `json:"apps"`         // apps this server offers
	Version     string        `json:"version"`
	Sessions    []SessionInfo `json:"sessions"`
}

// GatewayReport is a gateway heartbeat.
type GatewayReport struct {
	Sessions     int    `json:"sessions"`
	Capacity     int    `json:"capacity"`
	Version      string `json:"version"`
	AuthFailures uint64 `json:"auth_failures"` // public keys refused since the gateway started
}
