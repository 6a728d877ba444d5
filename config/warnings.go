package config

import (
	"path/filepath"
	"slices"

	"github.com/BurntSushi/toml"
)

// runsItsArguments are programs that run (or load and run) what their
// arguments name: with allow_args, each hands the user a shell.
var runsItsArguments = []string{
	"sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "busybox",
	"env", "sudo", "su", "doas", "nice", "nohup", "timeout", "stdbuf", "setsid", "chroot",
	"xargs", "find", "watch", "script", "flock", "strace", "ltrace", "gdb", "runuser",
	"python", "python2", "python3", "perl", "ruby", "node", "php", "lua", "tclsh", "awk", "gawk", "mawk",
	"vim", "vi", "nvim", "emacs", "less", "more", "man", "git", "ssh", "tmux", "screen",
}

// Warnings returns what is allowed but probably a mistake, each at the
// file:line:col of its key, in file order: today, allow_args on an app
// whose program runs its arguments (a shell, env, an interpreter, find,
// an editor), which amounts to handing out a shell. Validate does not
// include them; `check` prints them without failing.
func (c *Config) Warnings() []Problem {
	var out []Problem
	for _, name := range sortedKeys(c.Apps) {
		a := c.Apps[name]
		if !a.AllowArgs || len(a.Argv) == 0 {
			continue
		}
		prog := filepath.Base(a.Argv[0])
		if !slices.Contains(runsItsArguments, prog) {
			continue
		}
		k := toml.Key{"app", name, "allow_args"}
		line, col := c.pos.find(k)
		out = append(out, Problem{File: c.Path, Line: line, Col: col,
			Msg: k.String() + ": warning: " + prog + " runs what its arguments name, so allow_args hands out a shell; set argv in full and drop allow_args"})
	}
	out = append(out, c.etcdWarnings()...)
	sortProblems(out)
	return out
}
