package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run([]string{"-servers", "12", "-sessions", "3000", "-duration", "30m", "-seed", "3"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"seed 3, 12 servers", "| switchyard", "| round-robin", "| random", "| least-connections", "| power-of-two-choices"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run([]string{"-provision", "guess"}, &out); err == nil {
		t.Error("bad -provision accepted")
	}
}
