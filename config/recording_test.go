package config

import (
	"testing"
	"time"
)

func TestValidateRecordingRules(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"default unknown", base + "[recording]\n§default = \"all\"\n", `recording.default: must be "off", "output" or "input" (output and input), not "all"`},
		{"app record unknown", "[app.top]\nargv = [\"top\"]\n§record = \"yes\"\n" + gw + srv, `app.top.record: must be "off", "output" or "input"`},
		{"max_size negative", base + "[recording]\n§max_size = -1\n", "recording.max_size: must not be negative"},
		{"retention negative", base + "[recording]\n§retention = \"-1h\"\n", "recording.retention: must not be negative"},
		{"unknown key", base + "[recording]\n§size = 1\n", "unknown key recording.size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, tc.src, tc.want) })
	}
}

func TestRecordingDefaultsAndModes(t *testing.T) {
	src := "state_dir = \"/st\"\n" + base + "[app.vi]\nargv = [\"vi\"]\nrecord = \"input\"\n[recording]\ndefault = \"output\"\n"
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Recording
	if c.RecordDir() != "/st/recordings" || r.RecordMaxSize() != 100<<20 || r.RecordRetention() != 720*time.Hour || !r.Notify() {
		t.Errorf("defaults: dir %q, %+v", c.RecordDir(), r)
	}
	if c.RecordMode("vi") != RecordInput || c.RecordMode("top") != RecordOutput {
		t.Errorf("modes: vi %q, top %q", c.RecordMode("vi"), c.RecordMode("top"))
	}
	c, err = Parse("t.toml", []byte("state_dir = \"/st\"\n"+base+"[recording]\ndir = \"/rec\"\nnotify_watch = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.RecordDir() != "/rec" || c.Recording.Notify() || c.RecordMode("top") != RecordOff {
		t.Errorf("dir %q, notify %v, top %q", c.RecordDir(), c.Recording.Notify(), c.RecordMode("top"))
	}
}
