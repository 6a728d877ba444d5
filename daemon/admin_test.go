package daemon

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestAdminClientEscapesTheBrokersMessage: an error line that quotes the
// broker's answer shows no raw control character and stays short.
func TestAdminClientEscapesTheBrokersMessage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such server \x1b]0;pwned\x07\x1b[2J"+strings.Repeat("A", 100_000), http.StatusNotFound)
	}))
	defer srv.Close()
	a := adminClient{where: "test", base: srv.URL, hc: srv.Client()}
	_, err := a.call(context.Background(), http.MethodPost, "/drain/x")
	if err == nil {
		t.Fatal("a 404 is no error")
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\x1b\x07") || len(msg) > 1024 {
		t.Fatalf("error line of %d bytes: %.200q", len(msg), msg)
	}
}

func TestAdminHostsOfALoopbackListener(t *testing.T) {
	hosts := adminHosts("127.0.0.1:7001", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7001}, []string{"Broker.Example.com"})
	for _, want := range []string{"127.0.0.1:7001", "localhost:7001", "broker.example.com:7001"} {
		if !slices.Contains(hosts, want) {
			t.Errorf("hosts %v lack %s", hosts, want)
		}
	}
	if slices.Contains(hosts, "evil.example:7001") {
		t.Fatal("a foreign name accepted")
	}
}
