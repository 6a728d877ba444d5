package appd

import (
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNotifyExitOfAZombie(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sh", "-c", "exit 7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var info unix.Siginfo // wait until it is a zombie, leaving it one
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	got := make(chan bool, 1)
	if err := notifyExit(cmd.Process.Pid, func(zombie bool) { got <- zombie }); err != nil {
		t.Fatalf("notifyExit: %v", err)
	}
	if !<-got {
		t.Error("notifyExit said the process might not be a zombie")
	}
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 7 {
		t.Errorf("Wait = %v, exit code %d, want 7", err, cmd.ProcessState.ExitCode())
	}
}

func TestReapWithoutPidfd(t *testing.T) {
	t.Parallel()
	s := &session{cmd: exec.Command("sh", "-c", "exit 5"), exited: make(chan struct{})}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go s.reapBlocking()
	<-s.exited
	if s.result != (exitResult{status: 5}) || s.signal(unix.SIGHUP) != errReaped {
		t.Errorf("result %+v, reaped %v; want exit 5, reaped", s.result, s.signal(unix.SIGHUP) == errReaped)
	}
}
