package config

import (
	"path/filepath"
	"slices"
)

// Resolve returns p if it is absolute, else p joined to StateDir.
func (c *Config) Resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.StateDir, p)
}

// NodeNames returns the names of all nodes, sorted: every broker, gateway
// and server.
func (c *Config) NodeNames() []string {
	names := c.BrokerNames()
	names = append(names, sortedKeys(c.Gateways)...)
	names = append(names, sortedKeys(c.Servers)...)
	slices.Sort(names)
	return names
}

// Allowed reports whether user may run app: both exist, and app is in the
// user's apps or in those of one of the user's groups ("*" means every app).
func (c *Config) Allowed(user, app string) bool {
	u, ok := c.Users[user]
	if !ok {
		return false
	}
	if _, ok := c.Apps[app]; !ok {
		return false
	}
	if grants(u.Apps, app) {
		return true
	}
	for _, g := range u.Groups {
		if grp, ok := c.Groups[g]; ok && grants(grp.Apps, app) {
			return true
		}
	}
	return false
}

func grants(apps []string, app string) bool {
	return slices.Contains(apps, app) || slices.Contains(apps, "*")
}

// AppsFor returns, sorted, the apps user may run; nil for an unknown user.
func (c *Config) AppsFor(user string) []string {
	var apps []string
	for _, app := range sortedKeys(c.Apps) {
		if c.Allowed(user, app) {
			apps = append(apps, app)
		}
	}
	return apps
}

// ServersOffering returns, sorted, the servers whose apps include app
// (a server with no apps listed offers every app), draining or not; nil
// for an unknown app.
func (c *Config) ServersOffering(app string) []string {
	if _, ok := c.Apps[app]; !ok {
		return nil
	}
	var servers []string
	for _, name := range sortedKeys(c.Servers) {
		if apps := c.Servers[name].Apps; len(apps) == 0 || slices.Contains(apps, app) {
			servers = append(servers, name)
		}
	}
	return servers
}
