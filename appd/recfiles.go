package appd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"switchyard/control"
)

// idRE is what a session id (newID), or the prefix of one an admin may
// give (broker status shows 12 digits), looks like: nothing else names a
// file.
var idRE = regexp.MustCompile(`^[0-9a-f]{8,32}$`)

// idLen is the length of a session id.
const idLen = 32

// retentionEvery bounds how often RunRetention looks for old recordings.
const retentionEvery = time.Hour

// SetRecording changes the recording settings (config reload): sessions
// started afterwards use them; running recordings go on as they began.
func (m *Manager) SetRecording(r Recording) {
	m.mu.Lock()
	m.rec = r
	m.mu.Unlock()
}

func (m *Manager) recording() Recording {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rec
}

// startRecording starts the recording of a new PTY session in mode, or
// returns nil when it is not recorded. A recording that cannot start is
// logged; the session runs unrecorded.
func (m *Manager) startRecording(s *session, mode string, pty *control.PtySpec) *recorder {
	cfg := m.recording()
	if mode != RecordOutput && mode != RecordInput || cfg.Dir == "" {
		return nil
	}
	env := map[string]string{"TERM": pty.Term}
	for _, kv := range s.cmd.Env {
		if v, ok := strings.CutPrefix(kv, "SHELL="); ok {
			env["SHELL"] = v
		}
	}
	hdr := castHeader{Width: int(clamp16(pty.Cols)), Height: int(clamp16(pty.Rows)), Env: env,
		Title: fmt.Sprintf("%s of %s on %s", s.info.App, s.info.User, m.Server)}
	r, err := newRecorder(cfg, s.info.ID, s.info.App, mode == RecordInput, hdr, m.logger())
	if err != nil {
		m.logger().Error("session not recorded", "id", s.info.ID, "app", s.info.App, "err", err)
		return nil
	}
	return r
}

// ReadRecording returns up to req.Max bytes (at most
// control.MaxRecordingChunk) of session req.ID's recording from
// req.Offset; req.ID may be the prefix (8 digits or more) of one
// session's id. control.CodeNoSession when this server holds none.
func (m *Manager) ReadRecording(req control.RecordingRead) (control.RecordingChunk, error) {
	f, err := m.openRecording(req.ID)
	if err != nil {
		return control.RecordingChunk{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return control.RecordingChunk{}, fmt.Errorf("recording %s: %w", req.ID, err)
	}
	size := max(min(req.Max, control.MaxRecordingChunk), 1)
	buf := make([]byte, min(int64(size), max(fi.Size()-req.Offset, 0)))
	n, err := f.ReadAt(buf, req.Offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return control.RecordingChunk{}, fmt.Errorf("recording %s: %w", req.ID, err)
	}
	id := filepath.Base(f.Name())[:idLen]
	m.mu.Lock()
	s := m.sessions[id]
	m.mu.Unlock()
	live := s != nil && s.rec != nil
	return control.RecordingChunk{Data: buf[:n], EOF: req.Offset+int64(n) >= fi.Size() && !live, Live: live, ID: id}, nil
}

// openRecording opens session id's recording (id may be a prefix of
// just one), a regular file in the recording directory.
func (m *Manager) openRecording(id string) (*os.File, error) {
	none := control.NewError(control.CodeNoSession, "no recording of that session on this server")
	dir := m.recording().Dir
	if !idRE.MatchString(id) || dir == "" {
		return nil, none
	}
	var matches []string
	names, _ := filepath.Glob(filepath.Join(dir, id+"*.cast"))
	for _, name := range names {
		if base := filepath.Base(name); len(base) > idLen && base[idLen] == '-' && idRE.MatchString(base[:idLen]) {
			matches = append(matches, name)
		}
	}
	if len(matches) != 1 { // none, or a prefix of several
		return nil, none
	}
	f, err := os.OpenFile(matches[0], os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, none
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, none
	}
	return f, nil
}

// PruneRecordings deletes the recordings in the recording directory last
// written more than the retention period before now, except those of
// running sessions, and returns how many it deleted.
func (m *Manager) PruneRecordings(now time.Time) (int, error) {
	cfg := m.recording()
	if cfg.Dir == "" || cfg.Retention <= 0 {
		return 0, nil
	}
	entries, err := os.ReadDir(cfg.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("prune recordings: %w", err)
	}
	deleted := 0
	for _, e := range entries {
		id, _, ok := strings.Cut(e.Name(), "-")
		if !ok || !strings.HasSuffix(e.Name(), ".cast") || !e.Type().IsRegular() || m.running(id) {
			continue
		}
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) <= cfg.Retention {
			continue
		}
		if err := os.Remove(filepath.Join(cfg.Dir, e.Name())); err == nil {
			deleted++
		}
	}
	return deleted, nil
}

func (m *Manager) running(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[id] != nil
}

// RunRetention prunes recordings now and then every hour (more often for
// a retention shorter than four hours) until ctx ends.
func (m *Manager) RunRetention(ctx context.Context) {
	for {
		if n, err := m.PruneRecordings(time.Now()); err != nil {
			m.logger().Warn("old recordings not pruned", "err", err)
		} else if n > 0 {
			m.logger().Info("old recordings deleted", "count", n, "dir", m.recording().Dir)
		}
		every := retentionEvery
		if r := m.recording().Retention; r > 0 {
			every = min(every, max(r/4, time.Second))
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// serveRecording serves the broker's recording and watch calls.
func (m *Manager) serveRecording(ctx context.Context, method string, body json.RawMessage) (any, error) {
	switch method {
	case control.MethodRecordingRead:
		var req control.RecordingRead
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("decode %s: %w", method, err)
		}
		return m.ReadRecording(req)
	case control.MethodWatchStart:
		var req control.WatchStart
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("decode %s: %w", method, err)
		}
		return m.WatchStart(req)
	case control.MethodWatchRead, control.MethodWatchStop:
		var req control.WatchRead
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("decode %s: %w", method, err)
		}
		if method == control.MethodWatchStop {
			m.WatchStop(req)
			return nil, nil
		}
		return m.WatchRead(ctx, req)
	}
	return nil, control.NewError(control.CodeInternal, "appd does not serve "+method)
}
