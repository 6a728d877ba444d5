package daemon

import (
	"reflect"
	"slices"
	"strings"

	"switchyard/config"
)

// Kinds of node, for the keys each needs a restart for.
const (
	kindBroker  = "broker"
	kindGateway = "gateway"
	kindServer  = "server"
)

// Keys a running node reads only at start, by kind: a reload that changes
// one is refused whole, and the node keeps its running config until a
// restart. The README's Admins section lists them; every other key
// reloads. Keys of a node's own table are named relative to it.
var (
	// Every node: where its keys and state live, the report period its
	// timers were started with, the audit trail it opened.
	restartCommon = []string{"state_dir", "broker.report_interval", "audit"}
	// A broker's own listeners and key, the admin access they enforce,
	// and its store.
	restartBrokerOwn    = []string{"listen", "public_key", "admin", "admin_tcp"}
	restartBrokerShared = []string{"broker.admin_group", "broker.admin_token", "broker.admin_names", "broker.admin_open_metrics", "etcd"}
	// A gateway's listeners and keys, and the limits its SSH server was
	// built with.
	restartGateway = []string{"listen", "internal", "host_key", "public_key", "admin", "capacity", "password_auth",
		"alive_interval", "alive_count_max", "handshake_timeout", "max_auth_tries", "auth_fail_limit", "auth_fail_window",
		"max_conns_per_source", "max_sessions_per_user", "max_channels_per_conn"}
	// An app server's listeners and key.
	restartServer = []string{"listen", "public_key", "admin"}
)

// restartNeeded lists the keys that differ between the running config
// and a new one among those node (of kind) reads only at start, in the
// order of the lists above; a node missing from the new file is one
// entry, its table.
func restartNeeded(kind, node string, running, next *config.Config) []string {
	table := nodeTable(kind, node)
	if nodeValue(next, table) == nil {
		return []string{table + " (removed)"}
	}
	var keys []string
	for _, k := range restartCommon {
		keys = appendIfChanged(keys, k, running, next)
	}
	if kind == kindGateway || kind == kindServer {
		// Links to the brokers are made at start: a broker added or
		// removed needs a restart (their addresses reload).
		if !slices.Equal(running.BrokerNames(), next.BrokerNames()) {
			keys = append(keys, "brokers")
		}
	}
	own := map[string][]string{kindBroker: restartBrokerOwn, kindGateway: restartGateway, kindServer: restartServer}[kind]
	for _, k := range own {
		keys = appendIfChanged(keys, table+"."+k, running, next)
	}
	if kind == kindBroker {
		for _, k := range restartBrokerShared {
			keys = appendIfChanged(keys, k, running, next)
		}
	}
	return keys
}

// nodeTable is the dotted name of node's table: "broker",
// "brokers.b2", "gateway.gw1", "server.s1".
func nodeTable(kind, node string) string {
	switch {
	case kind == kindBroker && node == config.DefaultBroker:
		return "broker"
	case kind == kindBroker:
		return "brokers." + node
	}
	return kind + "." + node
}

func appendIfChanged(keys []string, key string, a, b *config.Config) []string {
	if !reflect.DeepEqual(keyValue(a, key), keyValue(b, key)) {
		return append(keys, key)
	}
	return keys
}

// keyValue is the value of a dotted key ("gateway.gw1.listen") in c,
// found through the toml tags; nil if there is none.
func keyValue(c *config.Config, key string) any {
	v := reflect.ValueOf(*c)
	for part := range strings.SplitSeq(key, ".") {
		switch v.Kind() {
		case reflect.Struct:
			v = fieldByTag(v, part)
		case reflect.Map:
			v = v.MapIndex(reflect.ValueOf(part))
		default:
			return nil
		}
		if !v.IsValid() {
			return nil
		}
	}
	return v.Interface()
}

// nodeValue is node table's value in c, or nil when c has no such node.
func nodeValue(c *config.Config, table string) any { return keyValue(c, table) }

// fieldByTag is the field of struct v whose toml tag is name.
func fieldByTag(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); tag == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}
