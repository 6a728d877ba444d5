package appd

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"switchyard/control"
)

// command builds the exec.Cmd for one spawn: the app's own argv plus the
// request's arguments as separate entries (never through a shell), the
// session environment and working directory. SysProcAttr is left to the
// PTY or batch starter.
func command(req control.SpawnRequest, app App, acct *account) (*exec.Cmd, error) {
	env := sessionEnv(req, acct, app)
	path, err := lookPath(app.Argv[0], envValue(env, "PATH"))
	if err != nil {
		return nil, rejectWrap(err, control.CodeSpawnFailed,
			"app %q: program %q not found on this server", req.App, app.Argv[0])
	}
	argv := append(slices.Clone(app.Argv), req.Args...)
	return &exec.Cmd{Path: path, Args: argv, Env: env, Dir: workDir(app, acct)}, nil
}

// lookPath resolves a program name against the session's PATH, not appd's
// own. Names containing a slash are used as they are.
func lookPath(name, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			continue // an empty entry means ".", which a daemon must not search
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// workDir is app.Dir, else the user's home if it is a directory, else "/".
func workDir(app App, acct *account) string {
	if app.Dir != "" {
		return app.Dir
	}
	if fi, err := os.Stat(acct.home); acct.home != "" && err == nil && fi.IsDir() {
		return acct.home
	}
	return "/"
}

// envValue returns the value of key in a KEY=value list.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}
