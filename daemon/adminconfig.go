package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"switchyard/config"
)

// ErrDegraded is `broker status`'s answer when the cluster is degraded
// (a server or gateway down, a node on another config, a restart
// needed): the status is printed all the same, and the exit status is 3.
var ErrDegraded = errors.New("cluster degraded")

// configStateDir is config's state_dir default, for a file too broken
// to say.
const configStateDir = "/var/lib/switchyard"

// adminConfig is the config the broker CLI (status, drain, undrain)
// needs: only where each broker's admin API is and its token. An invalid
// file must not lock the admin out of the running brokers, so when it
// does not load, the CLI reads just those keys from it (state_dir, and
// admin, admin_tcp and admin_token of [broker] and [brokers.NAME]), takes
// the defaults for the rest, and says so on w.
func (c *common) adminConfig(w io.Writer) (*config.Config, error) {
	cfg, err := c.load()
	var cerr *config.Error
	if err == nil || !errors.As(err, &cerr) {
		return cfg, err
	}
	f, ferr := os.Open(c.configPath)
	if ferr != nil {
		return nil, err
	}
	defer f.Close()
	cfg, ferr = scanAdminKeys(f)
	if ferr != nil {
		return nil, fmt.Errorf("%w\n(and its admin keys cannot be read: %v)", err, ferr)
	}
	cfg.Path = c.configPath
	if c.stateDir != "" {
		cfg.StateDir = c.stateDir
	}
	fmt.Fprintf(w, "warning: %s is invalid (%d problem(s); `check` lists them): reaching the broker with its admin keys only\n",
		c.configPath, len(cerr.Problems))
	return cfg, nil
}

// scanAdminKeys reads the admin keys from a cluster file line by line,
// as `key = "string"` under its table header, so that a mistake
// elsewhere, even one TOML cannot parse, does not hide them.
func scanAdminKeys(r io.Reader) (*config.Config, error) {
	cfg := &config.Config{StateDir: configStateDir, Broker: config.Broker{Admin: config.DefaultAdmin},
		Brokers: map[string]config.BrokerNode{}}
	table := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			table = strings.TrimSpace(strings.Trim(line, "[]"))
			if name, ok := strings.CutPrefix(table, "brokers."); ok {
				cfg.Brokers[name] = cfg.Brokers[name]
			}
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v, err := strconv.Unquote(strings.TrimSpace(val))
		if err != nil {
			continue
		}
		setAdminKey(cfg, table, strings.TrimSpace(key), v)
	}
	return cfg, sc.Err()
}

// setAdminKey sets one admin key of table in cfg; others are ignored.
func setAdminKey(cfg *config.Config, table, key, v string) {
	switch {
	case table == "" && key == "state_dir":
		cfg.StateDir = v
	case table == "broker" && key == "admin":
		cfg.Broker.Admin = v
	case table == "broker" && key == "admin_tcp":
		cfg.Broker.AdminTCP = v
	case table == "broker" && key == "admin_token":
		cfg.Broker.AdminToken = v
	case strings.HasPrefix(table, "brokers."):
		name := strings.TrimPrefix(table, "brokers.")
		b := cfg.Brokers[name]
		switch key {
		case "admin":
			b.Admin = v
		case "admin_tcp":
			b.AdminTCP = v
		}
		cfg.Brokers[name] = b
	}
}
