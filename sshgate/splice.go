package sshgate

import (
	"context"
	"sync"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/bufcopy"
)

// splice joins two SSH channels as if they were one: everything one side's
// peer sends reaches the other side's peer. That is data and extended data
// (stderr) in both directions, each side's EOF as a CloseWrite on the other
// once its data is through, every channel request in both directions with
// its want-reply honoured (the reply is the other side's), and close: when
// one side's peer closes its channel, the other side is closed once what
// the first sent has been copied. An exit-status or exit-signal request is
// forwarded only after the data and stderr sent before it, so the peer
// sees the session's last bytes first, as sshd orders them.
//
// splice returns once both channels are closed and every copy has ended.
// ctx ending closes both channels. aReqs and bReqs are the channels'
// request queues; splice drains them, as x/crypto/ssh requires.
func splice(ctx context.Context, a gossh.Channel, aReqs <-chan *gossh.Request, b gossh.Channel, bReqs <-chan *gossh.Request) {
	stop := context.AfterFunc(ctx, func() {
		a.Close()
		b.Close()
	})
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { pipe(b, a, aReqs) })
	wg.Go(func() { pipe(a, b, bReqs) })
	wg.Wait()
}

// pipe carries one direction of a splice: src's data, stderr and EOF to
// dst, src's requests to dst, and src's close to dst after its data. Its
// two copies are bufcopy's: idle, they hold a small buffer each, and
// borrow a large one only while data flows.
func pipe(dst, src gossh.Channel, reqs <-chan *gossh.Request) {
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		var wg sync.WaitGroup
		wg.Go(func() { bufcopy.Copy(dst, src, nil) })
		wg.Go(func() { bufcopy.Copy(dst.Stderr(), src.Stderr(), nil) })
		wg.Wait()
		dst.CloseWrite() // fails only if dst is gone, which its own pipe sees
	}()
	for req := range reqs {
		if req.Type == "exit-status" || req.Type == "exit-signal" {
			<-copied // the session's output first; its peer has sent EOF or will close
		}
		ok, err := dst.SendRequest(req.Type, req.WantReply, req.Payload)
		if req.WantReply {
			req.Reply(ok && err == nil, nil)
		}
	}
	// src's peer closed the channel: its data is all buffered, and the
	// copies end at its EOF.
	<-copied
	dst.Close()
}
