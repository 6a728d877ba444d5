package sshgate

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name    string
		login   string
		isApp   bool
		command string
		app     string
		args    []string
		err     error
	}{
		{"login app, no command", "htop", true, "", "htop", nil, nil},
		{"login app, blank command", "htop", true, "  \t ", "htop", nil, nil},
		{"login user, no command", "alice", false, "", "", nil, ErrNoApp},
		{"login user, app", "alice", false, "htop", "htop", nil, nil},
		{"app and args", "alice", false, "app a b", "app", []string{"a", "b"}, nil},
		{"runs of white space", "alice", false, "  app\ta   b\n", "app", []string{"a", "b"}, nil},
		{"no quoting", "alice", false, `app "a b" 'c'`, "app", []string{`"a`, `b"`, `'c'`}, nil},
		{"no shell", "alice", false, "app; rm -rf / | x", "app;", []string{"rm", "-rf", "/", "|", "x"}, nil},
		{"command overrides login app", "htop", true, "top -d 5", "top", []string{"-d", "5"}, nil},
		{"empty login is no app", "", true, "", "", nil, ErrNoApp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, args, err := ParseCommand(tt.login, tt.isApp, tt.command)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if app != tt.app || !slices.Equal(args, tt.args) {
				t.Errorf("ParseCommand(%q, %v, %q) = %q %q, want %q %q", tt.login, tt.isApp, tt.command, app, args, tt.app, tt.args)
			}
		})
	}
}

func FuzzParseCommand(f *testing.F) {
	f.Add("htop", true, "")
	f.Add("alice", false, "app a  b")
	f.Add("alice", false, "\u00a0app\u2003x")
	f.Fuzz(func(t *testing.T, login string, isApp bool, command string) {
		app, args, err := ParseCommand(login, isApp, command)
		if err != nil {
			if app != "" || args != nil {
				t.Fatalf("error with results: %q %q", app, args)
			}
			return
		}
		if app == "" {
			t.Fatal("empty app without error")
		}
		if strings.Join(append([]string{app}, args...), " ") != strings.Join(strings.Fields(command), " ") && strings.TrimSpace(command) != "" {
			t.Fatalf("words lost: %q → %q %q", command, app, args)
		}
	})
}
