package appd

import (
	"crypto/rand"
	"crypto/sha256"
	"io"
	"testing"

	"switchyard/control"
)

func TestBatchCatBinary(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"cat": {Argv: []string{"cat"}, User: "nobody"}})
	s := spawn(t, dialManager(t, m), control.SpawnRequest{App: "cat", User: "alice"})
	data := make([]byte, 8<<20)
	rand.Read(data)
	go func() {
		s.ch.Write(data)
		s.ch.CloseWrite() // stdin EOF ends cat
	}()
	if got := s.exitStatus(); got != 0 {
		t.Errorf("exit status = %d, want 0", got)
	}
	out, errOut, _ := s.waitEnd()
	if len(out) != len(data) || sha256.Sum256([]byte(out)) != sha256.Sum256(data) {
		t.Errorf("stdout: %d bytes, sha256 differs from the %d bytes sent", len(out), len(data))
	}
	if errOut != "" {
		t.Errorf("stderr = %q, want empty", errOut)
	}
}

func TestBatchStderrIsExtendedData(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"both": sh(`printf 'out\n'; printf 'err\n' >&2; exit 5`)})
	s := spawn(t, dialManager(t, m), control.SpawnRequest{App: "both", User: "alice"})
	if got := s.exitStatus(); got != 5 {
		t.Errorf("exit status = %d, want 5", got)
	}
	out, errOut, _ := s.waitEnd()
	if out != "out\n" || errOut != "err\n" {
		t.Errorf("stdout %q, stderr %q; want %q, %q", out, errOut, "out\n", "err\n")
	}
}

// TestBatchArgsAreArgv checks that allowed arguments reach the app as
// separate argv entries, with no shell in between.
func TestBatchArgsAreArgv(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{
		"printf": {Argv: []string{"printf", "[%s]"}, AllowArgs: true, User: "nobody"},
	})
	s := spawn(t, dialManager(t, m), control.SpawnRequest{
		App: "printf", User: "alice", Args: []string{"a b", "$HOME", "; id"},
	})
	s.ch.CloseWrite()
	if got := s.exitStatus(); got != 0 {
		t.Errorf("exit status = %d, want 0", got)
	}
	if out, _, _ := s.waitEnd(); out != "[a b][$HOME][; id]" {
		t.Errorf("output = %q", out)
	}
}

func TestBatchStdinEOF(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"wc": {Argv: []string{"wc", "-c"}, User: "nobody"}})
	s := spawn(t, dialManager(t, m), control.SpawnRequest{App: "wc", User: "alice"})
	io.WriteString(s.ch, "12345")
	s.ch.CloseWrite()
	if got := s.exitStatus(); got != 0 {
		t.Errorf("exit status = %d, want 0", got)
	}
	if out, _, _ := s.waitEnd(); out != "5\n" {
		t.Errorf("output = %q, want %q", out, "5\n")
	}
}
