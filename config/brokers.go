package config

import (
	"strings"

	"github.com/BurntSushi/toml"
)

// BrokerNode configures one more broker besides the one of [broker],
// for high availability: [brokers.NAME]. Every other [broker] key
// (report_interval, reservation, the admin token and group) is shared.
// Several brokers keep their state in etcd ([etcd]) and elect the one
// that places; gateways and servers link to every broker and follow the
// leader.
type BrokerNode struct {
	Listen    string `toml:"listen"`     // internal SSH address, required
	PublicKey string `toml:"public_key"` // node key, authorized_keys format; file keys/NAME.pub if empty
	// Admin is this broker's admin API, as [broker] admin;
	// "unix:NAME-admin.sock" if empty.
	Admin string `toml:"admin"`
	// AdminTCP is a further TCP admin listener, as [broker] admin_tcp.
	AdminTCP string `toml:"admin_tcp"`
}

// DefaultBroker is the node name of the broker of the [broker] table.
const DefaultBroker = "broker"

// BrokerNames returns every broker's node name: "broker" first, then the
// [brokers.NAME] tables sorted.
func (c *Config) BrokerNames() []string {
	return append([]string{DefaultBroker}, sortedKeys(c.Brokers)...)
}

// IsBroker reports whether name is a broker's node name.
func (c *Config) IsBroker(name string) bool {
	_, ok := c.Brokers[name]
	return name == DefaultBroker || ok
}

// BrokerListen returns broker name's internal address; "" if there is no
// such broker.
func (c *Config) BrokerListen(name string) string {
	if name == DefaultBroker {
		return c.Broker.Listen
	}
	return c.Brokers[name].Listen
}

// BrokerAdmin returns broker name's admin address and further TCP admin
// listener.
func (c *Config) BrokerAdmin(name string) (admin, tcp string) {
	if name == DefaultBroker {
		return c.Broker.Admin, c.Broker.AdminTCP
	}
	b := c.Brokers[name]
	if b.Admin == "" {
		return unixPrefix + name + "-admin.sock", b.AdminTCP
	}
	return b.Admin, b.AdminTCP
}

// brokerNodes checks the [brokers.NAME] tables.
func (v *checker) brokerNodes() {
	for _, name := range sortedKeys(v.c.Brokers) {
		b, k := v.c.Brokers[name], toml.Key{"brokers", name}
		v.node(k)
		if !v.c.Etcd.Enabled() {
			v.addf(k, "several brokers need an [etcd] table: they keep their state there and elect the one that places")
		}
		v.address(sub(k, "listen"), b.Listen, true)
		v.publicKey(sub(k, "public_key"), b.PublicKey)
		admin, tcp := v.c.BrokerAdmin(name)
		v.adminAddr(sub(k, "admin"), admin)
		if tcp != "" {
			v.adminTCP(sub(k, "admin_tcp"), tcp)
		}
	}
}

// adminSocketOf resolves a "unix:PATH" admin address against StateDir;
// "" for a TCP one.
func (c *Config) adminSocketOf(admin string) string {
	p, ok := strings.CutPrefix(admin, unixPrefix)
	if !ok {
		return ""
	}
	return c.Resolve(p)
}

// BrokerAdminSocket returns the path of broker name's admin socket, or ""
// when its admin is a TCP address.
func (c *Config) BrokerAdminSocket(name string) string {
	admin, _ := c.BrokerAdmin(name)
	return c.adminSocketOf(admin)
}
