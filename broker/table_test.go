package broker

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"switchyard/control"
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

// TestExpectedCPU checks that a placement counts against its server the
// CPU its app is expected to use, as the server's report estimates it,
// until the server's next report, and that a report from an appd that
// says nothing of CPUs leaves the load average alone.
func TestExpectedCPU(t *testing.T) {
	b := testBroker(t)
	report := func(cpu float64) {
		b.serverReport("s2", control.ServerReport{Load: 0.9, CPU: cpu, CPUs: 4, AppCPU: map[string]float64{"top": 2}, MaxSessions: 10})
	}
	load := func() float64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.tab.Server(b.servers["s2"].row).Load
	}
	report(0.1)
	if got := load(); got != 0.1 {
		t.Fatalf("after the report: load %v, want the CPU in use 0.1", got)
	}
	placed := 0
	for range 4 {
		pl, err := b.Place(context.Background(), control.PlaceRequest{User: "bob", App: "top", Gateway: "gw1"})
		if err != nil {
			t.Fatal(err)
		}
		if pl.Server == "s2" {
			placed++
		}
	}
	if placed == 0 {
		t.Fatal("nothing placed on s2")
	}
	if got, want := load(), 0.1+0.5*float64(placed); math.Abs(got-want) > 1e-9 {
		t.Fatalf("after %d placements on s2: load %v, want %v", placed, got, want)
	}
	report(0.3)
	if got := load(); got != 0.3 {
		t.Fatalf("after the next report: load %v, want 0.3", got)
	}
	b.serverReport("s2", control.ServerReport{Load: 0.7, MaxSessions: 10})
	if got := load(); got != 0.7 {
		t.Fatalf("an old appd's report: load %v, want its load average 0.7", got)
	}
}
