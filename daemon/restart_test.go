package daemon

import (
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/config"
)

const restartBase = `
state_dir = "/tmp/sy"
[broker]
listen = "127.0.0.1:7000"
[gateway.gw1]
listen = "127.0.0.1:2222"
[gateway.gw2]
listen = "127.0.0.1:2223"
[server.s1]
listen = "127.0.0.1:7101"
[app.top]
argv = ["top"]
user = "nobody"
`

func parseConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Each node names the changed keys it reads only at start, and only
// those: another node's address, an app, or a reloadable key of its own
// table is not one.
func TestRestartNeeded(t *testing.T) {
	base := parseConfig(t, restartBase)
	for _, tt := range []struct {
		name       string
		old, new   string
		kind, node string
		want       []string
	}{
		{"gateway's own listen", `listen = "127.0.0.1:2222"`, `listen = "127.0.0.1:3333"`, kindGateway, "gw1", []string{"gateway.gw1.listen"}},
		{"another gateway's listen", `listen = "127.0.0.1:2222"`, `listen = "127.0.0.1:3333"`, kindGateway, "gw2", nil},
		{"broker: a gateway's listen", `listen = "127.0.0.1:2222"`, `listen = "127.0.0.1:3333"`, kindBroker, "broker", nil},
		{"broker's own listen", `listen = "127.0.0.1:7000"`, `listen = "127.0.0.1:7001"`, kindBroker, "broker", []string{"broker.listen"}},
		{"server: the broker's listen reloads", `listen = "127.0.0.1:7000"`, `listen = "127.0.0.1:7001"`, kindServer, "s1", nil},
		{"report_interval, every node", "[broker]\n", "[broker]\nreport_interval = \"3s\"\n", kindServer, "s1", []string{"broker.report_interval"}},
		{"state_dir", `state_dir = "/tmp/sy"`, `state_dir = "/tmp/sz"`, kindBroker, "broker", []string{"state_dir"}},
		{"the audit trail, every node", "[broker]\n", "[audit]\nsink = \"stdout\"\n[broker]\n", kindGateway, "gw1", []string{"audit"}},
		{"a gateway limit", "[gateway.gw1]\n", "[gateway.gw1]\nmax_auth_tries = 3\n", kindGateway, "gw1", []string{"gateway.gw1.max_auth_tries"}},
		{"a gateway's reach reloads", "[gateway.gw1]\n", "[gateway.gw1]\nreach = [\"s1\"]\n", kindGateway, "gw1", nil},
		{"an app reloads", `argv = ["top"]`, `argv = ["htop"]`, kindServer, "s1", nil},
		{"server admin", "[server.s1]\n", "[server.s1]\nadmin = \"127.0.0.1:9101\"\n", kindServer, "s1", []string{"server.s1.admin"}},
		{"admin token", "[broker]\n", "[broker]\nadmin_token = \"0123456789abcdefg\"\n", kindBroker, "broker", []string{"broker.admin_token"}},
		{"gateway removed", "[gateway.gw2]\nlisten = \"127.0.0.1:2223\"\n", "", kindGateway, "gw2", []string{"gateway.gw2 (removed)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(restartBase, tt.old) {
				t.Fatalf("base lacks %q", tt.old)
			}
			next := parseConfig(t, strings.Replace(restartBase, tt.old, tt.new, 1))
			if got := restartNeeded(tt.kind, tt.node, base, next); !slices.Equal(got, tt.want) {
				t.Fatalf("restartNeeded = %q, want %q", got, tt.want)
			}
		})
	}
}

// The admin keys are read from a file TOML cannot parse.
func TestScanAdminKeys(t *testing.T) {
	text := `state_dir = "/srv/sy"
[broker
listen = "127.0.0.1:7000"
[broker]
admin = "unix:/run/sy.sock"
admin_token = "tok"
[brokers.b2]
admin_tcp = "127.0.0.1:9000"
[gateway.gw1]
admin = "127.0.0.1:9101"
`
	cfg, err := scanAdminKeys(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir != "/srv/sy" || cfg.Broker.Admin != "unix:/run/sy.sock" || cfg.Broker.AdminToken != "tok" ||
		!slices.Equal(cfg.BrokerNames(), []string{"broker", "b2"}) {
		t.Fatalf("scanned %+v", cfg)
	}
	if a, tcp := cfg.BrokerAdmin("b2"); a != "unix:b2-admin.sock" || tcp != "127.0.0.1:9000" {
		t.Fatalf("b2's admin %q %q", a, tcp)
	}
	if cfg, _ := scanAdminKeys(strings.NewReader("garbage")); cfg.StateDir != configStateDir || cfg.Broker.Admin != config.DefaultAdmin {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestWatchdogPeriod(t *testing.T) {
	for _, tt := range []struct {
		usec, wpid string
		want       time.Duration
		ok         bool
	}{
		{"", "", 0, false}, {"0", "", 0, false}, {"x", "", 0, false},
		{"30000000", "", 15 * time.Second, true}, {"200000", "42", 100 * time.Millisecond, true}, {"200000", "43", 0, false},
	} {
		if got, ok := watchdogPeriod(tt.usec, tt.wpid, 42); got != tt.want || ok != tt.ok {
			t.Errorf("watchdogPeriod(%q, %q) = %v, %v; want %v, %v", tt.usec, tt.wpid, got, ok, tt.want, tt.ok)
		}
	}
}
