package config

import "testing"

func TestErrorFormat(t *testing.T) {
	err := &Error{Problems: []Problem{
		{File: "c.toml", Msg: "no gateway"},
		{File: "c.toml", Line: 3, Msg: "bad"},
		{File: "c.toml", Line: 4, Col: 2, Msg: "worse"},
		{Msg: "nowhere"},
	}}
	want := "c.toml: no gateway\nc.toml:3: bad\nc.toml:4:2: worse\nnowhere"
	if got := err.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEditDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{{"", "", 0}, {"listn", "listen", 1}, {"apps", "app", 1}, {"abc", "", 3}, {"kitten", "sitting", 3}}
	for _, tc := range cases {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
