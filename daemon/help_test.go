package daemon

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// -h and --help print the command's help on stdout and exit 0; -version
// prints the version; a mistake prints one reminder on stderr and exits 2.
func TestHelpVersionAndMistakes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		run    RunFunc
		args   []string
		status int
		stdout []string // each must appear
		stderr []string
	}{
		{"broker", Broker, []string{"-h"}, 0, []string{"broker status", "broker drain|undrain", "-node name", "-log-level", "-version", "exit status"}, nil},
		{"broker", Broker, []string{"status", "--help"}, 0, []string{"broker status [-json]", "-json"}, nil},
		{"broker", Broker, []string{"drain", "-h"}, 0, []string{"broker drain [-node NAME] -config FILE SERVER"}, nil},
		{"slave", Slave, []string{"-h"}, 0, []string{"slave -node NAME", "slave check", "SIGUSR2"}, nil},
		{"appd", Appd, []string{"--help"}, 0, []string{"appd -node NAME", "appd check"}, nil},
		{"demo", Local, []string{"-h"}, 0, []string{"demo [-ha]", "-ha"}, nil},
		{"slave", Slave, []string{"-version"}, 0, []string{"slave " + Version}, nil},
		{"appd", Appd, []string{"-bogus"}, 2, nil, []string{"appd: usage: flag provided but not defined: -bogus", "usage: appd -node NAME -config FILE [flags]; -h for help"}},
	} {
		t.Run(tt.name+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := tt.run(context.Background(), tt.args, Env{Stdout: &stdout, Stderr: &stderr})
			if status := Exit(tt.name, err, &stdout, &stderr); status != tt.status {
				t.Fatalf("status %d, want %d; stderr %q", status, tt.status, stderr.String())
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if tt.status == 0 && stderr.Len() > 0 {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
		})
	}
}
