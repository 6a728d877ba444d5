package config

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultAdmin is where the broker serves its admin API when the file
// does not say: a Unix socket in the state directory.
const DefaultAdmin = "unix:broker-admin.sock"

// unixPrefix marks an admin address that is a Unix socket path.
const unixPrefix = "unix:"

// maxSocketPath is the longest path a Unix socket may have on Linux
// (sun_path holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// minAdminToken is the shortest admin_token accepted.
const minAdminToken = 16

// groupRE is what a Unix group name (or a numeric gid) may look like.
var groupRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*\$?$`)

// hostRE is what a host name in admin_names may look like.
var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// AdminSocket returns the path of the broker's admin socket, resolved
// against StateDir, or "" when [broker] admin is a TCP address.
func (c *Config) AdminSocket() string { return c.adminSocketOf(c.Broker.Admin) }

// adminChecks validates the [broker] admin keys: a socket path that fits,
// a token on every TCP listener, names that are names.
func (v *checker) adminChecks() {
	b := v.c.Broker
	v.adminAddr(toml.Key{"broker", "admin"}, b.Admin)
	if b.AdminTCP != "" {
		v.adminTCP(toml.Key{"broker", "admin_tcp"}, b.AdminTCP)
	}
	if b.AdminToken != "" && len(b.AdminToken) < minAdminToken {
		v.addf(toml.Key{"broker", "admin_token"}, "too short: use at least %d random characters", minAdminToken)
	}
	if b.AdminGroup != "" && !groupRE.MatchString(b.AdminGroup) {
		v.addf(toml.Key{"broker", "admin_group"}, "invalid group name %q", b.AdminGroup)
	}
	for _, n := range b.AdminNames {
		if !hostRE.MatchString(n) {
			v.addf(toml.Key{"broker", "admin_names"}, "invalid host name %q: a name without port, like \"broker.example.com\"", n)
		}
	}
}

// adminAddr checks an admin address at k: a Unix socket path that fits,
// or a TCP address with admin_token set.
func (v *checker) adminAddr(k toml.Key, admin string) {
	if raw, ok := strings.CutPrefix(admin, unixPrefix); ok {
		v.socketPath(k, raw, v.c.adminSocketOf(admin))
		return
	}
	n := len(v.probs)
	v.address(k, admin, true)
	if v.c.Broker.AdminToken == "" && len(v.probs) == n {
		v.addf(k, "%q is a TCP address, which any local user can reach: set admin_token, or use a Unix socket (%q, the default)", admin, DefaultAdmin)
	}
}

// adminTCP checks a further TCP admin listener at k: an address, and
// admin_token set.
func (v *checker) adminTCP(k toml.Key, addr string) {
	n := len(v.probs)
	v.address(k, addr, true)
	if v.c.Broker.AdminToken == "" && len(v.probs) == n {
		v.addf(k, "requires admin_token: every request on a TCP admin listener must carry it")
	}
}

// socketPath checks an admin socket path: set, and short enough for a
// Unix socket, also while the broker creates it in a private directory
// beside it (about 16 bytes more than the directory's path).
func (v *checker) socketPath(k toml.Key, raw, path string) {
	if raw == "" || strings.HasSuffix(raw, "/") {
		v.addf(k, "\"unix:\" needs a socket path, like %q", DefaultAdmin)
		return
	}
	if need := max(len(path), len(filepath.Dir(path))+16); need > maxSocketPath {
		v.addf(k, "socket path %q is too long for a Unix socket (%d bytes, at most %d): use a shorter state_dir or an absolute path such as \"unix:/run/switchyard/admin.sock\"", path, need, maxSocketPath)
	}
}
