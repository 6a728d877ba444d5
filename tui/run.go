package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Options are the terminal Run draws on. In and Out are required.
type Options struct {
	In  io.Reader // keys from the user's PTY; see Run about interrupting it
	Out io.Writer // the user's PTY; written raw ("\r\n" line ends)

	Term          string           // TERM from the PTY request, e.g. "xterm-256color" or "vt100"; "" is treated as dumb
	Width, Height int              // window size from the PTY request; 80x24 if zero
	Resize        <-chan Size      // window changes; may be nil
	Now           func() time.Time // clock for ages and idle times; time.Now if nil
	User          string           // shown in the title; may be empty
}

// Size is a window size in cells.
type Size struct{ Width, Height int }

// Run shows the picker on opt.Out, reading keys from opt.In, until the user
// chooses an entry or leaves, and returns their Choice. Leaving (q, Esc,
// Ctrl-C) returns the zero Choice and a nil error. When ctx is cancelled Run
// restores the terminal and returns ctx.Err(). When opt.In ends before a
// choice, Run returns an error wrapping the reader's error (io.EOF for a
// client that closed its input).
//
// Run reads opt.In from one goroutine of its own. If opt.In has a
// SetReadDeadline method (net.Conn, net.Pipe, *os.File pipes and PTYs), Run
// interrupts that goroutine's pending Read before returning and clears the
// deadline again, leaving no goroutine behind and no key lost. Otherwise a
// Read cannot be interrupted: one may remain pending after Run returns, and
// whatever it reads is dropped. A gateway that goes on reading the same
// input should therefore pass a reader with SetReadDeadline.
//
// The picker uses the alternate screen, so the user's screen comes back as
// it was when Run returns.
func Run(ctx context.Context, items Items, opt Options) (Choice, error) {
	if err := ctx.Err(); err != nil {
		return Choice{}, err
	}
	if opt.In == nil || opt.Out == nil {
		return Choice{}, errors.New("tui: Options.In and Options.Out are required")
	}
	w, h := opt.Width, opt.Height
	if w <= 0 || h <= 0 {
		w, h = defaultWidth, defaultHeight
	}
	m := newModel(items, newStyles(opt.Out, opt.Term), opt.Now, opt.User, w, h)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := newInput(opt.In)
	p := tea.NewProgram(m,
		tea.WithContext(runCtx),
		tea.WithInput(in),
		tea.WithOutput(output{opt.Out}),
		tea.WithEnvironment([]string{"TERM=" + opt.Term}),
		tea.WithoutSignalHandler(),
		tea.WithAltScreen(),
	)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		forwardSizes(runCtx, p, Size{w, h}, opt.Resize)
	}()

	final, err := p.Run()
	cancel()
	in.stop()
	wg.Wait()

	if fm, ok := final.(model); ok && fm.done {
		return fm.choice, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return Choice{}, ctxErr
	}
	if inErr := in.error(); inErr != nil {
		return Choice{}, fmt.Errorf("tui: read input: %w", inErr)
	}
	if err == nil {
		err = errors.New("program ended without a choice")
	}
	return Choice{}, fmt.Errorf("tui: %w", err)
}

// forwardSizes sends the initial size, then every size from resize, to p
// as tea.WindowSizeMsg: bubbletea cannot query a window it does not own.
// Sizes that are not positive are ignored.
func forwardSizes(ctx context.Context, p *tea.Program, initial Size, resize <-chan Size) {
	p.Send(tea.WindowSizeMsg{Width: initial.Width, Height: initial.Height})
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-resize:
			if !ok {
				resize = nil
				continue
			}
			if s.Width > 0 && s.Height > 0 {
				p.Send(tea.WindowSizeMsg{Width: s.Width, Height: s.Height})
			}
		}
	}
}
