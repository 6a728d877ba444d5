package broker

import (
	"errors"
	"fmt"
)

// Ready says whether this broker does its job now, for GET /readyz: it
// places (it leads, or it is the only broker) and at least one app
// server is healthy; or it stands by while another broker leads. The
// text says which; the error why not: no leader is known (an election
// under way, the store unreachable), or this broker leads with no
// healthy server to place on.
func (b *Broker) Ready() (string, error) {
	lead := b.leadership()
	if !lead.Leading() {
		leader, _ := lead.Leader()
		if leader == "" {
			return "", errors.New("no broker leads")
		}
		return fmt.Sprintf("standing by; %s leads", leader), nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	now, healthy := b.now(), 0
	for i := range b.table {
		if b.healthy(b.table[i].st, now) {
			healthy++
		}
	}
	if healthy == 0 {
		return "", errors.New("no app server is healthy")
	}
	return fmt.Sprintf("placing on %d healthy servers", healthy), nil
}
