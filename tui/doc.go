// Package tui is the picker a gateway shows when a user connects without
// naming an app (`ssh alice@gw`): the user's detached sessions first, then
// the apps they may run, filterable by typing.
//
// The package knows nothing of SSH. [Run] takes a reader and a writer (the
// two directions of the user's PTY), the terminal type and window size from
// the PTY request, a channel of window changes, and the [Items] to offer; it
// returns the user's [Choice]. It never touches the daemon's own terminal,
// environment or signals: the input and output are hidden from bubbletea
// behind plain wrappers (so it never changes a terminal mode nor listens for
// SIGWINCH), no signal handler is installed, and every style comes from a
// lipgloss renderer built for this one session, with a colour profile
// derived from the TERM it was given (none for vt100 and dumb).
//
// # Keys
//
//	Up/Down, Ctrl-P/Ctrl-N    move (j/k too while the filter is empty)
//	PgUp/PgDn, Home/End       move by a page, to the first or last entry
//	Enter                     resume the session or start the app
//	letters, digits, space    filter (case-insensitive substring)
//	/                         start a filter whose first letter is j, k or q
//	Backspace, Ctrl-U         edit, clear the filter
//	Esc, Ctrl-C               leave (q too while the filter is empty)
//
// Typing filters at once, so j, k and q are commands only while the filter
// is empty and no "/" was typed; once filtering, every printable character
// is literal. Movement clamps at both ends of the list (it does not wrap),
// and the list scrolls when it is longer than the window. Unavailable apps
// are shown dimmed; the cursor may rest on them, but Enter only explains
// that the app is unavailable right now.
package tui
