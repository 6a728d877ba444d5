package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"switchyard/control"
)

// hostile is text a client or a report might carry: a terminal title
// change, a screen clear, a C1 CSI, a bidi override, and 100 KB more.
var hostile = "\x1b]0;pwned\x07\x1b[2J\u009b31m\u202e" + strings.Repeat("A", 100_000)

// rawControl returns the first control byte or rune in s other than
// newline, or -1.
func rawControl(s string) rune {
	for _, r := range s {
		if r != '\n' && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u202e') {
			return r
		}
	}
	return -1
}

func TestWriteStatusEscapesEveryField(t *testing.T) {
	st := Status{
		Gateways: []GatewayStatus{{Name: hostile, Redirect: hostile, Reach: []string{hostile, "s1"}, ConfigHash: hostile,
			RestartNeeded: []string{hostile}}},
		Servers: []ServerStatus{{Name: hostile, Addr: hostile, ConfigHash: hostile, RestartNeeded: []string{hostile}}},
		Sessions: []control.SessionInfo{{ID: hostile, User: hostile, App: hostile, Server: hostile, Gateway: hostile,
			State: hostile, ClientAddr: hostile, Route: hostile}},
		ConfigHash: hostile, RestartNeeded: []string{hostile}, Problems: []string{hostile},
		Reservations: []ReservationStatus{{SessionID: hostile, User: hostile, App: hostile, Server: hostile,
			Gateway: hostile, From: hostile}},
		Decisions: []Decision{{User: hostile, App: hostile, Route: hostile, Target: hostile, Reason: hostile}},
	}
	var out bytes.Buffer
	if err := WriteStatus(&out, st); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if r := rawControl(text); r >= 0 {
		t.Fatalf("status text carries a raw control character %U", r)
	}
	for _, line := range strings.Split(text, "\n") {
		if len(line) > 8<<10 {
			t.Fatalf("status line of %d bytes", len(line))
		}
	}
	if !strings.Contains(text, `\x1b]0;pwned\x07\x1b[2J`) {
		t.Fatalf("the escaped name is not shown:\n%.300s", text)
	}
}

// TestWriteStatusUnlimited: a server without a session limit shows its
// sessions over "unlimited", a gateway without a capacity "unlimited";
// JSON keeps 0 for both.
func TestWriteStatusUnlimited(t *testing.T) {
	st := Status{
		Gateways: []GatewayStatus{{Name: "gw0", Sessions: 4}, {Name: "gw1", Sessions: 4, Capacity: 1000}},
		Servers:  []ServerStatus{{Name: "s0", Sessions: 3}, {Name: "s1", Sessions: 2, Max: 10}},
	}
	var out bytes.Buffer
	if err := WriteStatus(&out, st); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"gw0": {"4", "unlimited"}, "gw1": {"4", "1000"}, "s0": {"3/unlimited"}, "s1": {"2/10"}}
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || want[f[0]] == nil {
			continue
		}
		if !containsRun(f, want[f[0]]) {
			t.Errorf("%s: line %q, want %q in it", f[0], line, want[f[0]])
		}
		delete(want, f[0])
	}
	if len(want) > 0 {
		t.Errorf("no lines for %v in:\n%s", want, out.String())
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Gateways, Servers []map[string]any }
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if m, ok := v.Servers[0]["max_sessions"]; m != 0.0 || !ok {
		t.Errorf("JSON max_sessions of s0: %v, want 0", m)
	}
	if c, ok := v.Gateways[0]["capacity"]; c != 0.0 || !ok {
		t.Errorf("JSON capacity of gw0: %v, want 0", c)
	}
}

// containsRun reports whether want appears in f as consecutive fields.
func containsRun(f, want []string) bool {
	for i := 0; i+len(want) <= len(f); i++ {
		if slices.Equal(f[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

func TestPlaceCapsAndEscapesAnUnknownApp(t *testing.T) {
	b := placeBroker(t)
	var logs bytes.Buffer
	b.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	_, err := b.Place(context.Background(), control.PlaceRequest{User: "alice", App: hostile, ClientAddr: "10.1.0.1:5000", Gateway: "gw1"})
	if control.ErrorCode(err) != control.CodeUnknownApp {
		t.Fatalf("place of a hostile app name: %v", err)
	}
	if len(err.Error()) > 512 || rawControl(err.Error()) >= 0 {
		t.Fatalf("refusal of %d bytes: %.200q", len(err.Error()), err.Error())
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if len(line) > 1024 || strings.ContainsRune(line, 0x1b) {
			t.Fatalf("log line of %d bytes: %.200q", len(line), line)
		}
	}
	d := b.Status().Decisions[0]
	if len(d.App) > 256 || len(d.Reason) > 512 {
		t.Fatalf("the status view keeps %d bytes of app name, %d of reason", len(d.App), len(d.Reason))
	}
}

// Status names every node that is down, runs another config than the
// broker, or needs a restart, and only those.
func TestStatusProblems(t *testing.T) {
	st := Status{ConfigHash: "aaaaaaaaaaaa",
		Gateways: []GatewayStatus{{Name: "gw1", Healthy: true, ConfigHash: "aaaaaaaaaaaa"},
			{Name: "gw2", Healthy: true, ConfigHash: "bbbbbbbbbbbb", RestartNeeded: []string{"gateway.gw2.listen"}},
			{Name: "gw3", Healthy: false}},
		Servers: []ServerStatus{{Name: "s1", Healthy: true, ConfigHash: "aaaaaaaaaaaa", Draining: true},
			{Name: "s2", Healthy: true}}, // reported no hash (yet): not counted
	}
	got := problems(&st)
	want := []string{"gateway gw2 runs config bbbbbbbbbbbb, the broker aaaaaaaaaaaa",
		"gateway gw2: restart needed: gateway.gw2.listen", "gateway gw3 down"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("problems\n%q\nwant\n%q", got, want)
	}
	st.Gateways, st.Servers = st.Gateways[:1], nil
	if got := problems(&st); len(got) != 0 {
		t.Fatalf("a whole cluster has problems %q", got)
	}
}
