package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"switchyard/control"
	"switchyard/safelog"
)

// Admin endpoints for recordings and live watching: the broker fetches
// from whichever appd holds the session, over its control link.
const (
	// watchPoll is how long one watch read waits at appd for output.
	watchPoll = 5 * time.Second
	// TrailerEnd is the HTTP trailer that says how a watch or replay
	// stream ended: "ended" (the session ended; for a replay, the whole
	// recording was sent) or "error: WHAT".
	TrailerEnd = "X-Switchyard-End"
)

// recordRoutes adds GET /recording/{id} and GET /watch/{id} to mux.
func (b *Broker) recordRoutes(mux *http.ServeMux, a AdminAccess) {
	mux.HandleFunc("GET /recording/{id}", func(w http.ResponseWriter, r *http.Request) {
		b.serveRecording(w, r, a)
	})
	mux.HandleFunc("GET /watch/{id}", func(w http.ResponseWriter, r *http.Request) {
		b.serveWatch(w, r, a)
	})
}

// serveRecording streams session id's asciicast recording, read in
// chunks from the appd that holds it.
func (b *Broker) serveRecording(w http.ResponseWriter, r *http.Request, a AdminAccess) {
	who := a.caller(r)
	id, user := r.PathValue("id"), ""
	if s, ok := b.knownSession(id); ok {
		id, user = s.ID, s.User
	}
	ctx := r.Context()
	server, first, err := b.findRecording(ctx, id)
	if first.ID != "" && first.ID != id { // a prefix of an ended session's id
		id = first.ID
	}
	b.auditAdmin(r, a, "replay", id, user, "server", server, "outcome", errText(err))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	b.logger().Info("recording replayed", safelog.String("session", id), "server", server, safelog.String("by", who))
	w.Header().Set("Content-Type", "application/x-asciicast")
	w.Header().Set("Trailer", TrailerEnd)
	offset := int64(0)
	chunk := first
	for {
		if _, err := w.Write(chunk.Data); err != nil {
			return
		}
		offset += int64(len(chunk.Data))
		if chunk.EOF || len(chunk.Data) == 0 {
			w.Header().Set(TrailerEnd, "ended")
			return
		}
		chunk = control.RecordingChunk{}
		if err := b.readChunk(ctx, server, id, offset, &chunk); err != nil {
			w.Header().Set(TrailerEnd, "error: "+safelog.Text(err.Error(), maxReason))
			return
		}
	}
}

func (b *Broker) readChunk(ctx context.Context, server, id string, offset int64, chunk *control.RecordingChunk) error {
	ctx, cancel := context.WithTimeout(ctx, appdCallTimeout)
	defer cancel()
	req := control.RecordingRead{ID: id, Offset: offset, Max: control.MaxRecordingChunk}
	return b.appd(ctx, server, control.MethodRecordingRead, req, chunk)
}

// findRecording asks the server the broker knows session id on, then
// every other server with a link, for the first chunk of its recording.
func (b *Broker) findRecording(ctx context.Context, id string) (string, control.RecordingChunk, error) {
	for _, server := range b.serversFor(id) {
		var chunk control.RecordingChunk
		if err := b.readChunk(ctx, server, id, 0, &chunk); err == nil {
			return server, chunk, nil
		}
	}
	return "", control.RecordingChunk{}, fmt.Errorf("no recording of session %q on any server linked to broker %s",
		safelog.Text(id, 64), b.Name)
}

// serversFor lists the server session id runs on, if known, then every
// other server that has a control link.
func (b *Broker) serversFor(id string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	if s := b.sessions[id]; s != nil {
		out = append(out, s.info.Server)
	}
	for name, st := range b.servers {
		if (st.peer != nil || b.callAppd != nil) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out[min(len(out), 1):])
	return out
}

// minIDPrefix is the shortest prefix of a session id the admin endpoints
// take for the id.
const minIDPrefix = 8

// knownSession finds the session whose id is id, or begins with id when
// id is at least minIDPrefix long and no other session's does.
func (b *Broker) knownSession(id string) (control.SessionInfo, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.sessions[id]; s != nil {
		return s.info, true
	}
	var found *sessionState
	if len(id) < minIDPrefix {
		return control.SessionInfo{}, false
	}
	for full, s := range b.sessions {
		if strings.HasPrefix(full, id) {
			if found != nil {
				return control.SessionInfo{}, false
			}
			found = s
		}
	}
	if found == nil {
		return control.SessionInfo{}, false
	}
	return found.info, true
}

// serveWatch streams a running session's screen, then its live output,
// until the session ends or the admin goes away.
func (b *Broker) serveWatch(w http.ResponseWriter, r *http.Request, a AdminAccess) {
	ctx, who := r.Context(), a.caller(r)
	s, ok := b.knownSession(r.PathValue("id"))
	if !ok {
		b.auditAdmin(r, a, "watch", r.PathValue("id"), "", "outcome", "no such session")
		http.Error(w, fmt.Sprintf("no running session %q known to broker %s (give its id, or the first 8 digits or more of it)",
			safelog.Text(r.PathValue("id"), 64), b.Name), http.StatusNotFound)
		return
	}
	id, server := s.ID, s.Server
	var start control.WatchChunk
	cctx, cancel := context.WithTimeout(ctx, appdCallTimeout)
	err := b.appd(cctx, server, control.MethodWatchStart,
		control.WatchStart{ID: id, By: who, Redraw: r.URL.Query().Get("redraw") == "1"}, &start)
	cancel()
	b.auditAdmin(r, a, "watch", id, s.User, "server", server, "app", s.App, "outcome", errText(err))
	if err != nil {
		code := http.StatusServiceUnavailable
		var re *control.RemoteError
		if errors.As(err, &re) && re.Code == control.CodeNoSession {
			code = http.StatusNotFound
		}
		http.Error(w, safelog.Text(err.Error(), maxReason), code)
		return
	}
	log := b.logger().With(safelog.String("session", id), "server", server, safelog.String("by", who))
	log.Info("session watch started", safelog.String("user", s.User), safelog.String("app", s.App))
	watcher := start.Watcher
	defer func() { b.stopWatch(server, id, watcher) }()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Trailer", TrailerEnd)
	end := b.relayWatch(ctx, w, server, id, who, start, &watcher)
	w.Header().Set(TrailerEnd, end)
	log.Info("session watch ended", "end", end)
	b.Audit.Emit("admin.watch.end", id, s.User, "by", who, "server", server, "end", end)
}

// relayWatch writes the watcher's chunks to w as they come and returns
// how the stream ended. When the session's appd restarts (the watch is
// ended as moved, or the link to appd fails) it watches the session
// again in the next appd (rewatch); *watcher follows.
func (b *Broker) relayWatch(ctx context.Context, w http.ResponseWriter, server, id, who string, chunk control.WatchChunk, watcher *string) string {
	flusher, _ := w.(http.Flusher)
	for {
		if len(chunk.Data) > 0 {
			if _, err := w.Write(chunk.Data); err != nil {
				return "error: admin gone"
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		var err error
		if chunk.Ended && !chunk.Moved {
			return "ended"
		}
		if !chunk.Moved {
			chunk = control.WatchChunk{}
			cctx, cancel := context.WithTimeout(ctx, watchPoll+appdCallTimeout)
			err = b.appd(cctx, server, control.MethodWatchRead,
				control.WatchRead{ID: id, Watcher: *watcher, Wait: int64(watchPoll)}, &chunk)
			cancel()
		}
		if ctx.Err() != nil {
			return "error: admin gone"
		}
		var re *control.RemoteError
		switch {
		case chunk.Moved, err != nil && !errors.As(err, &re):
			if chunk, err = b.rewatch(ctx, server, id, who); err != nil {
				return "error: " + safelog.Text(err.Error(), maxReason)
			}
			*watcher = chunk.Watcher
		case err != nil:
			return "error: " + safelog.Text(err.Error(), maxReason)
		}
	}
}

// rewatchFor bounds how long a watch waits for a restarted appd: the
// keeper holds a session for the next appd at least this long.
const rewatchFor = 30 * time.Second

// rewatch watches session id again on server after its appd restarted,
// retrying while the new appd comes up, without telling the user again.
// An appd answering that the session is gone ends the watch.
func (b *Broker) rewatch(ctx context.Context, server, id, who string) (control.WatchChunk, error) {
	ctx, cancel := context.WithTimeout(ctx, rewatchFor)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		var chunk control.WatchChunk
		cctx, ccancel := context.WithTimeout(ctx, appdCallTimeout)
		err := b.appd(cctx, server, control.MethodWatchStart, control.WatchStart{ID: id, By: who, Again: true}, &chunk)
		ccancel()
		var re *control.RemoteError
		if err == nil || errors.As(err, &re) && re.Code != control.CodeUnavailable { // the old appd, stopping
			return chunk, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return chunk, fmt.Errorf("server %s did not come back: %w", server, err)
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// stopWatch tells appd the watcher is gone; appd also drops a watcher
// nobody reads.
func (b *Broker) stopWatch(server, id, watcher string) {
	ctx, cancel := context.WithTimeout(context.Background(), appdCallTimeout)
	defer cancel()
	if err := b.appd(ctx, server, control.MethodWatchStop, control.WatchRead{ID: id, Watcher: watcher}, nil); err != nil {
		b.logger().Debug("watch stop not delivered", "server", server, slog.String("err", err.Error()))
	}
}
