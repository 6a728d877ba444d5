package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"switchyard/broker"
	"switchyard/safelog"
)

// brokerReplay runs `broker replay [-speed N] [-idle S] [-end] [-cast] -config FILE
// SESSION`: it fetches the session's recording through the broker from
// whichever appd holds it and plays it on standard output, through
// termFilter (-cast writes the file itself, unfiltered).
func brokerReplay(ctx context.Context, args []string, env Env) error {
	var c common
	fs := flag.NewFlagSet("broker replay", flag.ContinueOnError)
	c.register(fs)
	node := fs.String("node", "", "ask this broker (default: each in turn until one has it)")
	speed := fs.Float64("speed", 1, "play `N` times faster than real time")
	toEnd := fs.Bool("end", false, "print the whole recording at once, without waiting")
	idle := fs.Float64("idle", 0, "cut every pause longer than `SECONDS` to that (as asciinema play -i); 0: no cut")
	raw := fs.Bool("cast", false, "write the asciicast v2 file itself instead of playing it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *speed <= 0 || *idle < 0 {
		return fmt.Errorf("%w: broker replay [-speed N] [-idle SECONDS] [-end] [-cast] -config FILE SESSION (N > 0, SECONDS >= 0)", ErrUsage)
	}
	cfg, err := c.adminConfig(env.stderr())
	if err != nil {
		return err
	}
	body, err := openStream(ctx, adminClients(cfg, *node), "/recording/"+url.PathEscape(fs.Arg(0)))
	if err != nil {
		return err
	}
	defer body.Close()
	if *raw {
		if _, err := io.Copy(env.stdout(), body); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		return body.ended()
	}
	p := castPlayer{Speed: *speed, ToEnd: *toEnd, Idle: *idle}
	if _, err := p.Play(ctx, body, newTermFilter(env.stdout())); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return body.ended()
}

// brokerWatch runs `broker watch -config FILE SESSION`: the session's
// current screen, then its live output (through termFilter), read-only,
// until the session ends or the admin presses q or Ctrl-C.
func brokerWatch(ctx context.Context, args []string, env Env) error {
	var c common
	fs := flag.NewFlagSet("broker watch", flag.ContinueOnError)
	c.register(fs)
	node := fs.String("node", "", "ask this broker (default: each in turn until one knows the session)")
	redraw := fs.Bool("redraw", false, "make the app redraw its screen (the user sees it redraw too)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: broker watch [-redraw] -config FILE SESSION", ErrUsage)
	}
	cfg, err := c.adminConfig(env.stderr())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	path := "/watch/" + url.PathEscape(fs.Arg(0))
	if *redraw {
		path += "?redraw=1"
	}
	body, err := openStream(ctx, adminClients(cfg, *node), path)
	if err != nil {
		return err
	}
	defer body.Close()
	restore := watchKeys(env, cancel)
	_, err = io.Copy(newTermFilter(env.stdout()), body)
	restore()
	if ctx.Err() != nil {
		fmt.Fprintln(env.stderr(), "\r\nswitchyard: stopped watching")
		return nil
	}
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	if err := body.ended(); err != nil {
		return err
	}
	fmt.Fprintln(env.stderr(), "\r\nswitchyard: the session has ended")
	return nil
}

// stream is an admin API response being read.
type stream struct {
	resp  *http.Response
	where string
}

func (s *stream) Read(p []byte) (int, error) { return s.resp.Body.Read(p) }
func (s *stream) Close() error               { return s.resp.Body.Close() }

// ended reports, once the body has been read to its end, whether the
// broker says the stream was whole (its trailer).
func (s *stream) ended() error {
	end := s.resp.Trailer.Get(broker.TrailerEnd)
	if end == "ended" {
		return nil
	}
	if end == "" {
		end = "the stream was cut"
	}
	return fmt.Errorf("broker at %s: %s", s.where, safelog.Text(strings.TrimPrefix(end, "error: "), 512))
}

// openStream gets path from the first broker that answers 200, with no
// time limit on the body.
func openStream(ctx context.Context, clients []adminClient, path string) (*stream, error) {
	var err error
	for _, a := range clients {
		var s *stream
		s, err = a.stream(ctx, path)
		if err == nil {
			return s, nil
		}
	}
	return nil, err
}

// stream starts a GET of path and returns its body if the answer is 200.
func (a adminClient) stream(ctx context.Context, path string) (*stream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("broker unavailable at %s: %w", a.where, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &adminError{status: resp.StatusCode,
			msg: fmt.Sprintf("broker at %s: %s", a.where, safelog.Text(strings.TrimSpace(string(msg)), 512))}
	}
	return &stream{resp: resp, where: a.where}, nil
}

// watchKeys puts a terminal on standard input in raw mode, so that
// nothing typed echoes, and calls stop when q or Ctrl-C is pressed; it
// returns the function that restores the terminal. Without a terminal it
// does nothing: SIGINT ends the watch.
func watchKeys(env Env, stop func()) (restore func()) {
	in := env.Stdin
	if in == nil {
		in = os.Stdin
	}
	f, ok := in.(*os.File)
	if !ok {
		return func() {}
	}
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag = raw.Cflag&^(unix.CSIZE|unix.PARENB) | unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return func() {}
	}
	go func() {
		b := make([]byte, 64)
		for {
			n, err := f.Read(b)
			if strings.ContainsAny(string(b[:n]), "q\x03") || err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				stop()
				return
			}
		}
	}()
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}

// brokerRecordCLI dispatches `broker replay` and `broker watch`.
func brokerRecordCLI(ctx context.Context, verb string, args []string, env Env) error {
	if verb == "replay" {
		return brokerReplay(ctx, args, env)
	}
	return brokerWatch(ctx, args, env)
}
