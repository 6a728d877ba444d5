package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestScanPositions(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want map[string]string // key → "line:col"; "" means absent
	}{
		{"key", "a = 1", map[string]string{"a": "1:1"}},
		{"table", "[server.s1]\nlisten = \"x\"\n", map[string]string{
			"server": "1:1", "server.s1": "1:1", "server.s1.listen": "2:1"}},
		{"indented quoted header", "  [ app . \"my app\" ]\n  argv = []\n", map[string]string{
			`app."my app"`: "1:3", `app."my app".argv`: "2:3"}},
		{"literal header", "[app.'x y']\nargv = []\n", map[string]string{`app."x y".argv`: "2:1"}},
		{"dotted key", "[t]\n x . y.z = 1\n", map[string]string{
			"t.x": "2:2", "t.x.y": "2:2", "t.x.y.z": "2:2"}},
		{"quoted dotted key", "\"a b\".'c' = 1\n", map[string]string{`"a b".c`: "1:1"}},
		{"escapes in key", "\"a\\\"b\" = 1\n\"\\u00e9\" = 2\n", map[string]string{
			`"a\"b"`: "1:1", `"é"`: "2:1"}},
		{"multi-line basic string", "s = \"\"\"\nfake = 1\n[fake]\n\"\"\"\nreal = 2\n", map[string]string{
			"s": "1:1", "fake": "", "real": "5:1"}},
		{"multi-line basic with quotes", "s = \"\"\"a \\\"\"\" b = 1 \"\" c\"\"\"\"\"\nreal = 2\n", map[string]string{
			"b": "", "c": "", "real": "2:1"}},
		{"multi-line literal", "s = '''\nfake = 1\n''''' \nreal = 2\n", map[string]string{
			"fake": "", "real": "4:1"}},
		{"multi-line array", "a = [\n  \"]\", # x = 1\n  'b',\n  [1, [2]],\n]\nnext = 1\n", map[string]string{
			"a": "1:1", "x": "", "next": "6:1"}},
		{"array with multi-line string", "a = [\"\"\"\n[fake]\n\"\"\", '''\ny = 1''']\nz = 1\n", map[string]string{
			"fake": "", "y": "", "z": "5:1"}},
		{"inline table", "[app.top]\nenv = { A = \"1\", \"B C\" = 2, d.e = {f = 3} }\n", map[string]string{
			"app.top.env": "2:1", "app.top.env.A": "2:9", `app.top.env."B C"`: "2:18",
			"app.top.env.d.e": "2:29", "app.top.env.d.e.f": "2:36"}},
		{"multi-line inline table", "t = {\n  a = 1, # b = 2\n  c = [\n 1],\n}\nd = 1\n", map[string]string{
			"t.a": "2:3", "b": "", "t.b": "", "t.c": "3:3", "d": "6:1"}},
		{"array of inline tables", "x = [{a = 1}, {b = 2}]\n", map[string]string{"x.a": "1:7", "x.b": "1:16"}},
		{"comments", "# a = 1\n[t] # [u]\nc = 1 # d = 2\n", map[string]string{
			"a": "", "u": "", "t.c": "3:1", "t.d": ""}},
		{"strings with hashes and quotes", "a = \"x # y = 1\"\nb = 'it''s'\ns = \"a\\\"b = c\"\nn = 1\n", map[string]string{
			"y": "", "b": "2:1", "n": "4:1"}},
		{"date-time with a space", "d = 1979-05-27 07:32:00\ne = 1\n", map[string]string{"e": "2:1"}},
		{"explicit table beats implied", "[a.b]\n[a]\n", map[string]string{"a": "2:1", "a.b": "1:1"}},
		{"first definition wins", "[[p]]\nx = 1\n[[p]]\nx = 2\n", map[string]string{"p": "1:1", "p.x": "2:1"}},
		{"crlf", "[t]\r\na = 1\r\n  b = 2\r\n", map[string]string{"t.a": "2:1", "t.b": "3:3"}},
		{"bom", "\ufeffa = 1\n", map[string]string{"a": "1:4"}},
		{"unterminated string", "a = \"x\nb = 1\n", map[string]string{"b": "2:1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := scanPositions(tc.src)
			for key, want := range tc.want {
				got := ""
				if line, col := p.exact(key); line > 0 {
					got = fmt.Sprintf("%d:%d", line, col)
				}
				if got != want {
					t.Errorf("%s at %q, want %q (have %v)", key, got, want, keysOf(p))
				}
			}
		})
	}
}

func keysOf(p *positions) []string {
	var keys []string
	for _, k := range sortedKeys(p.keys) {
		line, col := p.lineCol(p.keys[k].off)
		keys = append(keys, fmt.Sprintf("%s@%d:%d", k, line, col))
	}
	return keys
}

func TestPositionsFindFallsBackToAncestor(t *testing.T) {
	p := scanPositions("x = 1\n\n[server.s1]\nmax_sessions = 3\n")
	cases := []struct {
		key  toml.Key
		want string
	}{
		{toml.Key{"server", "s1", "max_sessions"}, "4:1"},
		{toml.Key{"server", "s1", "listen"}, "3:1"},
		{toml.Key{"server", "s2", "listen"}, "3:1"},
		{toml.Key{"gateway", "g1"}, "0:0"},
		{nil, "0:0"},
	}
	for _, tc := range cases {
		line, col := p.find(tc.key)
		if got := fmt.Sprintf("%d:%d", line, col); got != tc.want {
			t.Errorf("find(%s) = %s, want %s", tc.key, got, tc.want)
		}
	}
	var none *positions
	if line, col := none.find(toml.Key{"a"}); line != 0 || col != 0 {
		t.Errorf("nil positions found %d:%d", line, col)
	}
}

// TestPositionsCoverDecodedKeys checks every key the toml package sees in
// the example file and in the scanner cases is found by the scanner.
func TestPositionsCoverDecodedKeys(t *testing.T) {
	srcs := []string{
		readExample(t),
		"[app.top]\nenv = { A = \"1\", \"B C\" = 2, d.e = {f = 3} }\n",
		"s = \"\"\"\nfake = 1\n\"\"\"\na = [\n  \"]\", # x = 1\n]\n[[p]]\nx = 1\n[[p]]\ny.z = 2\n",
		"x = [{a = 1}, {b = [{c = 2}]}]\n\"é\".'q r' = 1\n",
	}
	for _, src := range srcs {
		checkCoverage(t, src)
	}
}

// checkCoverage fails if a key the toml package decodes from src is
// missing from the scanner's positions.
func checkCoverage(t *testing.T, src string) {
	t.Helper()
	var v map[string]any
	md, err := toml.Decode(src, &v)
	if err != nil {
		return
	}
	p := scanPositions(src)
	for _, k := range md.Keys() {
		if _, ok := p.keys[k.String()]; !ok {
			t.Errorf("key %s not found by the scanner in:\n%s\nhave %s",
				k, src, strings.Join(keysOf(p), " "))
		}
	}
}

func FuzzPositions(f *testing.F) {
	f.Add(readExample(f))
	f.Add("a = [\"\"\"\n]\n\"\"\", {b.'c' = 1}]\n[t.\"u\\u00e9\"]\nx = 1979-05-27 07:32:00\n")
	f.Add("t = {\n a = 1,\n}\n")
	f.Fuzz(func(t *testing.T, src string) {
		checkCoverage(t, src)
	})
}
