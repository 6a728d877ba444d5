package appd

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"

	"switchyard/control"
)

// AppProblem is one reason an app would fail to start on this server:
// Key names the app's config key at fault ("argv", "user" or "dir").
type AppProblem struct {
	Key, Msg string
}

// CheckApp reports what would make spawning app name fail here, resolved
// as a spawn resolves it: its run-as user exists (when appd runs as root,
// it is required and must not be root without AllowRoot), its argv[0]
// found on the session's PATH (or as written, with a slash) is a regular
// file that user may execute, and its dir, if set, is a directory. None
// if the app would start.
func CheckApp(name string, app App) []AppProblem {
	var probs []AppProblem
	acct, err := runAs(name, app)
	var rej *rejectError
	switch {
	case errors.As(err, &rej):
		probs = append(probs, AppProblem{Key: "user", Msg: rej.Msg})
	case err != nil:
		probs = append(probs, AppProblem{Key: "user", Msg: err.Error()})
	}
	if err != nil {
		acct = currentAccount() // to check the program's path at least
	} else if os.Geteuid() != 0 && app.User != "" {
		if _, err := lookupUser(app.User); err != nil {
			probs = append(probs, AppProblem{Key: "user", Msg: fmt.Sprintf("run-as user %q does not exist on this server", app.User)})
		}
	}
	if len(app.Argv) > 0 {
		if msg := checkProgram(app, acct); msg != "" {
			probs = append(probs, AppProblem{Key: "argv", Msg: msg})
		}
	}
	if app.Dir != "" {
		if fi, err := os.Stat(app.Dir); err != nil || !fi.IsDir() {
			probs = append(probs, AppProblem{Key: "dir", Msg: fmt.Sprintf("%q is not a directory on this server", app.Dir)})
		}
	}
	return probs
}

// checkProgram returns why app's program cannot run as acct, or "".
func checkProgram(app App, acct *account) string {
	env := sessionEnv(control.SpawnRequest{}, acct, app)
	prog := app.Argv[0]
	path, err := lookPath(prog, envValue(env, "PATH"))
	if err != nil {
		return fmt.Sprintf("program %q is not on the session's PATH (%s)", prog, envValue(env, "PATH"))
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Sprintf("program %q: %v", path, err)
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("program %q is not a regular file", path)
	case !executable(fi, acct):
		return fmt.Sprintf("program %q is not executable by user %q (mode %v)", path, acct.name, fi.Mode().Perm())
	}
	return ""
}

// executable reports whether fi's mode lets acct execute it: the owner,
// group or other bits that apply to acct's uid and groups (root needs any
// execute bit).
func executable(fi os.FileInfo, acct *account) bool {
	mode := fi.Mode().Perm()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return mode&0o111 != 0
	}
	uid, groups := uint32(os.Geteuid()), []uint32{uint32(os.Getegid())}
	if ids, err := os.Getgroups(); err == nil {
		for _, g := range ids {
			groups = append(groups, uint32(g))
		}
	}
	if acct.cred != nil {
		uid, groups = acct.cred.Uid, append([]uint32{acct.cred.Gid}, acct.cred.Groups...)
	}
	switch {
	case uid == 0:
		return mode&0o111 != 0
	case st.Uid == uid:
		return mode&0o100 != 0
	case slices.Contains(groups, st.Gid):
		return mode&0o010 != 0
	}
	return mode&0o001 != 0
}
