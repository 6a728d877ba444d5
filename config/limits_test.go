package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestLimitsRefusedWithPositions(t *testing.T) {
	src := base + `
[limits]
memory = 256
cpu = 2
open_files = "lots"
core = "unlimited"
[app.a]
argv = ["a"]
[app.a.limits]
memory = "256 M"
open_files = 2048
open_files_hard = 1024
tasks = 0.5
[app.b]
argv = ["b"]
limits = { memory = "12K", cpu = "x%", tasks = 0 }
`
	_, err := Parse("t.toml", []byte(src))
	if err == nil {
		t.Fatal("bad limits accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`limits.memory: 256 has no unit: write "256M" for 256 MiB, or "256B" for bytes`,
		`limits.cpu: 2 has no unit: write "200%" (100% is one CPU)`,
		`limits.open_files: invalid value "lots": must be a whole number, or "unlimited"`,
		`app.a.limits.open_files_hard: is below open_files (2048)`,
		`app.a.limits.tasks: must be a whole number, or "unlimited", not 0.5`,
		`app.b.limits.memory: must be at least 1 MiB`,
		`app.b.limits.cpu: invalid value "x%"`,
		`app.b.limits.tasks: must be at least 1`,
	}
	var got []string
	for _, l := range lines {
		if strings.Contains(l, "limits.") {
			got = append(got, l)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d limit problems, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
		}
	}
	// Each at its key's line (base is the first lines of src).
	n := strings.Count(base, "\n")
	for i, line := range []int{n + 3, n + 4, n + 5, n + 12, n + 13} {
		if prefix := "t.toml:" + strconv.Itoa(line) + ":"; !strings.HasPrefix(got[i], prefix) {
			t.Errorf("problem %d = %q, want it at %s", i, got[i], prefix)
		}
	}
}

func TestAppResources(t *testing.T) {
	src := base + `
[limits]
memory = "1G"
open_files = 2048
core = "unlimited"
[app.a]
argv = ["a"]
[app.a.limits]
memory = "256M"
cpu = "150%"
open_files = 8192
[app.b]
argv = ["b"]
`
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a := c.AppResources("a")
	wantA := Resources{OpenFiles: 8192, OpenFilesHard: 8192, Processes: Unlimited, Core: Unlimited,
		Memory: 256 << 20, CPU: 150, Tasks: 512}
	if a != wantA {
		t.Errorf("app a: %+v, want %+v", a, wantA)
	}
	b := c.AppResources("b")
	wantB := Resources{OpenFiles: 2048, OpenFilesHard: 4096, Processes: Unlimited, Core: Unlimited,
		Memory: 1 << 30, CPU: Unlimited, Tasks: 512}
	if b != wantB {
		t.Errorf("app b: %+v, want %+v", b, wantB)
	}
	if d := (&Config{}).AppResources("x"); d != DefaultResources {
		t.Errorf("no table: %+v, want the defaults %+v", d, DefaultResources)
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]uint64{
		"0": 0, "100B": 100, "1K": 1024, "1KB": 1024, "1KiB": 1024, "256M": 256 << 20, "256m": 256 << 20,
		"1.5G": 3 << 29, "2T": 2 << 40, "64 MiB": 64 << 20,
	} {
		if got, ok := ParseSize(s); !ok || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "256", "M", "-1M", "1X", "1.M", "99999999999T"} {
		if got, ok := ParseSize(s); ok {
			t.Errorf("ParseSize(%q) = %d, want refused", s, got)
		}
	}
	for n, want := range map[uint64]string{256 << 20: "256 MiB", 3 << 29: "1536 MiB", 100: "100 bytes", 1 << 30: "1 GiB", Unlimited: "unlimited"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
