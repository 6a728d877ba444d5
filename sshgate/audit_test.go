package sshgate

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/audit"
	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// TestAuditLogins: a refused key and the accepted certificate of the same
// connection are audited with one conn id; the certificate's key id and
// serial are named, the login escaped; the session's open and close
// carry the same conn, which the placement request carries too.
func TestAuditLogins(t *testing.T) {
	trail := &testutil.Buffer{}
	var log *audit.Log
	e := newEnv(t, func(s *Server) {
		log = audit.New(audit.Options{Node: "gw1", Out: trail})
		s.Audit = log
	})
	d := e.withAuthDir()
	ca := sshtest.NewSigner(t)
	d.cas[string(ca.PublicKey().Marshal())] = true
	cert := certFor(t, ca, sshtest.NewSigner(t), func(c *gossh.Certificate) { c.KeyId = "alice-laptop\x1b[2J"; c.Serial = 4242 })
	stranger := sshtest.NewSigner(t)
	client, err := e.dialConfig(e.clientConfig("alice", gossh.PublicKeys(stranger, cert)))
	if err != nil {
		t.Fatal(err)
	}
	if r := e.run(client, "htop", runOpts{}); r.status != 0 {
		t.Fatalf("session: %+v", r)
	}
	recv(t, e.placer.ended, "the session's end") // notified after session.close is emitted
	log.Flush(context.Background())
	evs := map[string]audit.Event{}
	for _, line := range strings.Split(strings.TrimSpace(trail.String()), "\n") {
		ev, ok := audit.Parse([]byte(line))
		if !ok {
			t.Fatalf("audit line %q", line)
		}
		evs[ev.Event] = ev
	}
	refused, accepted := evs["auth.refused"], evs["auth.accepted"]
	conn := audit.ConnOf(accepted)
	if conn == "" || audit.ConnOf(refused) != conn {
		t.Fatalf("conn ids: refused %q, accepted %q", audit.ConnOf(refused), conn)
	}
	if refused.Fields["key"] != gossh.FingerprintSHA256(stranger.PublicKey()) || refused.Fields["reason"] != "unknown key" {
		t.Errorf("refused event %+v", refused.Fields)
	}
	if accepted.User != "alice" || accepted.Fields["method"] != "publickey" ||
		accepted.Fields["cert_key_id"] != `alice-laptop\x1b[2J` || accepted.Fields["cert_serial"] != num(4242) ||
		accepted.Fields["cert_ca"] != gossh.FingerprintSHA256(ca.PublicKey()) {
		t.Errorf("accepted event %+v", accepted.Fields)
	}
	for _, name := range []string{"session.open", "session.close"} {
		if ev := evs[name]; audit.ConnOf(ev) != conn || ev.Session == "" || ev.User != "alice" {
			t.Errorf("%s event %+v", name, ev)
		}
	}
	if got := recv(t, e.placer.reqs, "the place request").Conn; got != conn {
		t.Errorf("the placement request carried conn %q, want %q", got, conn)
	}
}

// num is n as a decoded audit field holds it.
func num(n int) any { return json.Number(strconv.Itoa(n)) }
