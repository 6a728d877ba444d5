package appd

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/bufcopy"
	"switchyard/control"
	"switchyard/sshmsg"
)

// attachment relays one session to one SSH channel. A PTY session may have
// several over its life, one at a time; a batch session has exactly one.
type attachment struct {
	ch   ssh.Channel
	reqs <-chan *ssh.Request
	wg   sync.WaitGroup // every goroutine of this attachment
}

func newAttachment(ch ssh.Channel, reqs <-chan *ssh.Request) *attachment {
	return &attachment{ch: ch, reqs: reqs}
}

// serve relays a batch session on ch until the app has ended and its
// output and exit status are sent, then waits for every goroutine it
// started. A batch session is hung up as soon as its channel goes away.
func (s *session) serve(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request) {
	a := newAttachment(ch, reqs)
	a.sendStarted(s.info, control.InputCount{}) // a failure means the channel is gone: serveRequests sees that
	stop := s.hangupWhenDone(ctx)
	a.wg.Go(func() {
		a.serveRequests(s)
		s.hangupLater("channel closed") // nothing to do if the app is reaped
	})
	s.relayBatch(a)
	stop()
	a.finish(s.exitResult())
	a.wg.Wait()
}

// relayInput serves a PTY attachment: the client's bytes go to the
// terminal and its requests are applied, until the channel closes. Then
// the session is detached from it (unless something newer replaced it),
// and relayInput waits for the attachment's goroutines.
func (a *attachment) relayInput(s *session) {
	a.wg.Go(func() { bufcopy.Copy(attachInput{s, a}, a.ch, nil) }) // channel EOF is ignored, as sshd does
	a.serveRequests(s)
	s.lost(a)
	a.wg.Wait()
}

// sendStarted tells the gateway the session id and pid, and with in the
// input count this attachment starts from.
func (a *attachment) sendStarted(info control.SessionInfo, in control.InputCount) error {
	payload, err := json.Marshal(control.Started{ID: info.ID, PID: info.PID, InputCount: in})
	if err != nil {
		return err
	}
	_, err = a.ch.SendRequest(control.RequestStarted, false, payload)
	return err
}

// finish ends the channel the way sshd does: EOF, exit status, close. The
// errors only mean the gateway has gone already. A PTY attachment's
// stderr carries only the note written here or by takeOver, right before
// the channel closes: the gateway copies it once the channel has closed
// (sshgate's startBridge), so nothing may be written there earlier.
func (a *attachment) finish(res exitResult) {
	if res.note != "" {
		a.ch.Stderr().Write([]byte(res.note))
	}
	a.ch.CloseWrite()
	res.send(a.ch)
	a.ch.Close()
}

// takeoverLine is what an attachment replaced by a newer one is told.
const takeoverLine = "switchyard: session taken over by a newer connection\r\n"

// takeOver ends an attachment a newer one has replaced: RequestTakenOver,
// one line on stderr, exit status 0, close. A client that does not read
// gets killGrace to take it, then the channel is closed anyway.
func (a *attachment) takeOver() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.ch.SendRequest(control.RequestTakenOver, false, nil)
		a.ch.Stderr().Write([]byte(takeoverLine))
		exitResult{}.send(a.ch)
		a.ch.CloseWrite()
		a.ch.Close()
	}()
	t := time.NewTimer(killGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.ch.Close()
	}
}

// serveRequests answers the gateway's channel requests until the channel
// closes or its connection dies. Every request must be consumed:
// x/crypto/ssh blocks the whole connection while a channel's request queue
// is full.
func (a *attachment) serveRequests(s *session) {
	for req := range a.reqs {
		ok := s.handleRequest(req)
		if req.WantReply {
			req.Reply(ok, nil)
		}
	}
}

// handleRequest applies one "window-change" or "signal" request and
// reports whether it did.
func (s *session) handleRequest(req *ssh.Request) bool {
	switch req.Type {
	case "window-change":
		var wc sshmsg.WindowChange
		if s.term == nil || ssh.Unmarshal(req.Payload, &wc) != nil {
			return false
		}
		return s.resize(wc.Cols, wc.Rows, wc.Width, wc.Height) == nil
	case "signal":
		var sig sshmsg.Signal
		if ssh.Unmarshal(req.Payload, &sig) != nil {
			return false
		}
		num, ok := rfcSignals[sig.Name]
		return ok && s.signal(num) == nil
	}
	return false
}

// copyCounted copies src to dst, adding the bytes written to n, until src
// ends or a write fails; nil for io.EOF. See package bufcopy.
func copyCounted(dst io.Writer, src io.Reader, n *atomic.Int64) error {
	return bufcopy.Copy(dst, src, n)
}
