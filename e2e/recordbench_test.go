package e2e

import "testing"

// BenchmarkKeystrokeEchoRecorded is BenchmarkKeystrokeEcho with the
// session recorded: "off" (no recording), "output" and "input" (output
// and input), each on a cluster of its own, started only when its
// sub-benchmark runs, so that runs of one mode at a time can be
// interleaved on a busy machine:
//
//	go test -c -o e2e.test ./e2e/
//	for i in 1 2 3; do for m in off output input; do
//	  ./e2e.test -test.run '^$' -test.bench "KeystrokeEchoRecorded/^$m\$" -test.benchtime 3000x
//	done; done
func BenchmarkKeystrokeEchoRecorded(b *testing.B) {
	for _, mode := range []string{"off", "output", "input"} {
		var tg *Target
		b.Run(mode, func(sub *testing.B) {
			if tg == nil { // on b: it lasts the sub-benchmark's rounds
				t := switchyardTargetWith(b, "[recording]\ndefault = \""+mode+"\"\n")
				tg = &t
			}
			benchKeystrokeEcho(sub, *tg)
		})
	}
}
