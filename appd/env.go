package appd

import (
	"maps"
	"slices"
	"strings"

	"switchyard/control"
)

// defaultPath is the PATH every session starts with.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// sessionEnv builds an app's environment. Nothing comes from appd's own
// environment. In order, later entries winning:
//
//   - TERM from the PTY spec (PTY sessions only);
//   - LANG, LC_* and COLORTERM from the client's env (nothing else);
//   - HOME, USER, LOGNAME and SHELL of the run-as user, PATH=defaultPath;
//   - app.Env.
//
// The result is sorted, one KEY=value entry per key.
func sessionEnv(req control.SpawnRequest, acct *account, app App) []string {
	env := make(map[string]string)
	if req.Pty != nil && validEnv("TERM", req.Pty.Term) && req.Pty.Term != "" {
		env["TERM"] = req.Pty.Term
	}
	for k, v := range req.Env {
		if clientEnvAllowed(k) && validEnv(k, v) {
			env[k] = v
		}
	}
	env["HOME"] = acct.home
	env["USER"] = acct.name
	env["LOGNAME"] = acct.name
	env["SHELL"] = acct.shell
	env["PATH"] = defaultPath
	maps.Copy(env, app.Env)
	list := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		list = append(list, k+"="+env[k])
	}
	return list
}

// clientEnvAllowed reports whether a client variable may reach the app.
func clientEnvAllowed(key string) bool {
	switch key {
	case "LANG", "COLORTERM":
		return true
	}
	rest, ok := strings.CutPrefix(key, "LC_")
	if !ok || rest == "" {
		return false
	}
	for _, r := range rest {
		if (r < 'A' || r > 'Z') && r != '_' {
			return false
		}
	}
	return true
}

// validEnv reports whether key=value can be passed to execve unchanged.
func validEnv(key, value string) bool {
	return !strings.ContainsAny(key, "=\x00") && !strings.ContainsRune(value, 0)
}
