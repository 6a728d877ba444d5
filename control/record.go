package control

// Methods the broker calls on appd for session recordings and live
// watching (broker → appd, calls). They carry an admin's request from
// the broker's admin API; appd answers only with what it holds.
const (
	// MethodRecordingRead reads one chunk of a session's recording (an
	// asciicast v2 file). Body RecordingRead, reply RecordingChunk;
	// CodeNoSession when this server holds no recording of that id.
	MethodRecordingRead = "recording.read"
	// MethodWatchStart joins a running PTY session read-only. Body
	// WatchStart, reply WatchChunk: the watcher's id and, as Data, the
	// most recent output appd kept (the current screen). CodeNoSession
	// when the session is not a running PTY session of this server.
	MethodWatchStart = "watch.start"
	// MethodWatchRead waits (at most WatchRead.Wait) for the session's
	// output since the last read and returns it. Body WatchRead, reply
	// WatchChunk. A watcher nobody reads for a while is dropped; output a
	// watcher is too slow for is dropped for it alone, never held back
	// from the user.
	MethodWatchRead = "watch.read"
	// MethodWatchStop ends a watcher. Body WatchRead (Wait unused), no
	// reply body.
	MethodWatchStop = "watch.stop"
)

// MaxRecordingChunk bounds RecordingRead.Max: a chunk, base64 in JSON,
// stays well under MaxFrame.
const MaxRecordingChunk = 256 << 10

// RecordingRead asks for up to Max bytes of session ID's recording from
// byte Offset.
type RecordingRead struct {
	ID     string `json:"id"`
	Offset int64  `json:"offset"`
	Max    int    `json:"max"`
}

// RecordingChunk is part of a recording. EOF is set when the chunk ends
// at the file's current end and the session no longer records (it ended);
// Live is set while the session still records, so more may follow.
type RecordingChunk struct {
	Data []byte `json:"data"`
	EOF  bool   `json:"eof,omitempty"`
	Live bool   `json:"live,omitempty"`
	// ID is the whole id of the session recorded (the request may name
	// a prefix of it).
	ID string `json:"id,omitempty"`
}

// WatchStart is the body of MethodWatchStart.
type WatchStart struct {
	ID string `json:"id"` // session id
	By string `json:"by"` // the admin watching, for appd's log
	// Redraw makes the app redraw its screen (a window-size nudge, as on
	// a resume), so that a full-screen app shows whole at once; the user
	// sees the redraw too.
	Redraw bool `json:"redraw,omitempty"`
	// Again goes on with a watch that an appd restart ended (WatchChunk
	// Moved): the user, told once already, is not told again.
	Again bool `json:"again,omitempty"`
}

// WatchRead is the body of MethodWatchRead and MethodWatchStop.
type WatchRead struct {
	ID      string `json:"id"`      // session id
	Watcher string `json:"watcher"` // from the WatchStart reply
	// Wait is how long a read may wait for output, in nanoseconds; appd
	// caps it.
	Wait int64 `json:"wait,omitempty"`
}

// WatchChunk is output of a watched session. Ended is set once the
// session has ended and everything before has been returned; with Moved,
// the session was handed to the next appd instead, where it can be
// watched again (WatchStart.Again).
type WatchChunk struct {
	Watcher string `json:"watcher,omitempty"`
	Data    []byte `json:"data,omitempty"`
	Ended   bool   `json:"ended,omitempty"`
	Moved   bool   `json:"moved,omitempty"`
}
