package appd

import (
	"sync"
	"testing"

	"switchyard/control"
)

// TestShimConcurrentSpawns: many limited batch sessions started at once,
// as another Unix user, all start and exit 0.
func TestShimConcurrentSpawns(t *testing.T) {
	app := App{Argv: []string{"/usr/bin/echo", "hi"}, User: "nobody", Limits: withTasks(testLimits)}
	m := newShimManager(t, map[string]App{"echo": app})
	if cg, err := DiscoverCgroups(); err == nil {
		m.Cgroups = cg
		t.Logf("with control groups: %s", cg)
	}
	c := dialManager(t, m)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 50; i++ {
				s, err := trySpawn(t, c, control.SpawnRequest{App: "echo", User: "alice"})
				if err != nil {
					errs <- err
					continue
				}
				s.waitEnd()
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 3 {
			t.Errorf("spawn: %v", err)
		}
	}
	if n > 0 {
		t.Errorf("%d of 400 spawns failed", n)
	}
}

func withTasks(l Limits) Limits {
	l.Tasks = 64
	return l
}
