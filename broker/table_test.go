package broker

import (
	"math/rand/v2"
	"testing"
)

// TestQueue holds queue to a slice under random pushes and pops, and
// checks that a queue whose length stays bounded stops growing.
func TestQueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q queue[int]
	var model []int
	next, most := 0, 0
	for step := range 100_000 {
		if rng.IntN(2) == 0 && len(model) < 100 {
			q.push(next)
			model = append(model, next)
			next++
		} else if len(model) > 0 {
			q.pop()
			model = model[1:]
		}
		most = max(most, len(model))
		x, ok := q.front()
		if ok != (len(model) > 0) || ok && x != model[0] {
			t.Fatalf("step %d: front %d, %v; want %v", step, x, ok, model)
		}
		if got := len(q.items) - q.head; got != len(model) {
			t.Fatalf("step %d: %d queued, want %d", step, got, len(model))
		}
	}
	if cap(q.items) > 4*most {
		t.Errorf("room for %d items, at most %d ever queued", cap(q.items), most)
	}
}
