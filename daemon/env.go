package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"switchyard/config"
)

// Env is what a daemon takes from its surroundings.
type Env struct {
	Stdin  io.Reader // os.Stdin if nil; `broker watch` reads q and Ctrl-C from it
	Stdout io.Writer // os.Stdout if nil
	Stderr io.Writer // os.Stderr if nil; logs go here
	// Listen opens a listener; net.Listen if nil. Tests return listeners
	// they opened on 127.0.0.1:0 and wrote into the config.
	Listen func(network, addr string) (net.Listener, error)
	// Reload delivers SIGHUP: reload the config file. May be nil.
	Reload <-chan os.Signal
	// Ready, if set, is called once the daemon is serving.
	Ready func()
	// Upgrade delivers SIGUSR2 to a gateway: start Exe (the binary file,
	// perhaps replaced since) with the same arguments, hand it the
	// listeners, drain and exit. May be nil, as in tests run in-process.
	Upgrade <-chan os.Signal
	Exe     string
	// Stop delivers SIGINT to appd: stop for good, ending every app at
	// once. SIGTERM (what systemd sends to stop or restart it) hands the
	// sessions to the next appd through the keeper instead. May be nil.
	Stop <-chan os.Signal
}

// stopForGood reports whether appd was told to end its apps (SIGINT)
// rather than hand them over.
func (e Env) stopForGood() bool {
	select {
	case <-e.Stop:
		return true
	default:
		return false
	}
}

func (e Env) stdout() io.Writer {
	if e.Stdout == nil {
		return os.Stdout
	}
	return e.Stdout
}

func (e Env) stderr() io.Writer {
	if e.Stderr == nil {
		return os.Stderr
	}
	return e.Stderr
}

func (e Env) listen(addr string) (net.Listener, error) {
	if e.Listen == nil {
		return net.Listen("tcp", addr)
	}
	return e.Listen("tcp", addr)
}

func (e Env) ready() {
	if e.Ready != nil {
		e.Ready()
	}
}

// ErrUsage marks command-line mistakes; cmd exits 2 for them.
var ErrUsage = errors.New("usage")

// common holds the flags every daemon takes.
type common struct {
	configPath string
	stateDir   string
	logFormat  string
	logLevel   string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.configPath, "config", "/etc/switchyard/config.toml", "cluster config `file`")
	fs.StringVar(&c.stateDir, "state", "", "state `dir` (keys); overrides state_dir in the config")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	return nil
}

// load reads the config and applies the -state override.
func (c *common) load() (*config.Config, error) {
	cfg, err := config.Load(c.configPath)
	if err != nil {
		return nil, err
	}
	if c.stateDir != "" {
		cfg.StateDir = c.stateDir
	}
	return cfg, nil
}

func (c *common) logger(w io.Writer, node string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("%w: -log-level %q", ErrUsage, c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: logAttr}
	var h slog.Handler
	switch strings.ToLower(c.logFormat) {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("%w: -log-format %q (want text or json)", ErrUsage, c.logFormat)
	}
	return slog.New(h).With("node", node), nil
}

// nodeKeys maps the listed public keys of the named nodes to their names.
// A node whose key cannot be read is left out (it cannot connect) and
// reported to log.
func nodeKeys(cfg *config.Config, names []string, log *slog.Logger) map[string]string {
	keys := make(map[string]string, len(names))
	for _, n := range names {
		k, err := cfg.NodeKey(n)
		if err != nil {
			log.Warn("node key unavailable; that node cannot connect", "peer", n, "err", err)
			continue
		}
		keys[string(k.Marshal())] = n
	}
	return keys
}

// authorizer admits the keys in keys.
func authorizer(keys func() map[string]string) func(ssh.PublicKey) (string, bool) {
	return func(k ssh.PublicKey) (string, bool) {
		n, ok := keys()[string(k.Marshal())]
		return n, ok
	}
}

func gatewayNames(cfg *config.Config) []string { return sortedKeys(cfg.Gateways) }
func serverNames(cfg *config.Config) []string  { return sortedKeys(cfg.Servers) }
