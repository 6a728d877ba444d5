package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

// Every line a real cluster logs in JSON is one JSON object without a
// duplicate key (at any depth), and durations are strings ("1.5s"), not
// nanoseconds; the lines cover the version at start, generated keys,
// nodes' health, a login, a refused spawn, a reload and a shutdown.
func TestJSONLogLines(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, LogFormat: "json",
		Extra: "[app.ghost]\nargv = [\"/nonexistent/ghost\"]\nuser = \"nobody\"\n", ExtraApps: []string{"ghost"}})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, status := runEcho(t, client); status != 0 || out != "hello\n" {
		t.Fatalf("echo: %q, status %d", out, status)
	}
	r := Open(t, client, "ghost", "", 0, 0)
	if status, _ := r.Wait(); status == 0 {
		t.Fatal("a missing program started")
	}
	c.WaitLog(`"msg":"spawn rejected"`)
	Open(t, client, "brief", "xterm", 24, 80).WaitFor("tick=")
	client.Close() // the PTY session detaches, for its grace
	c.WaitLog(`"msg":"session detached"`)
	c.WaitLog(`"msg":"server up"`)
	c.WaitLog(`"msg":"gateway up"`)
	c.Reload()
	for _, n := range []string{"broker", "gw1", "s1"} {
		c.WaitLog(`"msg":"config reloaded"`, `"node":"`+n+`"`)
	}
	for _, n := range []string{"gw1", "s1", "broker"} {
		c.Stop(n)
	}
	c.logMu.Lock()
	logs := c.logs.String()
	c.logMu.Unlock()

	seen := map[string][]map[string]any{} // every line of each message
	for i, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if err := noDuplicateKeys(line); err != nil {
			t.Errorf("log line %d: %v:\n%s", i+1, err, line)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line %d is not JSON: %v:\n%s", i+1, err, line)
			continue
		}
		msg, _ := m["msg"].(string)
		seen[msg] = append(seen[msg], m)
	}
	for _, want := range []struct {
		msg, key string
		str      bool // the value is a string (a duration as "1.5s")
	}{
		{"starting", "version", true},
		{"key generated", "fingerprint", true},
		{"server up", "server", true},
		{"gateway up", "gateway", true},
		{"spawn rejected", "reason", true},
		{"config reloaded", "file", true},
		{"shutting down", "node", true},
		{"stopped", "uptime", true},
		{"session detached", "grace", true},
	} {
		lines := seen[want.msg]
		if lines == nil {
			t.Errorf("no %q line logged", want.msg)
			continue
		}
		// Several nodes may log a message (appd and the broker both log
		// "session detached"): one of them must carry the key.
		found := false
		for _, m := range lines {
			v, ok := m[want.key]
			_, isStr := v.(string)
			found = found || ok && (!want.str || isStr)
		}
		if !found {
			t.Errorf("no %q line with %s as a string: %v", want.msg, want.key, lines)
		}
	}
	if up, _ := seen["stopped"][0]["uptime"].(string); !strings.HasSuffix(up, "s") {
		t.Errorf("uptime %q is not a duration like \"1.5s\"", up)
	}
}

// noDuplicateKeys reports the first key an object in the JSON text line
// holds twice, at any depth.
func noDuplicateKeys(line string) error {
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	if err := objectKeys(d); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("more than one value on the line")
	}
	return nil
}

// objectKeys reads one value from d, failing on a repeated key.
func objectKeys(d *json.Decoder) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		keys := map[string]bool{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return err
			}
			key := k.(string)
			if keys[key] {
				return fmt.Errorf("duplicate key %q", key)
			}
			keys[key] = true
			if err := objectKeys(d); err != nil {
				return err
			}
		}
		_, err = d.Token()
		return err
	case json.Delim('['):
		for d.More() {
			if err := objectKeys(d); err != nil {
				return err
			}
		}
		_, err = d.Token()
		return err
	}
	return nil
}
