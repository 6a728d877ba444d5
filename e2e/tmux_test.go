package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testutil"
)

// tmuxConf keeps a pane's text after its command ends, and gives the pane
// the whole window.
const tmuxConf = "set -g status off\nset -g remain-on-exit on\n"

// Tmux is a private tmux server: a real terminal for the ssh binary.
type Tmux struct {
	t    *testing.T
	sock string
	conf string
}

// NewTmux prepares a tmux server on a private socket, killed at cleanup.
// It skips the test when there is no tmux binary.
func NewTmux(t *testing.T) *Tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed; CI installs it")
	}
	dir := shortTempDir(t)
	x := &Tmux{t: t, sock: filepath.Join(dir, "tmux.sock"), conf: filepath.Join(dir, "tmux.conf")}
	if err := os.WriteFile(x.conf, []byte(tmuxConf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.try("kill-server") })
	return x
}

// try runs one tmux command and returns its output.
func (x *Tmux) try(args ...string) (string, error) {
	cmd := exec.Command("tmux", append([]string{"-S", x.sock, "-f", x.conf}, args...)...)
	cmd.Env = withoutEnv(os.Environ(), "TMUX") // not nested in a tmux the tests run in
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Cmd runs one tmux command, failing the test if it fails.
func (x *Tmux) Cmd(args ...string) string {
	x.t.Helper()
	out, err := x.try(args...)
	if err != nil {
		x.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return out
}

// exitMark is printed in the pane with argv's exit status when it ends.
// tmux 3.3a sometimes fails to reap a pane's process, leaving
// #{pane_dead_status} empty, so the status is printed instead.
var exitMark = regexp.MustCompile(`\[exited (\d+)\]`)

// Start opens a detached session name of cols x rows running argv. When
// argv ends, the pane's shell prints exitMark and stays (reading its
// terminal): tmux may lose the last output of a pane whose processes all
// exit within moments of writing it, and that output is often what a
// test reads (the one line a refused user is told, the exit mark).
func (x *Tmux) Start(name string, cols, rows int, argv []string) {
	x.t.Helper()
	x.Cmd("new-session", "-d", "-s", name, "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows),
		shellQuote(argv)+`; echo "[exited $?]"; read _`)
}

// Screen is the visible text of the session's pane.
func (x *Tmux) Screen(name string) string {
	x.t.Helper()
	return x.Cmd("capture-pane", "-p", "-t", name)
}

// WaitScreen polls the pane until cond holds for its text, for at most
// 10 s, and returns that text.
func (x *Tmux) WaitScreen(name, what string, cond func(string) bool) string {
	x.t.Helper()
	var s string
	if !testutil.Poll(10*time.Second, func() bool { s = x.Screen(name); return cond(s) }) {
		x.t.Fatalf("timed out waiting for %s; pane shows:\n%s", what, s)
	}
	return s
}

// WaitText waits until the pane shows want.
func (x *Tmux) WaitText(name, want string) string {
	x.t.Helper()
	return x.WaitScreen(name, strconv.Quote(want), func(s string) bool { return strings.Contains(s, want) })
}

// WaitExit waits until the pane's command has ended and returns its exit
// status.
func (x *Tmux) WaitExit(name string) int {
	x.t.Helper()
	screen := x.WaitScreen(name, "the command to end", exitMark.MatchString)
	status, err := strconv.Atoi(exitMark.FindStringSubmatch(screen)[1])
	if err != nil {
		x.t.Fatal(err)
	}
	return status
}

// withoutEnv returns env without the variable key.
func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}
