package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// screenApp draws with cursor addressing and colour, without the
// terminal's echo: what the user sees is exactly what the app wrote, so
// the recording holds the whole live screen. "quit" ends it silently.
const screenApp = `
[app.screen]
argv = ["sh", "-c", "stty -echo; printf '\\033[2J\\033[H\\033[1mrecorded screen\\033[0m\\r\\n'; i=0; while read l; do [ \"$l\" = quit ] && exit 0; i=$((i+1)); printf '\\033[%d;%dH%s \\033[32mgot:%s\\033[0m' $((i+2)) $((i*3)) $i \"$l\"; done"]
user = "nobody"
`

// recordingCluster is a cluster whose apps record output and input.
func recordingCluster(t *testing.T) *Cluster {
	return NewCluster(t, ClusterOptions{Servers: []string{"s1"}, ExtraApps: []string{"screen"},
		Extra: screenApp + "\n[recording]\ndefault = \"input\"\n"})
}

// validCast checks data is an asciicast v2 recording of a width x height
// terminal and returns its events.
func validCast(t *testing.T, data []byte, width, height int) [][3]any {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatal("empty recording")
	}
	var hdr struct {
		Version, Width, Height int
		Timestamp              int64
		Env                    map[string]string
	}
	if err := json.Unmarshal(sc.Bytes(), &hdr); err != nil || hdr.Version != 2 || hdr.Width != width ||
		hdr.Height != height || hdr.Timestamp == 0 || hdr.Env["TERM"] == "" {
		t.Fatalf("header %s (%v): want asciicast v2, %dx%d, a timestamp and TERM", sc.Bytes(), err, width, height)
	}
	var events [][3]any
	last := 0.0
	for sc.Scan() {
		var ev [3]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %s: %v", sc.Bytes(), err)
		}
		at, ok := ev[0].(float64)
		code, _ := ev[1].(string)
		_, isText := ev[2].(string)
		if !ok || at < last || len(code) != 1 || !strings.Contains("oirm", code) || !isText {
			t.Fatalf("event %s is not [time, code, data] in time order", sc.Bytes())
		}
		last = at
		events = append(events, ev)
	}
	return events
}

// codeText joins the data of the events with code.
func codeText(events [][3]any, code string) string {
	var b strings.Builder
	for _, ev := range events {
		if ev[1] == code {
			b.WriteString(ev[2].(string))
		}
	}
	return b.String()
}

func TestRecordingReplaysToTheLiveScreen(t *testing.T) {
	c := recordingCluster(t)
	bin := buildBinaries(t)
	o := GatewayOpenSSH(t, c, "gw1")
	alice := o.Key(t, "alice", c.Alice)
	x := NewTmux(t)
	x.Start("live", 80, 24, append([]string{"ssh"}, o.Args(alice, "-tt", o.At("screen"))...))
	x.WaitText("live", "recorded screen")
	for _, line := range []string{"first", "second", "third"} {
		x.Cmd("send-keys", "-t", "live", line, "Enter")
		x.WaitText("live", "got:"+line)
	}
	live := x.Screen("live")
	x.Cmd("send-keys", "-t", "live", "quit", "Enter")
	if status := x.WaitExit("live"); status != 0 {
		t.Fatalf("ssh exited %d, want 0", status)
	}

	var file string
	c.Eventually("the finished recording", func() bool {
		names, _ := filepath.Glob(filepath.Join(c.Dir, "recordings", "*-screen.cast"))
		if len(names) != 1 {
			return false
		}
		file = names[0]
		data, _ := os.ReadFile(file)
		return bytes.Contains(data, []byte(`"m", "exit: exit 0"`))
	})
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	events := validCast(t, data, 80, 24)
	if in := codeText(events, "i"); in != "first\rsecond\rthird\rquit\r" {
		t.Fatalf("input events %q, want the keys typed", in)
	}
	id := strings.TrimSuffix(filepath.Base(file), "-screen.cast")
	if out, err := c.broker("replay", "-cast", id); err != nil || out != string(data) {
		t.Fatalf("broker replay -cast: %v; got %d bytes, the file has %d", err, len(out), len(data))
	}

	players := map[string][]string{
		"asciinema": {"asciinema", "play", "-i", "0.2", file},
		"end":       {filepath.Join(bin, "broker"), "replay", "-end", "-config", c.Config, id[:12]}, // as status shows it
		"speed":     {filepath.Join(bin, "broker"), "replay", "-speed", "20", "-config", c.Config, id},
	}
	if _, err := exec.LookPath("asciinema"); err != nil {
		t.Log("asciinema is not installed (CI installs it): not played with it")
		delete(players, "asciinema")
	}
	for name, argv := range players {
		// exec cat keeps the pane alive, its screen untouched, once the
		// player is done.
		x.Start(name, 80, 24, []string{"sh", "-c", shellQuote(argv) + "; exec cat"})
	}
	for name := range players {
		x.WaitScreen(name, name+" to replay the live screen", func(s string) bool { return s == live })
	}
	// Every replay is in the broker's audit trail with who asked, under
	// the session's whole id also when a prefix of it was given.
	if ev := findEvent(c.auditEvents("-session", id), "admin.replay", "broker"); ev == nil || ev.Fields["by"] == "" {
		t.Fatalf("no admin.replay event with the caller for %s: %+v", id, ev)
	}
	replays := 0
	for _, ev := range c.auditEvents("-session", id) {
		if ev.Event == "admin.replay" {
			replays++
		}
	}
	if replays != 3 {
		t.Fatalf("%d admin.replay events under session %s, want 3 (-cast, -end by a prefix, -speed)", replays, id)
	}
}

// watchedSession opens app for alice with the stock client in tmux
// window "user", waits for ready on it, and returns the tmux, the
// session's id and the command line of a broker watch of it (the id as
// given).
func watchedSession(t *testing.T, c *Cluster, app, ready string, id func(string) string) (*Tmux, string, []string) {
	t.Helper()
	bin := buildBinaries(t)
	o := GatewayOpenSSH(t, c, "gw1")
	alice := o.Key(t, "alice", c.Alice)
	x := NewTmux(t)
	x.Start("user", 80, 24, append([]string{"ssh"}, o.Args(alice, "-tt", o.At(app))...))
	x.WaitText("user", ready)
	var full string
	c.Eventually("the session in the status view", func() bool {
		for _, s := range c.Status().Sessions {
			full = s.ID
		}
		return full != ""
	})
	return x, full, []string{filepath.Join(bin, "broker"), "watch", "-config", c.Config, id(full)}
}

func TestWatchShowsWhatTheUserTypes(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	x, id, watch := watchedSession(t, c, "pid", "24 80", func(id string) string { return id[:12] }) // as status shows it
	x.Cmd("send-keys", "-t", "user", "earlier", "Enter")
	x.WaitText("user", "got:earlier")

	x.Start("watch", 80, 24, watch)
	x.WaitText("watch", "got:earlier") // the current screen first
	x.WaitText("user", "switchyard: an administrator is watching this session")
	x.Cmd("send-keys", "-t", "user", "-l", "typing")
	x.WaitText("watch", "typing") // as it is typed, before Enter
	x.Cmd("send-keys", "-t", "user", "Enter")
	x.WaitText("watch", "got:typing")
	x.Cmd("send-keys", "-t", "watch", "intruder", "Enter")
	x.Cmd("send-keys", "-t", "user", "after", "Enter")
	x.WaitText("watch", "got:after")
	if s := x.Screen("user"); strings.Contains(s, "intruder") {
		t.Fatalf("what the watcher typed reached the session:\n%s", s)
	}
	x.Cmd("send-keys", "-t", "watch", "q")
	x.WaitText("watch", "switchyard: stopped watching")
	if status := x.WaitExit("watch"); status != 0 {
		t.Fatalf("broker watch exited %d after q, want 0", status)
	}

	x.Start("watch2", 80, 24, watch)
	x.WaitText("watch2", "got:after")
	x.Cmd("send-keys", "-t", "user", "C-d") // read fails: the app exits
	x.WaitText("watch2", "switchyard: the session has ended")
	if status := x.WaitExit("watch2"); status != 0 {
		t.Fatalf("broker watch exited %d at the session's end, want 0", status)
	}
	// Both watches are in the broker's audit trail, start and end, with
	// who watched.
	evs := c.auditEvents("-session", id)
	var starts, ends int
	for _, ev := range evs {
		switch {
		case ev.Node != "broker" || ev.Fields["by"] == "":
		case ev.Event == "admin.watch":
			starts++
		case ev.Event == "admin.watch.end":
			ends++
		}
	}
	if starts != 2 || ends != 2 {
		t.Fatalf("%d admin.watch and %d admin.watch.end events with the caller, want 2 and 2: %s", starts, ends, trail(evs))
	}
}

// perlFullScreen is a full-screen app: on the alternate screen it paints
// twenty numbered rows, then overwrites one counter far past the 8 KiB a
// watcher's first screen is taken from, and paints everything again on
// each window change (as curses apps do).
const perlFullScreen = `[app.fullscreen]
argv = ["perl", "-e", "$| = 1; my $p = 0; $SIG{WINCH} = sub { $p = 1 }; sub paint { print \"\\e[H\\e[2J\"; printf \"ROW %02d\\r\\n\", $_ for 1 .. 20; print \"\\e[22;1Hcount done\" } print \"\\e[?1049h\"; paint(); print \"\\e[22;1Hcount $_\" for 1 .. 3000; print \"\\e[22;1Hcount done\"; while (1) { select(undef, undef, undef, 0.05); if ($p) { $p = 0; paint() } }"]
user = "nobody"
cpu = 0.001
`

// A watch of a full-screen app shows its whole screen, though the app's
// latest output holds only changes to one line: the app is made to
// redraw for the watcher.
func TestWatchShowsAFullScreenApp(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, Extra: perlFullScreen, ExtraApps: []string{"fullscreen"}})
	x, _, watch := watchedSession(t, c, "fullscreen", "count done", func(id string) string { return id })
	x.Start("watch", 80, 24, watch)
	x.WaitText("watch", "ROW 01")
	x.WaitText("watch", "ROW 20")
	x.WaitText("watch", "count done")
	if s := x.Screen("user"); !strings.Contains(s, "ROW 01") || !strings.Contains(s, "count done") {
		t.Fatalf("the user's screen after the watcher's redraw:\n%s", s)
	}
}
