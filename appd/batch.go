package appd

import (
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
)

// pipes are a batch session's stdin, stdout and stderr, appd's ends.
type pipes struct {
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr io.ReadCloser
}

// startBatch starts s.cmd with three pipes, in a new session (Setsid) so
// that it has its own process group to signal, and registers that group
// with the keeper. Call it on the spawn thread (see onSpawnThread): the
// app gets SIGKILL when that thread dies.
func (s *session) startBatch(cred *syscall.Credential) error {
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: cred, Pdeathsig: syscall.SIGKILL}
	p, err := newPipes(s.cmd)
	if err != nil {
		return err
	}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("exec.Cmd.Start: %w", err)
	}
	s.pipe = p
	s.pid = s.cmd.Process.Pid
	s.keeper.Add(s.pid) // a failure is logged; Pdeathsig still holds
	return nil
}

// newPipes creates the three pipes of cmd.
func newPipes(cmd *exec.Cmd) (*pipes, error) {
	var p pipes
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("exec.Cmd.StdinPipe: %w", err)
	}
	if p.stdout, err = cmd.StdoutPipe(); err != nil {
		p.stdin.Close()
		return nil, fmt.Errorf("exec.Cmd.StdoutPipe: %w", err)
	}
	if p.stderr, err = cmd.StderrPipe(); err != nil {
		p.stdin.Close()
		p.stdout.Close()
		return nil, fmt.Errorf("exec.Cmd.StderrPipe: %w", err)
	}
	return &p, nil
}

// close closes appd's ends of the pipes; blocked copies then end.
func (p *pipes) close() {
	p.stdin.Close()
	p.stdout.Close()
	p.stderr.Close()
}

// relayBatch copies channel data to stdin (channel EOF closes stdin), stdout
// to channel data and stderr to extended data 1, bytes unchanged. It waits
// for both output copies to reach EOF before reaping the app, as os/exec
// requires for StdoutPipe and StderrPipe.
func (s *session) relayBatch(a *attachment) {
	a.wg.Go(func() {
		copyCounted(s.pipe.stdin, a.ch, &s.in)
		s.pipe.stdin.Close()
	})
	var stderr sync.WaitGroup
	stderr.Go(func() { copyCounted(a.ch.Stderr(), s.pipe.stderr, &s.out) })
	copyCounted(a.ch, s.pipe.stdout, &s.out)
	stderr.Wait()
	s.reap()
}
