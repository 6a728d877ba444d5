package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// Handler serves the calls and notifications a Peer receives. For a
// notification the result is discarded. An error that is not a RemoteError
// reaches the caller as CodeInternal with its text.
type Handler func(ctx context.Context, method string, body json.RawMessage) (any, error)

// ErrClosed is returned by calls on a Peer whose connection has ended.
var ErrClosed = errors.New("control: connection closed")

// maxInflight bounds the calls a Peer serves at once; further calls wait
// in the read loop, which pushes back on the sender.
const maxInflight = 256

// Peer is one end of a control connection. Create it with NewPeer, then run
// Serve; Call and Notify are safe for concurrent use.
type Peer struct {
	rwc     io.ReadWriteCloser
	handler Handler
	log     *slog.Logger

	wmu sync.Mutex // serialises frame writes

	mu      sync.Mutex // guards the fields below
	nextID  uint64
	pending map[uint64]chan *envelope
	err     error // why the connection ended; set once

	done chan struct{} // closed when the connection has ended
	sem  chan struct{}
}

// NewPeer returns a Peer over rwc. handler may be nil for a peer that only
// calls; calls it receives are then answered with CodeInternal.
func NewPeer(rwc io.ReadWriteCloser, handler Handler, log *slog.Logger) *Peer {
	if log == nil {
		log = slog.Default()
	}
	return &Peer{
		rwc:     rwc,
		handler: handler,
		log:     log,
		pending: make(map[uint64]chan *envelope),
		done:    make(chan struct{}),
		sem:     make(chan struct{}, maxInflight),
	}
}

// Done is closed when the connection has ended.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Err reports why the connection ended, or nil while it runs.
func (p *Peer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Close ends the connection; pending calls fail with ErrClosed.
func (p *Peer) Close() error {
	p.shutdown(ErrClosed)
	return nil
}

// Serve reads frames until the connection ends or ctx is done, dispatching
// replies to their callers and requests to the handler. It always returns
// a non-nil error and closes the connection.
func (p *Peer) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { p.shutdown(ctx.Err()) })
	defer stop()
	r := bufio.NewReaderSize(p.rwc, 32<<10)
	var buf []byte
	for {
		env, b, err := readFrame(r, buf)
		buf = b
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = ErrClosed
			}
			p.shutdown(err)
			return p.Err()
		}
		p.dispatch(ctx, env)
	}
}

func (p *Peer) dispatch(ctx context.Context, env *envelope) {
	switch {
	case env.Reply:
		p.deliver(env)
	case env.ID == 0:
		p.serveNotification(ctx, env)
	default:
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		go func() {
			defer func() { <-p.sem }()
			p.serveCall(ctx, env)
		}()
	}
}

func (p *Peer) deliver(env *envelope) {
	p.mu.Lock()
	ch, ok := p.pending[env.ID]
	delete(p.pending, env.ID)
	p.mu.Unlock()
	if ok {
		ch <- env // buffered; the caller may have gone
	}
}

func (p *Peer) serveNotification(ctx context.Context, env *envelope) {
	if p.handler == nil {
		return
	}
	if _, err := p.handler(ctx, env.Method, env.Body); err != nil {
		p.log.Warn("control notification failed", "method", env.Method, "err", err)
	}
}

func (p *Peer) serveCall(ctx context.Context, env *envelope) {
	reply := &envelope{ID: env.ID, Reply: true}
	result, err := p.handle(ctx, env)
	if err == nil {
		reply.Body, err = json.Marshal(result)
	}
	if err != nil {
		reply.Err = asRemote(err)
	}
	if werr := p.write(reply); werr != nil {
		p.log.Debug("control reply not sent", "method", env.Method, "err", werr)
	}
}

func (p *Peer) handle(ctx context.Context, env *envelope) (any, error) {
	if p.handler == nil {
		return nil, NewError(CodeInternal, "no handler for "+env.Method)
	}
	return p.handler(ctx, env.Method, env.Body)
}

func asRemote(err error) *RemoteError {
	var re *RemoteError
	if errors.As(err, &re) {
		return re
	}
	return NewError(CodeInternal, err.Error())
}

// Call sends a request and decodes the reply into resp (which may be nil).
// A RemoteError is returned as is; a connection failure wraps ErrClosed.
func (p *Peer) Call(ctx context.Context, method string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("control: encode %s: %w", method, err)
	}
	id, ch, err := p.register()
	if err != nil {
		return err
	}
	defer p.unregister(id)
	if err := p.write(&envelope{ID: id, Method: method, Body: body}); err != nil {
		return fmt.Errorf("control: call %s: %w", method, err)
	}
	select {
	case env := <-ch:
		return decodeReply(method, env, resp)
	case <-p.done:
		return fmt.Errorf("control: call %s: %w", method, p.Err())
	case <-ctx.Done():
		return fmt.Errorf("control: call %s: %w", method, ctx.Err())
	}
}

func decodeReply(method string, env *envelope, resp any) error {
	if env.Err != nil {
		return env.Err
	}
	if resp == nil || len(env.Body) == 0 {
		return nil
	}
	if err := json.Unmarshal(env.Body, resp); err != nil {
		return fmt.Errorf("control: decode reply to %s: %w", method, err)
	}
	return nil
}

// Notify sends a message that gets no reply.
func (p *Peer) Notify(ctx context.Context, method string, msg any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("control: encode %s: %w", method, err)
	}
	if err := p.write(&envelope{Method: method, Body: body}); err != nil {
		return fmt.Errorf("control: notify %s: %w", method, err)
	}
	return nil
}

func (p *Peer) register() (uint64, chan *envelope, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return 0, nil, p.err
	}
	p.nextID++
	ch := make(chan *envelope, 1)
	p.pending[p.nextID] = ch
	return p.nextID, ch, nil
}

func (p *Peer) unregister(id uint64) {
	p.mu.Lock()
	delete(p.pending, id)
	p.mu.Unlock()
}

func (p *Peer) write(env *envelope) error {
	frame, err := appendFrame(nil, env)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.Err()
	default:
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if _, err := p.rwc.Write(frame); err != nil {
		p.shutdown(err)
		return err
	}
	return nil
}

// shutdown records why the connection ended, closes it and wakes callers.
func (p *Peer) shutdown(cause error) {
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return
	}
	if cause == nil {
		cause = ErrClosed
	}
	p.err = cause
	p.pending = map[uint64]chan *envelope{}
	p.mu.Unlock()
	close(p.done)
	p.rwc.Close()
}
