package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// columns are the list's column widths in cells, measured over all items so
// that filtering does not shift them.
type columns struct {
	name   int // session app and app name
	server int // session server
	hint   int // app availability hint
}

// Column width limits, in cells, chosen so that a row fits in 80 columns.
const (
	minName     = 8
	maxName     = 16
	maxServer   = 20
	maxHint     = 22
	minDesc     = 8 // narrower than this, descriptions are left out
	timeWidth   = 6 // "12h05m"
	markerWidth = 2 // "> "
	gap         = "  "
)

// measureColumns returns the column widths for items.
func measureColumns(items Items) columns {
	c := columns{name: minName}
	for _, s := range items.Sessions {
		c.name = max(c.name, ansi.StringWidth(s.App))
		c.server = max(c.server, ansi.StringWidth(s.Server))
	}
	for _, a := range items.Apps {
		c.name = max(c.name, ansi.StringWidth(a.Name))
		c.hint = max(c.hint, ansi.StringWidth(hintText(a)))
	}
	c.name, c.server, c.hint = min(c.name, maxName), min(c.server, maxServer), min(c.hint, maxHint)
	return c
}

// hintText is the hint shown for an app.
func hintText(a App) string {
	if a.Hint == "" && !a.Available {
		return "unavailable"
	}
	return a.Hint
}

// clip truncates s to w cells, ending it with "…" when cut.
func clip(s string, w int) string {
	if w <= 0 {
		return ""
	}
	return ansi.Truncate(s, w, "…")
}

// fit clips s to w cells and pads it with spaces to exactly w.
func fit(s string, w int) string {
	s = clip(s, w)
	return s + strings.Repeat(" ", max(0, w-ansi.StringWidth(s)))
}

// cell is a piece of a row with its style when the row is not selected.
type cell struct {
	text  string
	style lipgloss.Style
}

// View implements tea.Model. It renders exactly the window's height in
// lines, none wider than the window.
func (m model) View() string {
	w, h := m.size()
	title, filter, status := m.chrome()
	lines := make([]string, 0, h+1)
	if title {
		lines = append(lines, m.titleLine(w))
	}
	if filter {
		lines = append(lines, m.filterLine(w))
	}
	lines = append(lines, m.listLines(w, m.listHeight())...)
	if status {
		lines = append(lines, m.statusLine(w))
	}
	// The last line stays clear of the last column: when a frame is
	// shorter than the one before, bubbletea follows it with "erase
	// below", which on a real terminal also erases the cell under a cursor
	// left in the last column.
	lines = append(lines, m.st.dim.Render(clip(m.help(), max(1, w-1))))
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, w, "")
	}
	return strings.Join(lines, "\n")
}

// titleLine names the product and the user.
func (m model) titleLine(w int) string {
	const name = "Switchyard"
	sub := "resume a session or start an app"
	if m.user != "" {
		sub = m.user + ": " + sub
	}
	return m.st.title.Render(name) + gap + m.st.subtitle.Render(clip(sub, w-len(name)-len(gap)))
}

// filterLine shows the filter (or how to start one) and, on the right, the
// cursor's position in the list.
func (m model) filterLine(w int) string {
	var left string
	if m.filtering() {
		left = m.st.prompt.Render("Filter: ") + m.st.filter.Render(clip(m.filter, w-10)) + m.st.dim.Render("_")
	} else {
		left = m.st.dim.Render("Type to filter")
	}
	if len(m.entries) == 0 {
		return left
	}
	right := fmt.Sprintf("%d/%d", m.cursor+1, len(m.entries))
	pad := w - ansi.StringWidth(left) - len(right)
	if pad < 1 {
		return left
	}
	return left + strings.Repeat(" ", pad) + m.st.dim.Render(right)
}

// statusLine shows the status message, else how much of the list is
// scrolled out of sight.
func (m model) statusLine(w int) string {
	if m.status != "" {
		return m.st.status.Render(clip(m.status, w))
	}
	lh := m.listHeight()
	var above, below int
	for i := range m.entries {
		switch l := m.lineOf(i); {
		case l < m.offset:
			above++
		case l >= m.offset+lh:
			below++
		}
	}
	var parts []string
	if above > 0 {
		parts = append(parts, fmt.Sprintf("%d more above", above))
	}
	if below > 0 {
		parts = append(parts, fmt.Sprintf("%d more below", below))
	}
	if len(parts) == 0 {
		return ""
	}
	return m.st.dim.Render(clip(strings.Join(parts, ", "), w))
}

// help is the one-line key help, which depends on whether j, k and q are
// commands or letters of the filter.
func (m model) help() string {
	if m.filtering() {
		return "up/down move  enter choose  backspace edit  ctrl+u clear  esc quit"
	}
	return "up/down/j/k move  enter choose  type or / to filter  q/esc quit"
}

// listLines renders the n list lines visible from m.offset, padded with
// empty lines.
func (m model) listLines(w, n int) []string {
	var all []string
	switch {
	case len(m.entries) == 0 && m.filter != "":
		all = append(all, m.st.dim.Render(clip(fmt.Sprintf("Nothing matches %q (backspace to edit)", m.filter), w)))
	case len(m.entries) == 0:
		all = append(all, m.st.dim.Render(clip("You have no detached sessions and no apps to run.", w)))
	}
	if m.sessions > 0 {
		all = append(all, m.header("Detached sessions", m.sessions, len(m.items.Sessions), w))
		for i := range m.sessions {
			all = append(all, m.row(i, w))
		}
	}
	if apps := len(m.entries) - m.sessions; apps > 0 {
		if m.sessions > 0 {
			all = append(all, "")
		}
		all = append(all, m.header("Apps", apps, len(m.items.Apps), w))
		for i := m.sessions; i < len(m.entries); i++ {
			all = append(all, m.row(i, w))
		}
	}
	lo := min(m.offset, len(all))
	out := append([]string(nil), all[lo:min(lo+n, len(all))]...)
	for len(out) < n {
		out = append(out, "")
	}
	return out
}

// header renders a section header with its count ("Apps (2 of 6)" when
// filtered).
func (m model) header(name string, shown, total, w int) string {
	count := fmt.Sprintf(" (%d)", shown)
	if shown != total {
		count = fmt.Sprintf(" (%d of %d)", shown, total)
	}
	return m.st.header.Render(clip(name, w)) + m.st.dim.Render(clip(count, w-len(name)))
}

// row renders entry i as one line of at most w cells.
func (m model) row(i, w int) string {
	e := m.entries[i]
	marker := fit("", markerWidth)
	if i == m.cursor {
		marker = fit(">", markerWidth)
	}
	cells := []cell{{marker, m.st.normal}}
	if e.sess != nil {
		cells = append(cells, m.sessionCells(*e.sess)...)
	} else {
		cells = append(cells, m.appCells(*e.app, w)...)
	}
	if i == m.cursor {
		var b strings.Builder
		for _, c := range cells {
			b.WriteString(c.text)
		}
		st := m.st.selected
		if !e.choosable() {
			st = m.st.selDim
		}
		return st.Render(fit(b.String(), w))
	}
	var b strings.Builder
	used := 0
	for _, c := range cells {
		t := clip(c.text, w-used)
		if t == "" {
			continue
		}
		b.WriteString(c.style.Render(t))
		used += ansi.StringWidth(t)
	}
	return b.String()
}

// sessionCells are a session's columns: app, server, age and idle time.
func (m model) sessionCells(s Session) []cell {
	now := m.now()
	return []cell{
		{fit(s.App, m.cols.name), m.st.normal},
		{gap + fit(s.Server, m.cols.server), m.st.desc},
		{gap + "age " + fit(since(now, s.Started), timeWidth) + gap + "idle " + since(now, s.Detached), m.st.dim},
	}
}

// appCells are an app's columns: name, description (when there is room)
// and availability hint, all dimmed when the app is unavailable.
func (m model) appCells(a App, w int) []cell {
	name, desc, hint := m.st.normal, m.st.desc, m.st.hintOK
	if !a.Available {
		name, desc, hint = m.st.dim, m.st.dim, m.st.dim
	}
	cells := []cell{{fit(a.Name, m.cols.name), name}}
	descW := w - markerWidth - m.cols.name - 2*len(gap) - m.cols.hint
	if m.cols.hint == 0 {
		descW += len(gap)
	}
	if descW >= minDesc {
		cells = append(cells, cell{gap + fit(a.Description, descW), desc})
	}
	if m.cols.hint > 0 {
		h := clip(hintText(a), m.cols.hint)
		cells = append(cells, cell{gap + strings.Repeat(" ", m.cols.hint-ansi.StringWidth(h)) + h, hint})
	}
	return cells
}
