package tui

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"switchyard/internal/testutil"
)

// checkFits fails unless view is exactly h lines of at most w cells.
func checkFits(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("%dx%d: view has %d lines", w, h, len(lines))
	}
	for i, l := range lines {
		if lw := ansi.StringWidth(l); lw > w {
			t.Errorf("%dx%d: line %d is %d cells wide: %q", w, h, i, lw, ansi.Strip(l))
		}
	}
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name, term string
		keys       []tea.KeyMsg
	}{
		{"xterm-256color", "xterm-256color", nil},
		{"vt100", "vt100", nil},
		{"vt100-filtered", "vt100", []tea.KeyMsg{runes("con"), key(tea.KeyDown), key(tea.KeyDown)}},
		{"vt100-unavailable", "vt100", []tea.KeyMsg{runes("htop"), key(tea.KeyDown), key(tea.KeyEnter)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := press(t, newTestModel(tt.term), tt.keys...)
			got := m.View()
			checkFits(t, got, 80, 24)
			testutil.Golden(t, tt.name, got)
		})
	}
}

// TestViewFits checks every window size from tiny to wide, scrolled to the
// top, the middle and the bottom, in both colour and no colour.
func TestViewFits(t *testing.T) {
	items := testItems()
	for i := range 30 {
		items.Apps = append(items.Apps, App{Name: fmt.Sprintf("app%02d-with-a-long-name", i),
			Description: strings.Repeat("wordy ", 20), Available: i%3 != 0, Hint: strings.Repeat("hint ", i%7)})
	}
	for _, term := range []string{"xterm-256color", "vt100"} {
		base := newModel(items, newStyles(nil, term), func() time.Time { return testNow }, "a-user-with-a-rather-long-name", 80, 24)
		for _, w := range []int{1, 2, 5, 10, 20, 39, 40, 60, 79, 80, 81, 100, 130} {
			for _, h := range []int{1, 2, 3, 4, 5, 6, 8, 10, 23, 24, 25, 40} {
				m, _ := press(t, base, key(tea.KeyDown))
				next, _ := m.Update(tea.WindowSizeMsg{Width: w, Height: h})
				m = next.(model)
				checkFits(t, m.View(), w, h)
				m, _ = press(t, m, key(tea.KeyPgDown), key(tea.KeyPgDown))
				checkFits(t, m.View(), w, h)
				m, _ = press(t, m, key(tea.KeyEnd))
				checkFits(t, m.View(), w, h)
				if !strings.Contains(ansi.Strip(m.View()), "> app29") && h > 1 && w >= 10 {
					t.Fatalf("%s %dx%d: cursor row not visible at the end:\n%s", term, w, h, ansi.Strip(m.View()))
				}
			}
		}
	}
}

func TestScrolling(t *testing.T) {
	items := testItems()
	for i := range 30 {
		items.Apps = append(items.Apps, App{Name: fmt.Sprintf("extra%02d", i), Description: "more", Available: true})
	}
	m := newModel(items, newStyles(nil, "vt100"), func() time.Time { return testNow }, "alice", 80, 24)
	view := m.View()
	if !strings.Contains(view, "Detached sessions (2)") || !strings.Contains(view, "more below") {
		t.Fatalf("top of a long list:\n%s", view)
	}
	m, _ = press(t, m, key(tea.KeyEnd))
	view = m.View()
	if !strings.Contains(view, "> extra29") || !strings.Contains(view, "more above") || strings.Contains(view, "Detached") {
		t.Fatalf("bottom of a long list:\n%s", view)
	}
	// Back at the first app, its section header is shown with it.
	m, _ = press(t, m, key(tea.KeyHome), key(tea.KeyDown), key(tea.KeyDown))
	m.offset = 5
	m, _ = press(t, m, key(tea.KeyUp), key(tea.KeyDown))
	if view = m.View(); !strings.Contains(view, "Apps (") {
		t.Fatalf("first app without its header:\n%s", view)
	}
}

func TestResizeChangesWidth(t *testing.T) {
	m := newTestModel("xterm-256color")
	widest := func(v string) int {
		n := 0
		for _, l := range strings.Split(v, "\n") {
			n = max(n, ansi.StringWidth(l))
		}
		return n
	}
	if got := widest(m.View()); got != 80 {
		t.Fatalf("80x24: widest line %d", got)
	}
	for _, s := range []Size{{120, 40}, {50, 12}} {
		next, _ := m.Update(tea.WindowSizeMsg{Width: s.Width, Height: s.Height})
		m = next.(model)
		v := m.View()
		checkFits(t, v, s.Width, s.Height)
		if got := widest(v); got != s.Width {
			t.Errorf("%+v: widest line %d", s, got)
		}
	}
}

// sgrColour matches SGR sequences that set a colour (30-37, 38;..., 40-47,
// 48;..., 90-97, 100-107).
var sgrColour = regexp.MustCompile(`\x1b\[[0-9;]*?(^|;|\[)(3[0-9]|4[0-9]|9[0-7]|10[0-7])[;m]`)

func TestNoColourOnVT100(t *testing.T) {
	for _, term := range []string{"vt100", "dumb", "", "vt220"} {
		m, _ := press(t, newTestModel(term), runes("htop"), key(tea.KeyDown), key(tea.KeyEnter))
		if v := m.View(); strings.Contains(v, "\x1b") {
			t.Errorf("TERM=%q: view has escape sequences: %q", term, v)
		}
	}
	for _, term := range []string{"xterm-256color", "xterm", "screen", "xterm-direct"} {
		if v := newTestModel(term).View(); !sgrColour.MatchString(v) {
			t.Errorf("TERM=%q: view has no colour: %q", term, v)
		}
	}
}
