package sshgate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"switchyard/control"
)

// Words the gateway answers itself when they come first in the command;
// config reserves them, so no app has these names.
const (
	CommandSessions = "sessions" // print a table of the user's sessions
	CommandResume   = "resume"   // resume the user's latest detached session, or the one named
)

// ErrNoApp is returned by ParseCommand when the client named no app and the
// login name is not one.
var ErrNoApp = errors.New("sshgate: no app named")

// ParseCommand decides which app a session runs. command is the client's
// exec command ("" for a shell request); login is the SSH login name and
// isApp reports whether it names an app. A non-empty command is split on
// white space with strings.Fields (no quoting, no shell): its first word is
// the app and the rest are arguments. An empty command runs the login app
// with no arguments, or returns ErrNoApp when the login is a user.
// args is nil when there are none.
func ParseCommand(login string, isApp bool, command string) (app string, args []string, err error) {
	words := strings.Fields(command)
	switch {
	case len(words) > 1:
		return words[0], words[1:], nil
	case len(words) == 1:
		return words[0], nil, nil
	case isApp && login != "":
		return login, nil, nil
	default:
		return "", nil, ErrNoApp
	}
}

// RegionEnv is the environment variable a client may send (ssh -o
// SetEnv=SWITCHYARD_REGION=eu) to name its region; the broker uses it
// instead of the region of the client's address when it names a
// configured region. appd does not pass it to the app.
const RegionEnv = "SWITCHYARD_REGION"

// maxSpawnRequest is appd's bound on the encoded spawn request (appd
// refuses a longer one as an internal error); the README's Limits section
// states it.
const maxSpawnRequest = 64 << 10

// checkSpawnSize refuses, as a usage error, a command whose spawn request
// (app, arguments and the environment the client sent, JSON-encoded)
// would be longer than appd takes, before the broker or appd is asked.
func checkSpawnSize(req control.SpawnRequest) *failure {
	b, err := json.Marshal(req)
	if err != nil {
		return internal(fmt.Errorf("encode spawn request: %w", err))
	}
	if len(b) > maxSpawnRequest {
		return &failure{Status: exitUsage, Line: fmt.Sprintf("command too long: at most %d KiB with its environment", maxSpawnRequest>>10),
			Err: fmt.Errorf("spawn request of %d bytes", len(b))}
	}
	return nil
}
