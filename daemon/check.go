package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/crypto/ssh"

	"switchyard/appd"
	"switchyard/config"
)

// Check validates a config file: `check -config FILE [-state DIR] [-node
// NAME]`. Beyond the file itself it reads the files the file names (keys
// files, node public keys); with -node, it also checks what that node will
// use on this host: its private key and state dir; a broker's state dir is
// writable; a gateway's host key readable or creatable; a server's apps'
// programs executable by their run-as users, who exist. It returns every
// problem, and the warnings among them, as a *config.Error (file:line:col
// each, in file order) or nil, after printing the warnings to stderr.
func Check(args []string, env Env) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := fs.String("config", "/etc/switchyard/config.toml", "config `file` to check")
	state := fs.String("state", "", "state `dir` (keys); overrides state_dir in the config")
	node := fs.String("node", "", "also check what node `NAME` will use on this host")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, probs, err := config.LoadAll(*path)
	if err != nil {
		return err
	}
	if *state != "" {
		cfg.StateDir = *state
	}
	if *node != "" && !slices.Contains(cfg.NodeNames(), *node) {
		return fmt.Errorf("%w: -node %q is not a node of %s", ErrUsage, *node, cfg.Path)
	}
	fileProbs, warns := cfg.FileProblems()
	probs = append(probs, fileProbs...)
	warns = append(cfg.Warnings(), warns...)
	if *node != "" {
		probs = append(probs, checkNode(cfg, *node)...)
	}
	if len(probs) > 0 {
		// One list in file order, the warnings among the problems.
		return config.Problems(append(probs, warns...))
	}
	for _, w := range config.Sorted(warns) {
		fmt.Fprintln(env.stderr(), w)
	}
	fmt.Fprintf(env.stdout(), "%s: ok\n", *path)
	return nil
}

// checkNode checks what node name will use on this host.
func checkNode(cfg *config.Config, name string) []config.Problem {
	var probs []config.Problem
	table := nodeTablePath(cfg, name)
	if msg := keyUsable(cfg.NodeSignerPath(name)); msg != "" {
		probs = append(probs, cfg.ProblemAt("node key: "+msg, table...))
	}
	switch table[0] {
	case "broker", "brokers":
		if msg := writable(cfg.StateDir); msg != "" {
			probs = append(probs, cfg.ProblemAt("the broker keeps its state here: "+msg, "state_dir"))
		}
	case "gateway":
		if msg := keyUsable(cfg.Resolve(cfg.Gateways[name].HostKey)); msg != "" {
			probs = append(probs, cfg.ProblemAt(msg, "gateway", name, "host_key"))
		}
	case "server":
		for _, app := range cfg.Servers[name].Apps {
			for _, p := range appd.CheckApp(app, appOf(cfg.Apps[app])) {
				probs = append(probs, cfg.ProblemAt(p.Msg, "app", app, p.Key))
			}
		}
	}
	return probs
}

// nodeTablePath is the path of the table that defines node name.
func nodeTablePath(cfg *config.Config, name string) []string {
	switch {
	case name == config.DefaultBroker:
		return []string{"broker"}
	case cfg.IsBroker(name):
		return []string{"brokers", name}
	}
	if _, ok := cfg.Gateways[name]; ok {
		return []string{"gateway", name}
	}
	return []string{"server", name}
}

// keyUsable says why the private key at path can be neither loaded nor
// created, or "".
func keyUsable(path string) string {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		if msg := writable(filepath.Dir(path)); msg != "" {
			return fmt.Sprintf("%s does not exist and cannot be created: %s", path, msg)
		}
		return ""
	case err != nil:
		return err.Error()
	}
	if _, err := ssh.ParsePrivateKey(data); err != nil {
		return fmt.Sprintf("%s: %v", path, err)
	}
	return ""
}

// writable says why a file cannot be created in dir, or in the directory
// that would hold it once created, or "".
func writable(dir string) string {
	for {
		fi, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) && filepath.Dir(dir) != dir {
			dir = filepath.Dir(dir) // created on demand: its parent must take it
			continue
		}
		if err != nil {
			return err.Error()
		}
		if !fi.IsDir() {
			return dir + " is not a directory"
		}
		f, err := os.CreateTemp(dir, ".switchyard-check-*")
		if err != nil {
			return fmt.Sprintf("%s is not writable: %v", dir, err)
		}
		f.Close()
		os.Remove(f.Name())
		return ""
	}
}

// appOf is what CheckApp needs of an app: how a spawn finds its program,
// user and directory.
func appOf(a config.App) appd.App {
	return appd.App{Argv: a.Argv, Env: a.Env, Dir: a.Dir, User: a.User, AllowRoot: a.AllowRoot}
}
