package sshgate

import (
	"context"
	"io"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/bufcopy"
	"switchyard/control"
)

// copyBufSize is the buffer of each relay copy.
const copyBufSize = 32 << 10

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
		var m exitStatusMsg
		if gossh.Unmarshal(ex.Payload, &m) == nil {
			return int(m.Status), "exited"
		}
		return -1, "exited (bad status)"
	}
	var m exitSignalMsg
	if gossh.Unmarshal(ex.Payload, &m) == nil {
		return -1, "signal " + m.Signal
	}
	return -1, "signal"
}

// relay copies one session between the client channel and the appd channel.
// The client's own requests (window-change, signal) are forwarded by the
// session's request loop.
type relay struct {
	done      chan struct{} // closed when both output copies and the request drain end
	exit      *exitReq      // set before done is closed; nil if appd sent none
	takenOver bool          // set before done is closed: appd said a newer attachment replaced this one
}

// startRelay starts the copies: client input (read from stdin) to appd
// (CloseWrite on EOF), appd stdout and stderr to the client as raw bytes,
// and a drain of appd's requests that keeps the first exit request.
func startRelay(client gossh.Channel, stdin io.Reader, app gossh.Channel, appReqs <-chan *gossh.Request, act *activity) *relay {
	r := &relay{done: make(chan struct{})}
	var appOut, appErr io.Reader = app, app.Stderr()
	if act != nil {
		stdin, appOut, appErr = touchReader{stdin, act}, touchReader{appOut, act}, touchReader{appErr, act}
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		copyBuf(client, appOut)
	}()
	go func() {
		defer wg.Done()
		copyBuf(client.Stderr(), appErr)
	}()
	go func() {
		defer wg.Done()
		r.exit, r.takenOver = drainApp(appReqs)
	}()
	go func() {
		if err := copyBuf(app, stdin); err == nil {
			app.CloseWrite() // client EOF reaches appd as EOF
		}
	}()
	go func() {
		wg.Wait()
		close(r.done)
	}()
	return r
}

// wait returns appd's exit request once appd's output has been copied and
// its channel has closed. If ctx ends first (the client left), it closes the
// appd channel, which makes appd detach a PTY session (or hang up the app:
// batch sessions, apps without a grace period), and waits at most grace for
// the channel to close; drained is false if it did not.
func (r *relay) wait(ctx context.Context, app gossh.Channel, grace time.Duration) (ex *exitReq, drained bool) {
	select {
	case <-r.done:
		return r.exit, true
	case <-ctx.Done():
	}
	app.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-r.done:
		return r.exit, true
	case <-t.C:
		return nil, false
	}
}

// drainApp answers appd's requests until its channel closes and returns the
// first exit-status or exit-signal, and whether appd sent
// control.RequestTakenOver.
func drainApp(reqs <-chan *gossh.Request) (ex *exitReq, takenOver bool) {
	for req := range reqs {
		isExit := req.Type == "exit-status" || req.Type == "exit-signal"
		if isExit && ex == nil {
			ex = &exitReq{Type: req.Type, Payload: req.Payload}
		}
		if req.Type == control.RequestTakenOver {
			takenOver = true
		}
		if req.WantReply {
			req.Reply(isExit, nil)
		}
	}
	return ex, takenOver
}

// copyBuf copies src to dst; nil when src ended with EOF. See package
// bufcopy: an idle relay holds 512 bytes, not 32 KiB.
func copyBuf(dst io.Writer, src io.Reader) error { return bufcopy.Copy(dst, src, nil) }
