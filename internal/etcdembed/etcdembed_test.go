package etcdembed

import (
	"net"
	"net/url"
	"testing"
)

// TestStartRetriesATakenPort: a port taken between picking it and etcd
// binding it costs a retry on other ports, not a failed start.
func TestStartRetriesATakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	picks := 0
	pickURL = func() (url.URL, error) {
		picks++
		if picks == 1 {
			return url.URL{Scheme: "http", Host: taken.Addr().String()}, nil
		}
		return freeURL()
	}
	defer func() { pickURL = freeURL }()

	c, err := Start(t.TempDir(), 1, Options{NoFsync: true})
	if err != nil {
		t.Fatalf("start with a taken port: %v", err)
	}
	defer c.Close()
	if picks != 4 {
		t.Errorf("picked %d URLs, want 4 (two tries of one member)", picks)
	}
	if c.Leader() != 0 {
		t.Errorf("leader %d, want 0", c.Leader())
	}
}
