package broker

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"switchyard/control"
)

// fakeAppds answers the recording and watch calls: server "s3" holds
// the recording of session "gone" (in chunks of 4 bytes), and session
// "a2" (on s2) shows "screen", then "live", then ends.
type fakeAppds struct {
	mu    sync.Mutex
	calls []string // server method
}

func (f *fakeAppds) call(_ context.Context, server, method string, req, resp any) error {
	f.mu.Lock()
	f.calls = append(f.calls, server+" "+method)
	f.mu.Unlock()
	switch method {
	case control.MethodRecordingRead:
		r := req.(control.RecordingRead)
		const file = "{\"version\": 2}\n[0.1, \"o\", \"x\"]\n"
		if server != "s3" || r.ID != "gone" {
			return control.NewError(control.CodeNoSession, "no recording")
		}
		end := min(int(r.Offset)+4, len(file))
		*resp.(*control.RecordingChunk) = control.RecordingChunk{Data: []byte(file[r.Offset:end]), EOF: end == len(file)}
	case control.MethodWatchStart:
		if server != "s2" || req.(control.WatchStart).ID != "a2" {
			return control.NewError(control.CodeNoSession, "no such session")
		}
		*resp.(*control.WatchChunk) = control.WatchChunk{Watcher: "w1", Data: []byte("screen")}
	case control.MethodWatchRead:
		f.mu.Lock()
		n := len(f.calls)
		f.mu.Unlock()
		c := resp.(*control.WatchChunk)
		if n < 4 {
			c.Data = []byte("live")
		} else {
			c.Ended = true
		}
	}
	return nil
}

func getAdmin(t *testing.T, b *Broker, path string) (int, string, http.Header) {
	t.Helper()
	srv := httptest.NewServer(b.AdminHandler(AdminAccess{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Trailer
}

func TestReplayFindsTheServerHoldingTheRecording(t *testing.T) {
	b := testBroker(t)
	f := &fakeAppds{}
	b.callAppd = f.call
	code, body, trailer := getAdmin(t, b, "/recording/gone")
	if code != 200 || body != "{\"version\": 2}\n[0.1, \"o\", \"x\"]\n" || trailer.Get(TrailerEnd) != "ended" {
		t.Fatalf("GET /recording/gone: %d %q trailer %v", code, body, trailer)
	}
	if code, body, _ := getAdmin(t, b, "/recording/nothing"); code != 404 {
		t.Fatalf("GET /recording/nothing: %d %q, want 404", code, body)
	}
}

func TestWatchStreamsScreenThenLiveUntilTheEnd(t *testing.T) {
	b := testBroker(t)
	f := &fakeAppds{}
	b.callAppd = f.call
	code, body, trailer := getAdmin(t, b, "/watch/a2")
	if code != 200 || body != "screenlivelive" || trailer.Get(TrailerEnd) != "ended" {
		t.Fatalf("GET /watch/a2: %d %q trailer %v", code, body, trailer)
	}
	f.mu.Lock()
	last := f.calls[len(f.calls)-1]
	f.mu.Unlock()
	if last != "s2 "+control.MethodWatchStop {
		t.Fatalf("last call %q, want the watcher stopped on s2", last)
	}
	if code, _, _ := getAdmin(t, b, "/watch/unknown"); code != 404 {
		t.Fatalf("GET /watch/unknown: %d, want 404", code)
	}
}

func TestKnownSessionTakesAUniquePrefix(t *testing.T) {
	b := testBroker(t)
	b.serverReport("s3", control.ServerReport{Sessions: []control.SessionInfo{
		{ID: "0123456789abcdef0123456789abcdef", User: "alice", App: "top"},
		{ID: "0123456799abcdef0123456789abcdef", User: "bob", App: "top"},
	}})
	for _, tc := range []struct {
		id   string
		want string // "" for none
	}{
		{"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"},
		{"012345678", "0123456789abcdef0123456789abcdef"},
		{"0123456799ab", "0123456799abcdef0123456789abcdef"},
		{"01234567", ""}, // both
		{"0123456", ""},  // too short
		{"a2", "a2"},     // exact
		{"ffffffff", ""},
	} {
		s, ok := b.knownSession(tc.id)
		if ok != (tc.want != "") || s.ID != tc.want {
			t.Errorf("knownSession(%q) = %q, %v; want %q", tc.id, s.ID, ok, tc.want)
		}
	}
}
