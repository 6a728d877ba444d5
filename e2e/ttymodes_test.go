package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// modesApps print the terminal modes, and show what a line typed into
// the terminal becomes.
const modesApps = `[app.stty]
argv = ["stty", "-a"]
user = "nobody"
[app.od]
argv = ["sh", "-c", "stty -echo; echo ready; od -c"]
user = "nobody"
`

// modesTarget is one server the stock client logs in to: the command line
// after ssh's options, for "stty -a" and for the od app.
type modesTarget struct {
	name      string
	o         *OpenSSH
	key       string
	stty, odc []string
}

// TestOpenSSHTerminalModes checks that the modes the stock client sends in
// its pty-req reach the app's PTY: a client terminal with erase ^H and
// -ixon (and iutf8, which tmux sets on its panes) gives an app those
// modes, and Backspace after é erases both of its bytes. A private sshd,
// when there is one, must show the same stty -a and od output.
func TestOpenSSHTerminalModes(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, Extra: modesApps, ExtraApps: []string{"stty", "od"}})
	gw := GatewayOpenSSH(t, c, "gw1")
	x := NewTmux(t)
	gwKey := gw.Key(t, "alice", c.Alice)
	targets := []modesTarget{{name: "switchyard", o: gw, key: gwKey,
		stty: []string{gw.At("stty")}, odc: []string{gw.At("od")}}}
	if ok, why := haveSSHD(); ok {
		d := StartSSHD(t, c.Alice.PublicKey())
		sd := NewOpenSSH(t, d.Addr, d.HostKey)
		at := sd.At(d.User)
		targets = append(targets, modesTarget{name: "sshd", o: sd, key: sd.Key(t, "alice", c.Alice),
			stty: []string{at, "stty -a"}, odc: []string{at, "stty -echo; echo ready; od -c"}})
	} else {
		t.Logf("no comparison with sshd: %s", why)
	}
	var sttys, ods []string
	for _, tg := range targets {
		sttys = append(sttys, sttyThrough(t, x, tg))
		ods = append(ods, odThrough(t, x, tg))
	}
	for _, want := range []string{`erase = \^H;`, `\s-ixon\s`, `\siutf8\s`} {
		if !regexp.MustCompile(want).MatchString(sttys[0]) {
			t.Errorf("stty -a through Switchyard lacks %q:\n%s", want, sttys[0])
		}
	}
	if !regexp.MustCompile(`0000000 +a +x +\\n\n`).MatchString(ods[0]) {
		t.Errorf("od -c through Switchyard of a é Backspace x; want a x \\n; pane shows:\n%s", ods[0])
	}
	for i := 1; i < len(targets); i++ {
		if sttys[i] != sttys[0] {
			t.Errorf("stty -a through Switchyard:\n%s\nthrough %s:\n%s", sttys[0], targets[i].name, sttys[i])
		}
		if ods[i] != ods[0] {
			t.Errorf("od -c through Switchyard:\n%s\nthrough %s:\n%s", ods[0], targets[i].name, ods[i])
		}
	}
}

// sttyThrough runs stty -a through tg with the client's terminal set to
// erase ^H -ixon, and returns what it printed.
func sttyThrough(t *testing.T, x *Tmux, tg modesTarget) string {
	t.Helper()
	name := "stty-" + tg.name
	ssh := shellQuote(append([]string{"ssh"}, tg.o.Args(tg.key, append([]string{"-tt"}, tg.stty...)...)...))
	x.Start(name, 100, 30, []string{"sh", "-c", "stty erase ^H -ixon && " + ssh})
	if status := x.WaitExit(name); status != 0 {
		t.Fatalf("ssh to %s exited %d; pane shows:\n%s", tg.name, status, x.Screen(name))
	}
	return paneOutput(x, name)
}

// odThrough types a é Backspace x Enter Ctrl-D into od -c through tg and
// returns what od printed.
func odThrough(t *testing.T, x *Tmux, tg modesTarget) string {
	t.Helper()
	name := "od-" + tg.name
	x.Start(name, 100, 30, append([]string{"ssh"}, tg.o.Args(tg.key, append([]string{"-tt"}, tg.odc...)...)...))
	x.WaitText(name, "ready")
	x.Cmd("send-keys", "-t", name, "a")
	x.Cmd("send-keys", "-t", name, "-l", "é")
	x.Cmd("send-keys", "-t", name, "BSpace", "x", "Enter", "C-d")
	if status := x.WaitExit(name); status != 0 {
		t.Fatalf("ssh to %s exited %d; pane shows:\n%s", tg.name, status, x.Screen(name))
	}
	return paneOutput(x, name)
}

// paneOutput is the text of pane name, with its history (a new pane can
// start smaller than asked, scrolling its first lines out of sight), up to
// the exit mark, without ssh's "Connection to ... closed." line.
func paneOutput(x *Tmux, name string) string {
	var keep []string
	for _, l := range strings.Split(x.Cmd("capture-pane", "-p", "-S", "-", "-t", name), "\n") {
		if exitMark.MatchString(l) {
			break
		}
		if !strings.HasPrefix(l, "Connection to ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
