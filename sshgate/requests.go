package sshgate

import gossh "golang.org/x/crypto/ssh"

// clientRequests serves a session's channel requests from its client.
// While the session waits on something else (its start, the broker,
// appd, the picker, a ride-through) a goroutine of its own serves them
// (background); while the bridge to the app runs, the session's handler
// serves them in the same select that answers appd (foreground), so that
// an idle session does not keep a goroutine for them. One of the two
// receives from the channel at any time; the handler's goroutine alone
// switches between them.
type clientRequests struct {
	ss   *session
	ch   <-chan *gossh.Request
	gone func() // called once ch closes: the client left

	stop    chan struct{} // closed to end the goroutine; nil when none runs
	stopped chan struct{} // closed by the goroutine as it returns
	closed  bool          // ch has closed; written by whoever receives
}

// background starts the goroutine that serves the requests, unless the
// channel has closed.
func (c *clientRequests) background() {
	if c.closed || c.stop != nil {
		return
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	c.stop, c.stopped = stop, stopped
	go func() {
		defer close(stopped)
		for {
			select {
			case req, ok := <-c.ch:
				if !c.serve(req, ok) {
					return
				}
			case <-stop:
				return
			}
		}
	}()
}

// foreground stops the goroutine, once it has served the request in
// hand, and returns the channel for the caller to receive from and hand
// what it receives to serve; nil once the channel has closed.
func (c *clientRequests) foreground() <-chan *gossh.Request {
	if c.stop != nil {
		close(c.stop)
		<-c.stopped
		c.stop, c.stopped = nil, nil
	}
	if c.closed {
		return nil
	}
	return c.ch
}

// serve handles one receive from the channel: req, or, when !ok, the
// channel's end. It reports whether the channel is still open.
func (c *clientRequests) serve(req *gossh.Request, ok bool) bool {
	if !ok {
		c.closed = true
		c.gone()
		return false
	}
	c.ss.serveRequest(req)
	return true
}
