package appd

import (
	"runtime"
	"sync"
)

// Apps are started with Pdeathsig (SIGKILL when appd dies). The kernel
// sends that signal when the thread that forked the app exits, not the
// process (go.dev/issue/27505), and the Go runtime ends a thread when a
// goroutine locked to it exits. Locking the spawning goroutine for the
// spawn alone is not enough: the goroutine goes on to other work or ends,
// and then the thread is either returned to the pool, where another
// goroutine may lock it and end, or ended on the spot, killing the app at
// once. So every app is started by one goroutine locked to its thread for
// the life of the process, which never ends: its thread dies only with
// appd.

// spawnJob is one function to run on the spawn thread.
type spawnJob struct {
	f    func() error
	done chan error
}

var (
	spawnOnce sync.Once
	spawnJobs chan spawnJob
)

// onSpawnThread runs f on the spawn thread and returns its error. f must
// not block for long: spawns wait for one another.
func onSpawnThread(f func() error) error {
	spawnOnce.Do(func() {
		spawnJobs = make(chan spawnJob)
		go spawnLoop(spawnJobs)
	})
	job := spawnJob{f: f, done: make(chan error, 1)}
	spawnJobs <- job
	return <-job.done
}

// spawnLoop runs jobs forever on a thread of its own.
func spawnLoop(jobs <-chan spawnJob) {
	runtime.LockOSThread() // never unlocked: the thread must outlive every app
	for job := range jobs {
		job.done <- job.f()
	}
}
