package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"switchyard/control"
	"switchyard/internal/testutil"
)

// Volatile parts of a picker screen, masked before comparing with a
// golden file.
var (
	// The availability hint depends on the machine's load average; the
	// spaces before it on the width of the widest hint.
	// It may be clipped ("1 server, moderate lo…").
	hintMask = regexp.MustCompile(`\s+(\d+ servers?, \S.*|unavailable)$`)
	// Ages and idle times ("4s", "12m", "2h05m", "1d03h") and the padding
	// after them, which depends on their width.
	ageMask = regexp.MustCompile(`\b\d+(s|m|h\d\dm|d\d\dh)\b *`)
)

// maskScreen replaces the volatile parts of a screen and trims each line's
// trailing spaces.
func maskScreen(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		l = hintMask.ReplaceAllString(l, "  <hint>")
		l = ageMask.ReplaceAllString(l, "<age> ")
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

// golden compares a masked screen with testdata/name.golden, or rewrites
// that file with -update (go test ./e2e -run Picker -update).
func golden(t *testing.T, name, screen string) {
	t.Helper()
	testutil.Golden(t, name, maskScreen(screen))
}

// TestPickerWithOpenSSH drives the picker through the stock ssh client in
// tmux: `ssh -t alice@gw` with no app lists the apps, typing filters,
// a resize redraws, Enter launches the app in the same connection; once
// that client is gone, the picker offers the detached session and Enter
// resumes it, same pid; q leaves with status 0.
func TestPickerWithOpenSSH(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	o := GatewayOpenSSH(t, c, "gw1")
	alice := o.Key(t, "alice", c.Alice)
	x := NewTmux(t)
	ssh := append([]string{"ssh"}, o.Args(alice, "-t", o.At("alice"))...)

	x.Start("pick", 80, 24, ssh)
	golden(t, "picker-apps", x.WaitText("pick", "Apps (14)"))
	x.Cmd("send-keys", "-t", "pick", "-l", "tick")
	golden(t, "picker-filtered", x.WaitText("pick", "Apps (1 of 14)"))
	x.Cmd("resize-window", "-t", "pick", "-x", "100", "-y", "30")
	golden(t, "picker-resized", x.WaitScreen("pick", "a redraw at 100x30", func(s string) bool {
		help := strings.Split(strings.TrimRight(s, "\n"), "\n")
		return len(help) >= 30 && strings.Contains(s, "Apps (1 of 14)") && strings.HasSuffix(strings.TrimRight(help[1], " "), "1/1") &&
			len(strings.TrimRight(help[1], " ")) > 80
	}))
	x.Cmd("send-keys", "-t", "pick", "Enter")
	screen := x.WaitText("pick", "tick=2 ")
	m := pidRE.FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("no pid on screen:\n%s", screen)
	}
	pid, _ := strconv.Atoi(m[1])

	x.Cmd("kill-session", "-t", "pick") // the client goes away
	c.SessionOf(pid, control.StateDetached)

	x.Start("back", 80, 24, ssh)
	golden(t, "picker-sessions", x.WaitText("back", "Detached sessions (1)"))
	x.Cmd("send-keys", "-t", "back", "Enter")
	x.WaitScreen("back", "the resumed ticker", func(s string) bool {
		return regexp.MustCompile(`tick=\d+ pid=` + m[1]).MatchString(s)
	})
	c.SessionOf(pid, control.StateAttached)

	x.Start("leave", 80, 24, ssh)
	x.WaitText("leave", "Apps (14)")
	x.Cmd("send-keys", "-t", "leave", "q")
	if status := x.WaitExit("leave"); status != 0 {
		t.Errorf("ssh exited %d after q in the picker, want 0", status)
	}
}

// TestPickerVT100 checks the picker shows and filters on a terminal
// without colour.
func TestPickerVT100(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	o := GatewayOpenSSH(t, c, "gw1")
	alice := o.Key(t, "alice", c.Alice)
	x := NewTmux(t)
	x.Start("vt", 80, 24, append([]string{"env", "TERM=vt100", "ssh"}, o.Args(alice, "-t", o.At("alice"))...))
	x.WaitText("vt", "Apps (14)")
	x.Cmd("send-keys", "-t", "vt", "-l", "statu")
	x.WaitText("vt", "Apps (1 of 14)")
	x.Cmd("send-keys", "-t", "vt", "Enter")
	if status := x.WaitExit("vt"); status != 7 {
		t.Errorf("ssh exited %d after the status app, want its 7; pane shows:\n%s", status, x.Screen("vt"))
	}
}
