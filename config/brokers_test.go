package config

import (
	"slices"
	"testing"
)

func TestBrokerNodes(t *testing.T) {
	c, err := Parse("test.toml", []byte(etcdTable+"[brokers.b2]\nlisten = \"127.0.0.1:7010\"\n[brokers.b3]\nlisten = \"127.0.0.1:7011\"\nadmin = \"unix:/run/b3.sock\"\n"+twoNets))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BrokerNames(); !slices.Equal(got, []string{"broker", "b2", "b3"}) {
		t.Errorf("BrokerNames = %v", got)
	}
	if !c.IsBroker("b2") || !c.IsBroker("broker") || c.IsBroker("gw1") {
		t.Errorf("IsBroker wrong")
	}
	if got := c.BrokerListen("b3"); got != "127.0.0.1:7011" {
		t.Errorf("BrokerListen(b3) = %q", got)
	}
	if got := c.BrokerAdminSocket("b2"); got != c.Resolve("b2-admin.sock") {
		t.Errorf("BrokerAdminSocket(b2) = %q, want the default in state_dir", got)
	}
	if got := c.BrokerAdminSocket("b3"); got != "/run/b3.sock" {
		t.Errorf("BrokerAdminSocket(b3) = %q", got)
	}
	if !slices.Contains(c.NodeNames(), "b3") {
		t.Errorf("NodeNames %v lacks b3", c.NodeNames())
	}
}

func TestValidateBrokerNodes(t *testing.T) {
	cases := []struct {
		name string
		src  string // § marks where the one problem must be
		want string
	}{
		{"without etcd", "§[brokers.b2]\nlisten = \"127.0.0.1:7010\"\n" + twoNets, "several brokers need an [etcd] table"},
		{"listen missing", etcdTable + "§[brokers.b2]\n" + twoNets, "brokers.b2.listen: is required"},
		{"name taken", etcdTable + "§[brokers.gw1]\nlisten = \"127.0.0.1:7010\"\n" + twoNets, `node name "gw1" is already taken`},
		{"address taken", etcdTable + "[brokers.b2]\n§listen = \"127.0.0.1:7101\"\n" + twoNets, "already used by"},
		{"tcp admin without token", etcdTable + "[brokers.b2]\nlisten = \"127.0.0.1:7010\"\n§admin = \"127.0.0.1:7011\"\n" + twoNets, "set admin_token"},
		{"bad name", etcdTable + "§[brokers.\"b 2\"]\nlisten = \"127.0.0.1:7010\"\n" + twoNets, "invalid name"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, tt.want) })
	}
}

// etcdTable is an [etcd] table, which several brokers need.
const etcdTable = "[etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\n"
