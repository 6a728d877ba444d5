package broker

import (
	"bytes"
	"context"
	"log/slog"
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
