package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Etcd is the [etcd] table: the etcd cluster several brokers keep their
// state in and elect their leader through. Without endpoints (the table
// left out) one broker runs alone and keeps its state under StateDir.
type Etcd struct {
	// Endpoints are the members' client URLs, http:// or https://
	// ("https://10.0.0.1:2379"); none means no etcd.
	Endpoints []string `toml:"endpoints"`
	// CA is the CA bundle that signs the members' certificates, required
	// with https endpoints; Cert and Key are the brokers' client
	// certificate and its key, both or neither. Paths relative to StateDir.
	CA   string `toml:"ca"`
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// Username is the etcd user, PasswordFile a file (relative to
	// StateDir) holding its password on its first line: a password never
	// sits in this file, which every node reads. Both or neither.
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`
	// Prefix holds every key of this cluster; DefaultEtcdPrefix if empty.
	// It must start and end with '/'.
	Prefix string `toml:"prefix"`
	// Cluster names this Switchyard cluster: a prefix holding another
	// cluster's state is refused, so two clusters sharing one etcd by
	// mistake find out at start. DefaultEtcdCluster if empty.
	Cluster string `toml:"cluster"`
	// DialTimeout bounds connecting to etcd at start; 2s if zero.
	DialTimeout time.Duration `toml:"dial_timeout"`
	// LeaseTTL is the leader's lease, in whole seconds, at least 1s: a
	// broker that dies unannounced is replaced about this long after.
	// 3s if zero.
	LeaseTTL time.Duration `toml:"lease_ttl"`
}

// Defaults of the [etcd] table.
const (
	DefaultEtcdPrefix      = "/switchyard/"
	DefaultEtcdCluster     = "switchyard"
	defaultEtcdDialTimeout = 2 * time.Second
	defaultEtcdLeaseTTL    = 3 * time.Second
)

// Enabled reports whether the brokers use etcd: it has endpoints.
func (e Etcd) Enabled() bool { return len(e.Endpoints) > 0 }

// fillDefaults sets the [etcd] keys left empty or zero, when there are
// endpoints.
func (e *Etcd) fillDefaults() {
	if !e.Enabled() {
		return
	}
	if e.Prefix == "" {
		e.Prefix = DefaultEtcdPrefix
	}
	if e.Cluster == "" {
		e.Cluster = DefaultEtcdCluster
	}
	if e.DialTimeout == 0 {
		e.DialTimeout = defaultEtcdDialTimeout
	}
	if e.LeaseTTL == 0 {
		e.LeaseTTL = defaultEtcdLeaseTTL
	}
}

// EtcdPassword reads the etcd password from PasswordFile: its first line,
// without the line ending; "" if there is no password file.
func (c *Config) EtcdPassword() (string, error) {
	if c.Etcd.PasswordFile == "" {
		return "", nil
	}
	data, err := os.ReadFile(c.Resolve(c.Etcd.PasswordFile))
	if err != nil {
		return "", fmt.Errorf("config: etcd password: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSuffix(line, "\r"), nil
}

// etcd checks the [etcd] table, if the file has one.
func (v *checker) etcd() {
	e := v.c.Etcd
	line, _ := v.c.pos.find(toml.Key{"etcd"})
	if !e.Enabled() {
		if line > 0 {
			v.addf(toml.Key{"etcd", "endpoints"}, `is required: the etcd members' client URLs, like ["https://10.0.0.1:2379"]`)
		}
		return
	}
	k := func(name string) toml.Key { return toml.Key{"etcd", name} }
	if !nameRE.MatchString(e.Cluster) {
		v.addf(k("cluster"), "invalid name %q: use letters, digits, '-', '_' and '.'", e.Cluster)
	}
	https := false
	for i, ep := range e.Endpoints {
		u, err := url.Parse(ep)
		switch {
		case !strings.Contains(ep, "://"):
			v.addf(k("endpoints"), "[%d]: %q: use an http:// or https:// URL", i, ep)
		case err != nil:
			v.addf(k("endpoints"), "[%d]: invalid URL %q: %v", i, ep, err)
		case u.Scheme != "http" && u.Scheme != "https":
			v.addf(k("endpoints"), "[%d]: %q: use an http:// or https:// URL", i, ep)
		case u.Host == "" || u.Hostname() == "":
			v.addf(k("endpoints"), "[%d]: %q: no host", i, ep)
		case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil:
			v.addf(k("endpoints"), "[%d]: %q: only scheme://host:port", i, ep)
		}
		https = https || err == nil && u.Scheme == "https"
	}
	if https && e.CA == "" {
		v.addf(k("ca"), "is required with https endpoints: the CA that signs the etcd members' certificates")
	}
	if e.Cert != "" && e.Key == "" {
		v.addf(k("cert"), "needs key: the client certificate's private key")
	}
	if e.Key != "" && e.Cert == "" {
		v.addf(k("key"), "needs cert: the client certificate of this key")
	}
	if e.Username != "" && e.PasswordFile == "" {
		v.addf(k("username"), "needs password_file: a file holding the etcd user's password")
	}
	if e.PasswordFile != "" && e.Username == "" {
		v.addf(k("password_file"), "needs username: the etcd user whose password it holds")
	}
	if !strings.HasPrefix(e.Prefix, "/") || !strings.HasSuffix(e.Prefix, "/") {
		v.addf(k("prefix"), "%q must start and end with '/', like %q", e.Prefix, DefaultEtcdPrefix)
	}
	if e.DialTimeout < 0 {
		v.addf(k("dial_timeout"), "must be positive, like \"2s\"")
	}
	if e.LeaseTTL < time.Second || e.LeaseTTL%time.Second != 0 {
		v.addf(k("lease_ttl"), "must be whole seconds, at least \"1s\": etcd counts leases in seconds")
	}
}

// etcdWarnings warns of a password file others may read.
func (c *Config) etcdWarnings() []Problem {
	if c.Etcd.PasswordFile == "" {
		return nil
	}
	fi, err := os.Stat(c.Resolve(c.Etcd.PasswordFile))
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return nil
	}
	k := toml.Key{"etcd", "password_file"}
	line, col := c.pos.find(k)
	return []Problem{{File: c.Path, Line: line, Col: col,
		Msg: fmt.Sprintf("%s: warning: %s is readable by every user (mode %v): chmod o-r it", k, c.Resolve(c.Etcd.PasswordFile), fi.Mode().Perm())}}
}
