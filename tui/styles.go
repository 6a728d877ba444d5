package tui

import (
	"io"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// styles holds every style the view uses, all built from one per-session
// lipgloss renderer, never from lipgloss's global default renderer (which
// follows the daemon's own stdout and environment).
type styles struct {
	title    lipgloss.Style // "Switchyard"
	subtitle lipgloss.Style // user and purpose
	header   lipgloss.Style // section headers
	prompt   lipgloss.Style // "Filter:"
	filter   lipgloss.Style // the filter text
	normal   lipgloss.Style // an entry's name and columns
	desc     lipgloss.Style // an app's description
	hintOK   lipgloss.Style // an available app's hint
	dim      lipgloss.Style // unavailable apps, placeholders, help
	selected lipgloss.Style // the row under the cursor
	selDim   lipgloss.Style // the row under the cursor, unavailable
	status   lipgloss.Style // the status line
}

// profileFor maps a TERM value to the colour profile to render with. TERM
// is all we know about the client: SSH does not forward COLORTERM by
// default, so anything not known to do better gets the 16 ANSI colours.
func profileFor(term string) termenv.Profile {
	t := strings.ToLower(term)
	switch {
	case t == "" || t == "dumb" || strings.HasPrefix(t, "vt") ||
		t == "ansi-mono" || strings.HasSuffix(t, "-m") || strings.HasSuffix(t, "-mono"):
		return termenv.Ascii
	case strings.Contains(t, "truecolor") || strings.Contains(t, "24bit") ||
		strings.HasSuffix(t, "-direct") || strings.Contains(t, "kitty") ||
		strings.Contains(t, "alacritty") || strings.Contains(t, "wezterm") ||
		strings.Contains(t, "ghostty"):
		return termenv.TrueColor
	case strings.Contains(t, "256color"):
		return termenv.ANSI256
	default:
		return termenv.ANSI
	}
}

// termEnviron is the environment termenv sees: the client's TERM only,
// never the daemon's.
type termEnviron struct{ term string }

func (e termEnviron) Environ() []string { return []string{"TERM=" + e.term} }

func (e termEnviron) Getenv(key string) string {
	if key == "TERM" {
		return e.term
	}
	return ""
}

// newRenderer returns a lipgloss renderer for out whose colour profile comes
// from term, with a dark background assumed so that nothing is queried from
// the terminal.
func newRenderer(out io.Writer, term string) *lipgloss.Renderer {
	p := profileFor(term)
	r := lipgloss.NewRenderer(out,
		termenv.WithProfile(p), termenv.WithEnvironment(termEnviron{term}))
	r.SetColorProfile(p)
	r.SetHasDarkBackground(true)
	return r
}

// newStyles builds the picker's styles for out and term. Colours are given
// in the 256-colour palette; the renderer degrades them to 16 colours or to
// none as the profile requires. Under no colour at all the view stays
// usable: the cursor row carries a ">" marker and unavailable apps say so
// in their hint.
func newStyles(out io.Writer, term string) styles {
	r := newRenderer(out, term)
	s := r.NewStyle
	return styles{
		title:    s().Bold(true).Foreground(lipgloss.Color("39")),
		subtitle: s().Foreground(lipgloss.Color("250")),
		header:   s().Bold(true).Foreground(lipgloss.Color("75")),
		prompt:   s().Foreground(lipgloss.Color("39")),
		filter:   s().Bold(true).Foreground(lipgloss.Color("231")),
		normal:   s(),
		desc:     s().Foreground(lipgloss.Color("249")),
		hintOK:   s().Foreground(lipgloss.Color("78")),
		dim:      s().Foreground(lipgloss.Color("243")),
		selected: s().Bold(true).Foreground(lipgloss.Color("231")).Background(lipgloss.Color("24")),
		selDim:   s().Foreground(lipgloss.Color("246")).Background(lipgloss.Color("237")),
		status:   s().Bold(true).Foreground(lipgloss.Color("214")),
	}
}
