package brokerstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/control"
	"switchyard/internal/testutil"
)

func openTemp(t *testing.T) (*File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", FileName)
	f, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, path
}

// onDisk reads the file as another process would after a crash.
func onDisk(t *testing.T, path string) fileData {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d fileData
	if err := decodeData(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFileCreatesItself(t *testing.T) {
	_, path := openTemp(t)
	d := onDisk(t, path)
	if d.Format != FormatVersion || len(d.Drains)+len(d.Reservations)+len(d.Sessions) != 0 {
		t.Fatalf("new file: %+v", d)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi.Mode(), err)
	}
}

// TestFileDurableWrites: a drain or a reservation is on disk when its
// call returns, without Close.
func TestFileDurableWrites(t *testing.T) {
	ctx := context.Background()
	f, path := openTemp(t)
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	if err := f.PutDrain(ctx, Drain{Server: "s1", By: "alice", At: at}); err != nil {
		t.Fatal(err)
	}
	r := Reservation{ID: "sess1", User: "bob", App: "htop", Args: []string{"-d"}, Pty: true, Server: "s1",
		Gateway: "gw2", From: "gw1", SessionID: "sess1", PID: 42, Expires: at.Add(30 * time.Second)}
	if err := f.PutReservation(ctx, r); err != nil {
		t.Fatal(err)
	}
	d := onDisk(t, path)
	if got := d.Drains["s1"]; got.By != "alice" || !got.At.Equal(at) {
		t.Fatalf("drain on disk: %+v", got)
	}
	if got := d.Reservations["sess1"]; got.PID != 42 || got.Args[0] != "-d" || !got.Expires.Equal(r.Expires) {
		t.Fatalf("reservation on disk: %+v", got)
	}
	lk := Lock{User: "mallory", By: "root", At: at, Until: at.Add(time.Hour), Reason: "audit"}
	if err := f.PutLock(ctx, lk); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, path).Locks["mallory"]; got != lk {
		t.Fatalf("lock on disk: %+v", got)
	}
	if err := f.DeleteDrain(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteLock(ctx, "mallory"); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteReservation(ctx, "sess1"); err != nil {
		t.Fatal(err)
	}
	if d := onDisk(t, path); len(d.Drains) != 0 || len(d.Reservations) != 0 || len(d.Locks) != 0 {
		t.Fatalf("after delete: %+v", d)
	}
}

// TestFileSessionsBatched: session changes reach the disk by themselves
// within the flush delay, and at once on Close.
func TestFileSessionsBatched(t *testing.T) {
	ctx := context.Background()
	f, path := openTemp(t)
	f.delay = time.Hour // only Close may write them
	for i := range 100 {
		if err := f.PutSession(ctx, control.SessionInfo{ID: fmt.Sprint("s", i), User: "u", Server: "s1", PID: i}); err != nil {
			t.Fatal(err)
		}
	}
	f.DeleteSession(ctx, "s0")
	if d := onDisk(t, path); len(d.Sessions) != 0 {
		t.Fatalf("sessions written before the delay: %d", len(d.Sessions))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if d := onDisk(t, path); len(d.Sessions) != 99 || d.Sessions["s7"].PID != 7 {
		t.Fatalf("after close: %d sessions", len(d.Sessions))
	}

	g, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.delay = 10 * time.Millisecond
	g.PutSession(ctx, control.SessionInfo{ID: "late", Via: &control.Via{Gateway: "gw"}, Addr: "x"})
	var late control.SessionInfo
	testutil.Eventually(t, 10*time.Second, "the batched session on disk", func() bool {
		s, ok := onDisk(t, path).Sessions["late"]
		late = s
		return ok
	})
	if late.Via != nil || late.Addr != "" {
		t.Fatalf("a session list's fields were kept: %+v", late)
	}
}

// TestFileReopen: what was written is what a new File loads.
func TestFileReopen(t *testing.T) {
	ctx := context.Background()
	f, path := openTemp(t)
	f.PutDrain(ctx, Drain{Server: "s2", By: "config", At: time.Unix(100, 0)})
	f.PutReservation(ctx, Reservation{ID: "r1", User: "bob", App: "batch", Expires: time.Unix(200, 0)})
	f.PutSession(ctx, control.SessionInfo{ID: "x", User: "bob", App: "htop", Server: "s2", PID: 9, State: control.StateDetached})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Load(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("load after close: %v", err)
	}
	if err := f.PutDrain(ctx, Drain{Server: "s3"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close: %v", err)
	}
	g, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	st, err := g.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Drains["s2"].By != "config" || st.Reservations["r1"].App != "batch" || st.Sessions["x"].PID != 9 ||
		st.Sessions["x"].State != control.StateDetached || len(st.Drains) != 1 {
		t.Fatalf("reloaded: %+v", st)
	}
	st.Drains["s9"] = Drain{} // a copy: the store is unchanged
	if st2, _ := g.Load(ctx); len(st2.Drains) != 1 {
		t.Fatal("Load handed out the store's own map")
	}
}

// TestFileRefused: a file of another version, or not a state file, is
// refused with its name and left as it was.
func TestFileRefused(t *testing.T) {
	for name, content := range map[string]string{
		"other version": `{"format": 2, "drains": {}}`,
		"no version":    `{"drains": {}}`,
		"corrupt":       `{"format": 1, "drains": {"s1": `,
		"not json":      "drain s1\n",
		"wrong types":   `{"format": 1, "drains": ["s1"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := OpenFile(path, nil)
			if err == nil {
				f.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error does not name the file on one line: %v", err)
			}
			if name == "other version" && !strings.Contains(err.Error(), "format version 2") {
				t.Fatalf("error does not name the version: %v", err)
			}
			if raw, _ := os.ReadFile(path); string(raw) != content {
				t.Fatalf("file changed to %q", raw)
			}
		})
	}
}

// TestFileConcurrent: many goroutines writing every kind at once (run
// with -race); the file on disk is always whole and ends with the last
// state.
func TestFileConcurrent(t *testing.T) {
	ctx := context.Background()
	f, path := openTemp(t)
	f.delay = time.Millisecond
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				id := fmt.Sprintf("g%d-%d", g, i)
				f.PutSession(ctx, control.SessionInfo{ID: id, PID: i})
				if i%4 == 0 {
					if err := f.PutReservation(ctx, Reservation{ID: id}); err != nil {
						t.Error(err)
					}
					f.PutDrain(ctx, Drain{Server: fmt.Sprint("s", g), By: id})
				}
				if i%2 == 1 {
					f.DeleteSession(ctx, id)
				}
				if _, err := f.Load(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	stop := make(chan struct{})
	readers := sync.WaitGroup{}
	readers.Add(1)
	go func() { // the file is always whole: every read parses
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			raw, err := os.ReadFile(path)
			var d fileData
			if err == nil {
				err = json.Unmarshal(raw, &d)
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	d := onDisk(t, path)
	if len(d.Sessions) != 8*20 || len(d.Reservations) != 8*10 || len(d.Drains) != 8 {
		t.Fatalf("final: %d sessions, %d reservations, %d drains", len(d.Sessions), len(d.Reservations), len(d.Drains))
	}
	if d.Drains["s3"].By != "g3-36" {
		t.Fatalf("drain of s3 by %q, want the last write", d.Drains["s3"].By)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestFileOneBrokerAtATime: a second File on the same path is refused
// while the first is open, and opens once it is closed.
func TestFileOneBrokerAtATime(t *testing.T) {
	f, path := openTemp(t)
	if g, err := OpenFile(path, nil); err == nil || !strings.Contains(err.Error(), "in use by another broker") {
		if g != nil {
			g.Close()
		}
		t.Fatalf("second open: %v", err)
	}
	f.Close()
	g, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
}

// TestFileUnwritableDir: a state_dir the broker cannot write fails the
// open, not the first drain.
func TestFileUnwritableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes anywhere")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if f, err := OpenFile(filepath.Join(dir, FileName), nil); err == nil {
		f.Close()
		t.Fatal("opened in a read-only directory")
	}
}
