package tui

import (
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// testNow is the fixed clock of every test.
var testNow = time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC)

// testItems returns two sessions and seven apps, one of them unavailable
// and one with a description too long for 80 columns.
func testItems() Items {
	ago := func(d time.Duration) time.Time { return testNow.Add(-d) }
	return Items{
		Sessions: []Session{
			{ID: "s-7f3a", App: "htop", Server: "app-03.eu-west", Started: ago(2*time.Hour + 13*time.Minute), Detached: ago(4 * time.Minute)},
			{ID: "s-91c2", App: "reports", Server: "app-01.eu-west", Started: ago(26 * time.Hour), Detached: ago(3 * time.Hour)},
		},
		Apps: []App{
			{Name: "htop", Description: "Interactive process viewer", Available: false, Hint: "unavailable"},
			{Name: "jupyter", Description: "JupyterLab console edition, with a description far too long to fit in eighty columns", Available: true, Hint: "3 servers, low load"},
			{Name: "kibana-cli", Description: "Query the log store", Available: true, Hint: "1 server, busy"},
			{Name: "mc", Description: "Midnight Commander file manager", Available: true, Hint: "5 servers, low load"},
			{Name: "qemu-console", Description: "Serial console of a test VM", Available: true, Hint: "2 servers"},
			{Name: "reports", Description: "Nightly CSV reports", Available: true, Hint: "4 servers, idle"},
			{Name: "vim", Description: "Vi IMproved, a programmer's text editor", Available: true, Hint: "6 servers, low load"},
		},
	}
}

// newTestModel returns a picker at 80x24 for term over testItems.
func newTestModel(term string) model {
	return newModel(testItems(), newStyles(io.Discard, term), func() time.Time { return testNow }, "alice", 80, 24)
}

// press applies keys to m and returns the new model and the last command.
func press(t *testing.T, m model, keys ...tea.KeyMsg) (model, tea.Cmd) {
	t.Helper()
	var cmd tea.Cmd
	for _, k := range keys {
		var next tea.Model
		next, cmd = m.Update(k)
		m = next.(model)
	}
	return m, cmd
}

func runes(s string) tea.KeyMsg    { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }
func key(t tea.KeyType) tea.KeyMsg { return tea.KeyMsg{Type: t} }

// names lists the names of m's entries.
func names(m model) string {
	var s []string
	for _, e := range m.entries {
		s = append(s, e.name())
	}
	return strings.Join(s, ",")
}

// isQuit reports whether cmd is tea.Quit.
func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func TestFilterNarrows(t *testing.T) {
	tests := []struct {
		typed, want string
	}{
		{"", "htop,reports,htop,jupyter,kibana-cli,mc,qemu-console,reports,vim"},
		{"rep", "reports,reports"},          // session app and app name
		{"MIDNIGHT", "mc"},                  // description, case-insensitive
		{"app-01", "reports"},               // session server
		{"console", "jupyter,qemu-console"}, // name or description
		{"zzz", ""},                         // nothing
		{"viewer", "htop"},                  // the unavailable app is listed
		{"Vi IM", "vim"},                    // spaces are part of the filter
		{" vim", "vim"},                     // a leading space does not start one
		{"serial console", "qemu-console"},  // substring over the description
		{"text editor", "vim"},              // ditto
	}
	for _, tt := range tests {
		m, _ := press(t, newTestModel("vt100"), runes(tt.typed))
		if got := names(m); got != tt.want {
			t.Errorf("filter %q: entries %q, want %q", tt.typed, got, tt.want)
		}
	}
}

func TestBackspaceAndClear(t *testing.T) {
	m, _ := press(t, newTestModel("vt100"), runes("repx"))
	if names(m) != "" {
		t.Fatalf("repx: %q", names(m))
	}
	m, _ = press(t, m, key(tea.KeyBackspace))
	if m.filter != "rep" || names(m) != "reports,reports" {
		t.Fatalf("after backspace: filter %q entries %q", m.filter, names(m))
	}
	m, _ = press(t, m, key(tea.KeyCtrlU))
	if m.filter != "" || m.filtering() || len(m.entries) != 9 {
		t.Fatalf("after ctrl+u: filter %q filtering %v entries %d", m.filter, m.filtering(), len(m.entries))
	}
	// Backspacing the last character returns j, k and q to their commands.
	m, _ = press(t, m, runes("x"), key(tea.KeyBackspace), runes("j"))
	if m.filter != "" || m.cursor != 1 {
		t.Fatalf("x, backspace, j: filter %q cursor %d", m.filter, m.cursor)
	}
}

// TestLettersJKQ documents the filter keys: j, k and q are commands while
// the filter is empty, letters once filtering, and "/" starts a filter
// that may begin with them.
func TestLettersJKQ(t *testing.T) {
	m, _ := press(t, newTestModel("vt100"), runes("j"), runes("j"), runes("k"))
	if m.cursor != 1 || m.filter != "" {
		t.Fatalf("j j k: cursor %d filter %q", m.cursor, m.filter)
	}
	m, cmd := press(t, newTestModel("vt100"), runes("xq"))
	if m.done || isQuit(cmd) || m.filter != "xq" {
		t.Fatalf("xq: done %v filter %q", m.done, m.filter)
	}
	m, cmd = press(t, newTestModel("vt100"), runes("/"), runes("q"), runes("e"))
	if m.done || isQuit(cmd) || m.filter != "qe" || names(m) != "qemu-console" {
		t.Fatalf("/qe: done %v filter %q entries %q", m.done, m.filter, names(m))
	}
	// Keys typed quickly arrive as one message and act one at a time:
	// j moves, then "upyter" is a filter.
	m, _ = press(t, newTestModel("vt100"), runes("jupyter"))
	if m.filter != "upyter" || names(m) != "jupyter" {
		t.Fatalf("jupyter: filter %q entries %q", m.filter, names(m))
	}
	// Pasted text is always literal.
	m, _ = press(t, newTestModel("vt100"), tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("qemu\n"), Paste: true})
	if m.filter != "qemu" || m.done {
		t.Fatalf("paste: filter %q done %v", m.filter, m.done)
	}
	// Backspace on an empty "/" filter leaves filtering mode.
	m, _ = press(t, newTestModel("vt100"), runes("/"), key(tea.KeyBackspace), runes("j"))
	if m.filtering() || m.cursor != 1 {
		t.Fatalf("/ backspace j: filtering %v cursor %d", m.filtering(), m.cursor)
	}
}

// TestNavigationClamps documents that movement stops at both ends rather
// than wrapping.
func TestNavigationClamps(t *testing.T) {
	m := newTestModel("vt100")
	if m.cursor != 0 {
		t.Fatalf("initial cursor %d", m.cursor)
	}
	m, _ = press(t, m, key(tea.KeyUp), runes("k"), key(tea.KeyCtrlP), key(tea.KeyPgUp))
	if m.cursor != 0 {
		t.Fatalf("up at the top: cursor %d, want 0 (clamp)", m.cursor)
	}
	m, _ = press(t, m, key(tea.KeyDown), runes("j"), key(tea.KeyCtrlN))
	if m.cursor != 3 {
		t.Fatalf("three downs: cursor %d", m.cursor)
	}
	for range 20 {
		m, _ = press(t, m, key(tea.KeyDown))
	}
	if m.cursor != len(m.entries)-1 {
		t.Fatalf("down at the bottom: cursor %d, want %d (clamp)", m.cursor, len(m.entries)-1)
	}
	m, _ = press(t, m, key(tea.KeyHome))
	if m.cursor != 0 {
		t.Fatalf("home: cursor %d", m.cursor)
	}
	m, _ = press(t, m, key(tea.KeyEnd))
	if m.cursor != len(m.entries)-1 {
		t.Fatalf("end: cursor %d", m.cursor)
	}
}

func TestEnterOnSessionReturnsID(t *testing.T) {
	m, cmd := press(t, newTestModel("vt100"), key(tea.KeyDown), key(tea.KeyEnter))
	if !m.done || !isQuit(cmd) || m.choice != (Choice{SessionID: "s-91c2"}) {
		t.Fatalf("done %v quit %v choice %+v", m.done, isQuit(cmd), m.choice)
	}
}

func TestEnterOnAppReturnsApp(t *testing.T) {
	m, cmd := press(t, newTestModel("vt100"), runes("vim"), key(tea.KeyEnter))
	if !m.done || !isQuit(cmd) || m.choice != (Choice{App: "vim"}) {
		t.Fatalf("done %v quit %v choice %+v", m.done, isQuit(cmd), m.choice)
	}
	// After filtering, the cursor rests on the first entry that can be
	// chosen.
	m, _ = press(t, newTestModel("vt100"), runes("mc"), key(tea.KeyEnter))
	if m.choice != (Choice{App: "mc"}) {
		t.Fatalf("mc: choice %+v", m.choice)
	}
}

func TestUnavailableAppNotChosen(t *testing.T) {
	// "htop" lists the htop session, then the unavailable htop app.
	m, _ := press(t, newTestModel("vt100"), runes("htop"), key(tea.KeyDown))
	if m.cursor != 1 || m.entries[1].app == nil {
		t.Fatalf("cursor %d on %+v", m.cursor, m.entries[m.cursor])
	}
	m, cmd := press(t, m, key(tea.KeyEnter))
	if m.done || cmd != nil || m.choice != (Choice{}) {
		t.Fatalf("enter on unavailable: done %v cmd %v choice %+v", m.done, cmd != nil, m.choice)
	}
	if m.status != "htop is unavailable right now" {
		t.Fatalf("status %q", m.status)
	}
	if !strings.Contains(m.View(), "htop is unavailable right now") {
		t.Fatalf("status not shown:\n%s", m.View())
	}
	// The next key clears the status.
	m, _ = press(t, m, key(tea.KeyUp))
	if m.status != "" {
		t.Fatalf("status after a key: %q", m.status)
	}
	// When only unavailable apps match, Enter still chooses nothing.
	m, cmd = press(t, newTestModel("vt100"), runes("viewer"), key(tea.KeyEnter))
	if m.done || cmd != nil || m.status == "" {
		t.Fatalf("viewer: done %v status %q", m.done, m.status)
	}
	// Nor when nothing matches.
	m, cmd = press(t, newTestModel("vt100"), runes("zzz"), key(tea.KeyEnter))
	if m.done || cmd != nil || !strings.Contains(m.status, "Nothing matches") {
		t.Fatalf("zzz: done %v status %q", m.done, m.status)
	}
}

func TestLeave(t *testing.T) {
	for _, k := range []tea.KeyMsg{runes("q"), key(tea.KeyEsc), key(tea.KeyCtrlC)} {
		m, cmd := press(t, newTestModel("vt100"), key(tea.KeyDown), k)
		if !m.done || !isQuit(cmd) || m.choice != (Choice{}) {
			t.Errorf("%s: done %v quit %v choice %+v", k, m.done, isQuit(cmd), m.choice)
		}
	}
	// Esc and Ctrl-C leave while filtering too.
	for _, k := range []tea.KeyMsg{key(tea.KeyEsc), key(tea.KeyCtrlC)} {
		m, cmd := press(t, newTestModel("vt100"), runes("vi"), k)
		if !m.done || !isQuit(cmd) || m.choice != (Choice{}) {
			t.Errorf("filtering, %s: done %v quit %v choice %+v", k, m.done, isQuit(cmd), m.choice)
		}
	}
}

func TestSince(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Minute, "0s"},
		{45 * time.Second, "45s"},
		{12*time.Minute + 59*time.Second, "12m"},
		{3*time.Hour + 5*time.Minute, "3h05m"},
		{50 * time.Hour, "2d02h"},
		{621*24*time.Hour + 13*time.Hour, "621d"},
	}
	for _, tt := range tests {
		if got := since(testNow, testNow.Add(-tt.d)); got != tt.want {
			t.Errorf("since(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := since(testNow, time.Time{}); got != "-" {
		t.Errorf("since(zero) = %q", got)
	}
}
