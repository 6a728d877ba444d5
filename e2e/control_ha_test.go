package e2e

import (
	"strings"
	"syscall"
	"testing"

	"switchyard/audit"
)

// TestHALockSurvivesLeaderKill: a lock made through the CLI is kept in
// etcd; when its leader is killed with -9, the new leader refuses the
// user as the old one did, and unlocks.
func TestHALockSurvivesLeaderKill(t *testing.T) {
	h := newHACluster(t, []string{"gw1"}, []string{"s1"}, procOptions{})
	h.WaitUp()
	cs := h.waitCandidates(nil)
	if out, err := h.cli("lock", "alice", "-reason", "ha review"); err != nil || out != "alice: locked\n" {
		t.Fatalf("broker lock: %q, %v", out, err)
	}
	h.Signal(cs[0].name, syscall.SIGKILL)
	leader := h.waitNewLeader(cs[0])
	o := h.openSSH("gw1")
	key := o.Key(t, "alice", h.Alice)
	h.Eventually("the new leader "+leader.name+" to refuse alice", func() bool {
		_, errOut, code := o.Run(t, nil, key, "-T", "-o", "LogLevel=ERROR", o.At("alice"), "echo", "hi")
		if code == 0 {
			t.Fatalf("locked alice ran an app after the leader was killed")
		}
		return code == 77 && string(errOut) == lockedLine+": ha review\n"
	})
	if st, err := h.statusOf(leader.name); err != nil || len(st.Locks) != 1 || st.Locks[0].User != "alice" {
		t.Fatalf("new leader's status: %+v, %v", st.Locks, err)
	}
	if out, err := h.cli("unlock", "alice"); err != nil || out != "alice: unlocked\n" {
		t.Fatalf("broker unlock through the new leader: %q, %v", out, err)
	}
	if out, errOut, code := o.Run(t, nil, key, "-T", "-o", "LogLevel=ERROR", o.At("alice"), "echo", "hi"); code != 0 || string(out) != "hi\n" {
		t.Fatalf("unlocked alice: exit %d, %q %q", code, out, errOut)
	}

	// broker audit reads every broker's own events: the lock at the
	// killed leader (started again), the refusals at the new one.
	h.Start(cs[0].name)
	h.Eventually(cs[0].name+"'s admin API", func() bool {
		_, err := h.statusOf(cs[0].name)
		return err == nil
	})
	out, err := h.cli("audit", "-user", "alice", "-json")
	if err != nil {
		t.Fatal(err)
	}
	var lockedBy, refusedBy string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		ev, ok := audit.Parse([]byte(line))
		switch {
		case !ok:
			t.Fatalf("audit line %q", line)
		case ev.Event == "admin.lock" && ev.Fields["outcome"] == "ok":
			lockedBy = ev.Node
		case ev.Event == "place" && ev.Fields["outcome"] == "locked":
			refusedBy = ev.Node
		}
	}
	if lockedBy != cs[0].name || refusedBy != leader.name {
		t.Errorf("audit: lock written by %q (want %s), refusal by %q (want %s):\n%s", lockedBy, cs[0].name, refusedBy, leader.name, out)
	}
}
