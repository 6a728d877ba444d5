package tui

import (
	"fmt"
	"time"
	"unicode"

	tea "github.com/charmbracelet/bubbletea"
)

// Default window size, used until a size is known.
const (
	defaultWidth  = 80
	defaultHeight = 24
)

// model is the picker's bubbletea model. Update returns a modified copy;
// entries is replaced, never modified in place, so copies stay independent.
type model struct {
	items Items
	st    styles
	now   func() time.Time
	user  string
	cols  columns // column widths, from all items so filtering does not shift them

	width, height int

	filter   string  // what the user typed
	slash    bool    // filtering was started with "/": j, k and q are literal
	entries  []entry // entries matching filter: sessions, then apps
	sessions int     // how many of entries are sessions
	cursor   int     // index into entries
	offset   int     // first list line shown
	status   string  // one-line message, cleared by the next key

	done   bool   // the user chose or left
	choice Choice // valid when done
}

// newModel returns the picker's initial state.
func newModel(items Items, st styles, now func() time.Time, user string, width, height int) model {
	if now == nil {
		now = time.Now
	}
	m := model{items: items, st: st, now: now, user: user, width: width, height: height}
	m.cols = measureColumns(items)
	m.setFilter("", false)
	return m
}

// Init implements tea.Model.
func (m model) Init() tea.Cmd { return nil }

// Update implements tea.Model.
func (m model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.scroll()
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

// key handles one key press.
func (m model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	m.status = ""
	switch k.Type {
	case tea.KeyCtrlC, tea.KeyEsc:
		return m.leave()
	case tea.KeyEnter:
		return m.choose()
	case tea.KeyUp, tea.KeyCtrlP:
		m.move(-1)
	case tea.KeyDown, tea.KeyCtrlN:
		m.move(1)
	case tea.KeyPgUp:
		m.move(-m.listHeight())
	case tea.KeyPgDown:
		m.move(m.listHeight())
	case tea.KeyHome:
		m.move(-len(m.entries))
	case tea.KeyEnd:
		m.move(len(m.entries))
	case tea.KeyBackspace, tea.KeyCtrlH:
		m.backspace()
	case tea.KeyCtrlU:
		m.setFilter("", false)
	case tea.KeyRunes, tea.KeySpace:
		if !k.Alt {
			return m.runes(k.Runes, k.Paste)
		}
	}
	return m, nil
}

// filtering reports whether printable keys go to the filter only.
func (m model) filtering() bool { return m.filter != "" || m.slash }

// runes handles typed (or pasted) characters as if typed one at a time:
// while not filtering, j and k move, q leaves and / starts filtering; any
// other printable character, and every pasted one, extends the filter.
func (m model) runes(rs []rune, paste bool) (tea.Model, tea.Cmd) {
	add := make([]rune, 0, len(rs))
	flush := func() {
		if len(add) > 0 {
			m.setFilter(m.filter+string(add), m.slash)
			add = add[:0]
		}
	}
	for _, r := range rs {
		if !paste && !m.filtering() && len(add) == 0 {
			switch r {
			case 'j':
				m.move(1)
				continue
			case 'k':
				m.move(-1)
				continue
			case 'q':
				return m.leave()
			case '/':
				m.slash = true
				continue
			}
		}
		if r == ' ' && m.filter == "" && len(add) == 0 {
			continue // a filter does not start with a space
		}
		if unicode.IsPrint(r) {
			add = append(add, r)
		}
	}
	flush()
	return m, nil
}

// backspace deletes the filter's last character, or leaves "/" mode when
// the filter is already empty.
func (m *model) backspace() {
	if m.filter == "" {
		m.slash = false
		return
	}
	r := []rune(m.filter)
	m.setFilter(string(r[:len(r)-1]), m.slash)
}

// setFilter applies a new filter and puts the cursor on the first entry
// that can be chosen.
func (m *model) setFilter(f string, slash bool) {
	m.filter, m.slash = f, slash
	m.entries, m.sessions = filterItems(m.items, f)
	m.cursor, m.offset = 0, 0
	for i, e := range m.entries {
		if e.choosable() {
			m.cursor = i
			break
		}
	}
	m.scroll()
}

// move moves the cursor by d entries, clamped to the list.
func (m *model) move(d int) {
	m.cursor = max(0, min(m.cursor+d, len(m.entries)-1))
	m.scroll()
}

// choose ends the picker with the entry under the cursor, or explains why
// it cannot.
func (m model) choose() (tea.Model, tea.Cmd) {
	if len(m.entries) == 0 {
		if m.filter != "" {
			m.status = fmt.Sprintf("Nothing matches %q", m.filter)
		}
		return m, nil
	}
	e := m.entries[m.cursor]
	switch {
	case e.sess != nil:
		m.choice = Choice{SessionID: e.sess.ID}
	case e.app.Available:
		m.choice = Choice{App: e.app.Name}
	default:
		m.status = e.app.Name + " is unavailable right now"
		return m, nil
	}
	m.done = true
	return m, tea.Quit
}

// leave ends the picker with no choice.
func (m model) leave() (tea.Model, tea.Cmd) {
	m.choice, m.done = Choice{}, true
	return m, tea.Quit
}

// size returns the window size, defaulting to 80x24.
func (m model) size() (w, h int) {
	w, h = m.width, m.height
	if w <= 0 {
		w = defaultWidth
	}
	if h <= 0 {
		h = defaultHeight
	}
	return w, h
}

// chrome says which fixed lines fit around the list; listHeight is what
// remains. Small windows drop the title first, then the status line, then
// the filter line; the help line and at least one list line always stay.
func (m model) chrome() (title, filter, status bool) {
	_, h := m.size()
	return h >= 5, h >= 3, h >= 4
}

// listHeight is the number of list lines the window has room for.
func (m model) listHeight() int {
	_, h := m.size()
	title, filter, status := m.chrome()
	for _, shown := range []bool{title, filter, status, true} {
		if shown {
			h--
		}
	}
	return max(h, 1)
}

// Layout of the list: "Detached sessions" header and rows, a blank line,
// "Apps" header and rows. Sections without entries are left out.

// appsHeaderLine is the list line of the "Apps" header.
func (m model) appsHeaderLine() int {
	if m.sessions == 0 {
		return 0
	}
	return 1 + m.sessions + 1
}

// lineOf is the list line of entry i.
func (m model) lineOf(i int) int {
	if i < m.sessions {
		return 1 + i
	}
	return m.appsHeaderLine() + 1 + i - m.sessions
}

// totalLines is the length of the list in lines (at least 1, for the
// placeholder shown when nothing matches).
func (m model) totalLines() int {
	if len(m.entries) == 0 {
		return 1
	}
	if len(m.entries) == m.sessions {
		return 1 + m.sessions
	}
	return m.lineOf(len(m.entries)-1) + 1
}

// scroll adjusts offset so the cursor is visible, together with its
// section header when it is the section's first entry.
func (m *model) scroll() {
	lh := m.listHeight()
	if len(m.entries) > 0 {
		cur := m.lineOf(m.cursor)
		top := cur
		switch m.cursor {
		case 0:
			top = 0
		case m.sessions:
			top = m.appsHeaderLine()
		}
		if top < m.offset {
			m.offset = top
		}
		if cur >= m.offset+lh {
			m.offset = cur - lh + 1
		}
	}
	m.offset = max(0, min(m.offset, m.totalLines()-lh))
}
