package appd

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"switchyard/control"
)

// passwdFile is where the login shell is looked up; os/user does not
// expose it.
const passwdFile = "/etc/passwd"

// defaultShell is SHELL when the passwd file has no entry for the user.
const defaultShell = "/bin/sh"

// account is the Unix user a session runs as.
type account struct {
	name  string
	home  string
	shell string
	cred  *syscall.Credential // nil: run as appd's own user
}

// runAs resolves the Unix user an app runs as. When appd is root, app.User
// is required and may resolve to uid 0 only with app.AllowRoot: appd never
// falls back to root. When appd is not root, it runs apps as itself and
// ignores app.User.
func runAs(name string, app App) (*account, error) {
	if os.Geteuid() != 0 {
		return currentAccount(), nil
	}
	if app.User == "" {
		return nil, rejectf(control.CodeSpawnFailed,
			"app %q has no run-as user configured, and appd will not run it as root", name)
	}
	u, err := lookupUser(app.User)
	if err != nil {
		return nil, rejectWrap(err, control.CodeSpawnFailed,
			"app %q: run-as user %q does not exist on this server", name, app.User)
	}
	cred, err := credential(u)
	if err != nil {
		return nil, rejectWrap(err, control.CodeSpawnFailed,
			"app %q: run-as user %q has an unusable passwd entry", name, app.User)
	}
	if cred.Uid == 0 && !app.AllowRoot {
		return nil, rejectf(control.CodeSpawnFailed,
			"app %q would run as root (user %q), which its config does not allow", name, app.User)
	}
	return &account{name: u.Username, home: u.HomeDir, shell: loginShell(u.Username), cred: cred}, nil
}

// currentAccount describes appd's own user.
func currentAccount() *account {
	u, err := user.Current()
	if err != nil {
		return &account{name: strconv.Itoa(os.Geteuid()), home: "/", shell: defaultShell}
	}
	return &account{name: u.Username, home: u.HomeDir, shell: loginShell(u.Username)}
}

// lookupUser finds a user by name, or by uid when name is a number.
func lookupUser(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) && isDigits(name) {
		return user.LookupId(name)
	}
	return u, err
}

// credential builds the uid, gid and supplementary groups for u. If the
// group database cannot be read, the app gets its primary group only:
// fewer privileges, never more (an empty list still clears appd's own
// groups, because os/exec calls setgroups).
func credential(u *user.User) (*syscall.Credential, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid %q: %w", u.Gid, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}
	ids, err := u.GroupIds()
	if err != nil {
		return cred, nil
	}
	cred.Groups = cred.Groups[:0]
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil {
			cred.Groups = append(cred.Groups, uint32(g))
		}
	}
	return cred, nil
}

// loginShell returns the shell field of name's passwd entry, or
// defaultShell. Users only known to NSS modules (LDAP, sssd) get the
// default.
func loginShell(name string) string {
	f, err := os.Open(passwdFile)
	if err != nil {
		return defaultShell
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) == 7 && fields[0] == name && fields[6] != "" {
			return fields[6]
		}
	}
	return defaultShell
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
