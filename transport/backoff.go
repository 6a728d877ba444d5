package transport

import (
	"math/rand/v2"
	"time"
)

// backoff is the wait between attempts to reach a peer: it doubles after
// each attempt, from first (or max, if smaller) up to max, and each wait is drawn at random
// from the upper half of the current step (between step/2 and step). The
// randomness keeps the nodes of a cluster apart: after a broker restart
// every node's link drops at the same instant, and without it they would
// all retry in lockstep.
type backoff struct {
	first, max time.Duration
	step       time.Duration // the current step; first when zero
}

// next returns the wait before the next attempt and doubles the step.
func (b *backoff) next() time.Duration {
	if b.step <= 0 {
		b.step = min(b.first, b.max)
	}
	half := b.step / 2
	d := b.step - half + rand.N(half+1)
	b.step = min(2*b.step, b.max)
	return d
}

// reset starts the doubling again from first.
func (b *backoff) reset() { b.step = 0 }
