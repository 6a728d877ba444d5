package safelog

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"htop", "htop"},
		{"hello world", "hello world"},
		{"caf\u00e9", "caf\u00e9"},
		{"\x1b]0;pwned\x07\x1b[2J", `\x1b]0;pwned\x07\x1b[2J`},
		{"a\nb\rc\td", `a\nb\rc\td`},
		{"back\\slash", `back\\slash`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"rtl\u202eexe.txt", `rtl\u202eexe.txt`},
		{"c1\u009b31m", `c1\x9b31m`},
		{"del\x7f", `del\x7f`},
	}
	for _, c := range cases {
		if got := Text(c.in, 0); got != c.want {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTextCaps(t *testing.T) {
	long := strings.Repeat("x", 100_000)
	got := Text(long, 0)
	if want := strings.Repeat("x", Max) + "...(99872 more bytes)"; got != want {
		t.Fatalf("Text(100 KB) = %q", got)
	}
	// A rune is never split at the cap.
	s := strings.Repeat("a", Max-1) + "\u00e9\u00e9"
	got = Text(s, 0)
	if !strings.HasPrefix(got, strings.Repeat("a", Max-1)+"...(") {
		t.Fatalf("split rune: %q", got)
	}
	// Escaping never makes the output more than 4x the cap plus the note.
	ctl := strings.Repeat("\x1b", 10_000)
	if got := Text(ctl, 0); len(got) > 4*Max+32 {
		t.Fatalf("escaped output %d bytes", len(got))
	}
}

func TestStringsCapsCount(t *testing.T) {
	args := make([]string, 1000)
	for i := range args {
		args[i] = "\x1b[2J"
	}
	a := Strings("args", args)
	v := a.Value.Any().([]string)
	if len(v) != 17 || v[16] != "...(984 more)" || v[0] != `\x1b[2J` {
		t.Fatalf("Strings = %d %q", len(v), v[len(v)-1])
	}
}

func TestRepeatsSummarises(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	done := make(chan struct{}, 4)
	r := &Repeats{Window: 50 * time.Millisecond, Summary: func(key string, n int, _ time.Duration) {
		mu.Lock()
		got[key] += n
		mu.Unlock()
		done <- struct{}{}
	}}
	logged := 0
	for i := 0; i < 1000; i++ {
		if r.Allow("10.0.0.1") {
			logged++
		}
		if i%100 == 0 && r.Allow("10.0.0.2") {
			logged++
		}
	}
	if logged != 2 {
		t.Fatalf("logged %d of 1010 events in one window, want 2 (one per source)", logged)
	}
	for i := 0; i < 2; i++ {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("no summary after the window")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got["10.0.0.1"] != 999 || got["10.0.0.2"] != 9 {
		t.Fatalf("summaries %v, want 999 and 9", got)
	}
	if !r.Allow("10.0.0.1") {
		t.Fatal("a new window logs again")
	}
}

func TestRepeatsBoundsKeys(t *testing.T) {
	r := &Repeats{Window: time.Hour}
	for i := 0; i < maxKeys+500; i++ {
		r.Allow(strings.Repeat("k", 1+i%7) + string(rune('a'+i%26)) + time.Duration(i).String())
	}
	r.mu.Lock()
	n := len(r.m)
	r.mu.Unlock()
	if n > maxKeys+1 {
		t.Fatalf("%d keys tracked, bound %d", n, maxKeys+1)
	}
}

func TestRepeatsBurst(t *testing.T) {
	held := make(chan int, 1)
	r := &Repeats{Window: 50 * time.Millisecond, Burst: 3, Summary: func(_ string, n int, _ time.Duration) { held <- n }}
	logged := 0
	for range 100 {
		if r.Allow("10.0.0.1") {
			logged++
		}
	}
	if logged != 3 {
		t.Fatalf("logged %d of 100 with Burst 3", logged)
	}
	select {
	case n := <-held:
		if n != 97 {
			t.Fatalf("summary of %d, want 97", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no summary after the window")
	}
}
