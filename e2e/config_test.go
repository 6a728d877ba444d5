package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"switchyard/daemon"
)

// Every binary refuses a malformed config with file:line and what is wrong,
// and a non-zero exit status.
func TestMalformedConfigStopsEveryBinary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	bad := "[broker]\nlisten = \"127.0.0.1:7000\"\nlisen = \"typo\"\n\n[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\n\n[server.s1]\nlisten = \"127.0.0.1:7101\"\napps = [\"ghost\"]\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	runs := map[string]struct {
		run  daemon.RunFunc
		args []string
	}{
		"broker":       {daemon.Broker, nil},
		"slave":        {daemon.Slave, []string{"-node", "gw1"}},
		"appd":         {daemon.Appd, []string{"-node", "s1"}},
		"broker check": {daemon.Broker, nil},
	}
	for name, r := range runs {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"-config", path, "-state", t.TempDir()}, r.args...)
			if name == "broker check" {
				args = []string{"check", "-config", path}
			}
			err := r.run(context.Background(), args, daemon.Env{Stdout: &bytes.Buffer{}})
			var out bytes.Buffer
			code := daemon.ExitCode(name, err, &out)
			msg := out.String()
			if code == 0 || !strings.Contains(msg, path+":3:1: unknown key broker.lisen") ||
				!strings.Contains(msg, path+":10:1: server.s1.apps: unknown app \"ghost\"") {
				t.Fatalf("exit %d, message:\n%s", code, msg)
			}
		})
	}
}
