package e2e

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// draining reports whether the broker has server draining.
func (c *Cluster) draining(server string) bool {
	c.t.Helper()
	for _, s := range c.Status().Servers {
		if s.Name == server {
			return s.Draining
		}
	}
	c.t.Fatalf("no server %s in status", server)
	return false
}

// adminDo sends a request to the broker's TCP admin listener, shaped by
// edit, and returns the status code.
func (c *Cluster) adminDo(t *testing.T, method, path string, edit func(*http.Request)) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+c.lns["admin"].Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// TestAdminTCPRefusesWithoutTokenAndCrossOrigin: the TCP admin listener
// (on loopback, where any local user reaches it) obeys only requests with
// the token, addressed to it by its own name, from no foreign page, and
// changes state only by POST.
func TestAdminTCPRefusesWithoutTokenAndCrossOrigin(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	addr := c.lns["admin"].Addr().String()
	_, port, _ := strings.Cut(addr, ":")
	withToken := bearer(testAdminToken)
	refused := []struct {
		name   string
		method string
		edit   func(*http.Request)
		want   int
	}{
		{"no token", "POST", nil, 401},
		{"wrong token, same length", "POST", bearer(strings.Repeat("x", len(testAdminToken))), 401},
		{"wrong token, shorter", "POST", bearer("x"), 401},
		{"token as a prefix", "POST", bearer(testAdminToken[:len(testAdminToken)-1]), 401},
		{"foreign Origin", "POST", func(r *http.Request) { withToken(r); r.Header.Set("Origin", "http://evil.example") }, 403},
		{"Origin null", "POST", func(r *http.Request) { withToken(r); r.Header.Set("Origin", "null") }, 403},
		{"foreign Host (DNS rebinding)", "POST", func(r *http.Request) { withToken(r); r.Host = "evil.example:" + port }, 403},
		{"GET does not change state", "GET", withToken, 405},
		{"DELETE does not change state", "DELETE", withToken, 405},
	}
	for _, r := range refused {
		if got := c.adminDo(t, r.method, "/drain/s1", r.edit); got != r.want {
			t.Errorf("%s: status %d, want %d", r.name, got, r.want)
		}
	}
	for _, path := range []string{"/status", "/metrics", "/healthz", "/readyz", "/recording/x", "/watch/x"} {
		if got := c.adminDo(t, "GET", path, nil); got != 401 {
			t.Errorf("GET %s without token: %d, want 401", path, got)
		}
	}
	if c.draining("s1") {
		t.Fatal("a refused request drained s1")
	}
	ok := func(r *http.Request) { withToken(r); r.Header.Set("Origin", "http://"+addr) }
	if got := c.adminDo(t, "POST", "/drain/s1", ok); got != 200 {
		t.Fatalf("drain with token and own Origin: %d", got)
	}
	if !c.draining("s1") {
		t.Fatal("drain with the token did not drain")
	}
	local := func(r *http.Request) { withToken(r); r.Host = "localhost:" + port }
	if got := c.adminDo(t, "POST", "/undrain/s1", local); got != 200 || c.draining("s1") {
		t.Fatalf("undrain addressed to localhost: %d", got)
	}
}

// TestAdminOpenMetricsOnlyMetrics: admin_open_metrics lets a scraper
// without the token read /metrics and nothing else.
func TestAdminOpenMetricsOnlyMetrics(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, BrokerConfig: "admin_open_metrics = true\n"})
	if got := c.adminDo(t, "GET", "/metrics", nil); got != 200 {
		t.Fatalf("open metrics: %d", got)
	}
	for _, p := range []struct{ method, path string }{{"GET", "/status"}, {"POST", "/drain/s1"}} {
		if got := c.adminDo(t, p.method, p.path, nil); got != 401 {
			t.Fatalf("%s %s without token: %d, want 401", p.method, p.path, got)
		}
	}
}

// TestAdminSocketOnlyForItsOwners: the CLI uses the admin socket, mode
// 0660 with the broker's user and group; a request on it with an Origin
// header is refused; and a process running as nobody (like an app
// session on the broker's host) can drain through neither the socket nor
// the TCP listener.
func TestAdminSocketOnlyForItsOwners(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	sock := filepath.Join(c.Dir, "broker-admin.sock")
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatalf("admin socket: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 || int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() {
		t.Fatalf("admin socket %v uid %d gid %d, want a socket 0660 of %d:%d", fi.Mode(), st.Uid, st.Gid, os.Geteuid(), os.Getegid())
	}
	if out, err := c.broker("drain", "s1"); err != nil || !c.draining("s1") {
		t.Fatalf("drain over the socket: %q %v", out, err)
	}
	if _, err := c.broker("undrain", "s1"); err != nil || c.draining("s1") {
		t.Fatalf("undrain over the socket: %v", err)
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("no curl")
	}
	code := func(args ...string) string {
		cmd := exec.Command(curl, append([]string{"-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10"}, args...)...)
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Run()
		return out.String()
	}
	if got := c.socketDo(t, sock, "http://x"); got != 403 {
		t.Errorf("socket request with an Origin: %d, want 403", got)
	}
	if got := code("-X", "POST", "http://"+c.lns["admin"].Addr().String()+"/drain/s1"); got != "401" {
		t.Errorf("curl -X POST to the TCP admin listener: %s, want 401", got)
	}
	if os.Geteuid() == 0 {
		// Let nobody through the state directory, as a directory such
		// as /run/switchyard would: only the socket's mode stands.
		for _, d := range []string{c.Dir, filepath.Dir(c.Dir)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if got := code("-X", "POST", "--unix-socket", sock, "http://b/drain/s1"); got != "000" {
			t.Errorf("nobody on the admin socket: %s, want no connection (000)", got)
		}
		// The control: with the socket's mode opened, nobody would get in.
		os.Chmod(sock, 0o666)
		got := code("-X", "POST", "--unix-socket", sock, "http://b/healthz")
		os.Chmod(sock, 0o660)
		if got != "405" {
			t.Fatalf("control: nobody on a 0666 socket got %s, want 405 (POST /healthz)", got)
		}
	}
	if c.draining("s1") {
		t.Fatal("a local user drained s1")
	}
	t.Logf("checked as uid %s", strconv.Itoa(os.Geteuid()))
}

// socketDo posts /drain/s1 on the admin socket with an Origin header and
// returns the status code.
func (c *Cluster) socketDo(t *testing.T, sock, origin string) int {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest("POST", "http://broker-admin/drain/s1", nil)
	req.Header.Set("Origin", origin)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("admin socket: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
