// Package sshmsg holds the payloads of the session channel requests of
// RFC 4254 (section 6) that Switchyard reads or writes, each defined once
// for golang.org/x/crypto/ssh's Marshal and Unmarshal: the gateway reads
// a client's pty-req, env, exec, window-change and signal and passes the
// last two on to appd; appd answers with exit-status or exit-signal, which
// the gateway passes back. It imports nothing.
package sshmsg

// PtyReq is the payload of "pty-req" (RFC 4254 section 6.2).
type PtyReq struct {
	Term                      string // TERM
	Cols, Rows, Width, Height uint32 // characters, and pixels
	Modes                     string // encoded terminal modes (section 8)
}

// WindowChange is the payload of "window-change" (section 6.7).
type WindowChange struct {
	Cols, Rows, Width, Height uint32 // characters, and pixels
}

// Env is the payload of "env" (section 6.4).
type Env struct {
	Name, Value string
}

// Exec is the payload of "exec" (section 6.5).
type Exec struct {
	Command string
}

// Signal is the payload of "signal" (section 6.9): a signal name
// without "SIG", e.g. "INT".
type Signal struct {
	Name string
}

// ExitStatus is the payload of "exit-status" (section 6.10).
type ExitStatus struct {
	Status uint32
}

// ExitSignal is the payload of "exit-signal" (section 6.10).
type ExitSignal struct {
	Signal     string // without "SIG", e.g. "TERM"
	CoreDumped bool
	Error      string // a message, may be empty
	Lang       string // language tag of Error, may be empty
}
