package config

import (
	"testing"
	"time"
)

func TestAppGrace(t *testing.T) {
	src := base + `
[app.unset]
argv = ["x"]
[app.short]
argv = ["x"]
grace = "300ms"
[app.off]
argv = ["x"]
grace = "0s"
`
	c, err := Parse("grace.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for app, want := range map[string]time.Duration{"unset": DefaultGrace, "short": 300 * time.Millisecond, "off": 0} {
		if got := c.Apps[app].GracePeriod(); got != want {
			t.Errorf("app %s: GracePeriod() = %v, want %v", app, got, want)
		}
	}
	if DefaultGrace != 10*time.Minute {
		t.Errorf("DefaultGrace = %v, want 10m", DefaultGrace)
	}
	if (App{}).GracePeriod() != DefaultGrace {
		t.Error("an App built in code without Grace does not get the default")
	}
}
