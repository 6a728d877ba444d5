package sshgate

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/bufcopy"
	"switchyard/control"
	"switchyard/sshmsg"
)

// exitReq is the exit-status or exit-signal request appd sent, kept to be
// forwarded to the client byte for byte.
type exitReq struct {
	Type    string
	Payload []byte
}

// status returns the exit status for the broker (-1 for a signal) and a
// short reason.
func (ex *exitReq) status() (int, string) {
	if ex.Type == "exit-status" {
		var m sshmsg.ExitStatus
		if gossh.Unmarshal(ex.Payload, &m) == nil {
			return int(m.Status), "exited"
		}
		return -1, "exited (bad status)"
	}
	var m sshmsg.ExitSignal
	if gossh.Unmarshal(ex.Payload, &m) == nil {
		return -1, "signal " + m.Signal
	}
	return -1, "signal"
}

// bridge joins a session's client channel to its appd channel for one
// attachment: it copies the bytes both ways and answers appd's requests.
// appd's requests, and the client's while the bridge runs (window-change,
// signal), are served by wait, in the session's own goroutine. An idle
// bridge holds one goroutine, the copy of the app's output, and nothing
// else (two without a PTY: see startBridge).
type bridge struct {
	app       gossh.Channel
	reqs      <-chan *gossh.Request // appd's requests
	copies    atomic.Int32          // output copies still running
	copied    chan struct{}         // closed when the output copies end
	errTo     io.Writer             // where the app's stderr goes when the channel closes; nil if copied all along
	errFrom   io.Reader             // the app's stderr, for errTo
	exit      *exitReq              // the first exit request appd sent
	takenOver bool                  // appd said a newer attachment replaced this one
}

// startBridge starts the copies: client input (read from stdin, unless it
// is nil) to appd (CloseWrite on EOF), and appd stdout and stderr to the
// client as raw bytes. wait must then be called to answer appd's requests.
//
// Under a PTY (pty true) the app's stderr is not copied as it comes but
// once the channel has closed, by wait: appd writes a PTY session's
// stderr only as the attachment ends (one line: why it ended, or that a
// newer attachment took over) and closes the channel right after, so the
// line reaches the client before the exit status as it did. That spares
// an idle PTY session a goroutine. Without a PTY the app's stderr is a
// stream of its own, copied as it comes.
func startBridge(client gossh.Channel, stdin io.Reader, app gossh.Channel, appReqs <-chan *gossh.Request, act *activity, pty bool) *bridge {
	r := &bridge{app: app, reqs: appReqs, copied: make(chan struct{})}
	var appOut, appErr io.Reader = app, app.Stderr()
	if act != nil {
		appOut, appErr = touchReader{appOut, act}, touchReader{appErr, act}
	}
	if pty {
		r.errTo, r.errFrom = client.Stderr(), appErr
		r.copies.Store(1)
	} else {
		r.copies.Store(2)
		go r.output(client.Stderr(), appErr)
	}
	go r.output(client, appOut)
	if stdin == nil {
		return r // the caller copies the input (type input)
	}
	if act != nil {
		stdin = touchReader{stdin, act}
	}
	go func() {
		if err := copyBuf(app, stdin); err == nil {
			app.CloseWrite() // client EOF reaches appd as EOF
		}
	}()
	return r
}

// output copies one of appd's streams to the client; the last to end
// closes r.copied.
func (r *bridge) output(dst io.Writer, src io.Reader) {
	copyBuf(dst, src)
	if r.copies.Add(-1) == 0 {
		close(r.copied)
	}
}

// wait answers appd's requests until its channel closes, then returns the
// first exit request (nil if appd sent none) once appd's output has been
// copied. Meanwhile it serves the client's requests from client, when
// not nil (see clientRequests.foreground). If ctx ends first (the client
// left), it closes the appd channel, which makes appd detach a PTY
// session (or hang up the app: batch sessions, apps without a grace
// period), and waits at most grace for the channel to close and the
// output to end; drained is false if they did not.
func (r *bridge) wait(ctx context.Context, grace time.Duration, client *clientRequests) (ex *exitReq, drained bool) {
	ended := ctx.Done()
	var giveUp <-chan time.Time
	var creqs <-chan *gossh.Request
	if client != nil {
		creqs = client.foreground()
	}
	reqs, copied := r.reqs, r.copied
	for reqs != nil || copied != nil {
		select {
		case req, ok := <-reqs:
			if !ok {
				reqs = nil
				r.copyStderr()
				continue
			}
			r.answer(req)
			continue
		case <-copied:
			copied = nil
			continue
		case req, ok := <-creqs:
			if !client.serve(req, ok) {
				creqs = nil
			}
			continue
		case <-ended:
		case <-giveUp:
			if reqs != nil {
				go gossh.DiscardRequests(reqs)
			}
			return nil, false
		}
		ended = nil
		r.app.Close()
		t := time.NewTimer(grace)
		defer t.Stop()
		giveUp = t.C
	}
	return r.exit, true
}

// copyStderr copies to the client what the app wrote on stderr, when
// that waits for the channel's end (see startBridge). The channel has
// closed: what it holds ends in EOF.
func (r *bridge) copyStderr() {
	if r.errTo != nil {
		copyBuf(r.errTo, r.errFrom)
		r.errTo, r.errFrom = nil, nil
	}
}

// answer answers one of appd's requests, keeping the first exit-status
// or exit-signal and noting control.RequestTakenOver.
func (r *bridge) answer(req *gossh.Request) {
	isExit := req.Type == "exit-status" || req.Type == "exit-signal"
	if isExit && r.exit == nil {
		r.exit = &exitReq{Type: req.Type, Payload: req.Payload}
	}
	if req.Type == control.RequestTakenOver {
		r.takenOver = true
	}
	if req.WantReply {
		req.Reply(isExit, nil)
	}
}

// copyBuf copies src to dst; nil when src ended with EOF. See package
// bufcopy: an idle bridge holds 512 bytes, not 32 KiB.
func copyBuf(dst io.Writer, src io.Reader) error { return bufcopy.Copy(dst, src, nil) }
