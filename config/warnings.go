package config

import (
	"path/filepath"
	"slices"
	"strconv"

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
	out = append(out, c.nearWarnings()...)
	sortProblems(out)
	return out
}

// nearWarnings warns of each region listed in a near list that no server
// is in: placement gives the near regions 0.5, 0.25, ... of the locality
// weight by their place in the list, so an empty one takes a place and
// halves the weight of every region after it.
func (c *Config) nearWarnings() []Problem {
	used := map[string]bool{}
	for _, s := range c.Servers {
		used[s.Region] = true
	}
	var out []Problem
	for _, name := range sortedKeys(c.Regions) {
		for i, n := range c.Regions[name].Near {
			if used[n] {
				continue
			}
			k := toml.Key{"region", name, "near"}
			line, col := c.pos.find(k)
			msg := k.String() + ": warning: no server is in region " + strconv.Quote(n)
			if i < len(c.Regions[name].Near)-1 {
				msg += ", yet it takes a place in the list and halves the locality weight of every region after it; drop it or put it last"
			} else {
				msg += "; it is listed for nothing"
			}
			out = append(out, Problem{File: c.Path, Line: line, Col: col, Msg: msg})
		}
	}
	return out
}
