#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): vet, every test under the
# race detector, the heavy load test without it, each fuzz target for a
# bounded number of inputs, and every benchmark once (to prove they run;
# benchmarks never pass or fail on time). About six minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")"

go vet ./...
# The e2e package takes about 5 minutes on two idle cores; the timeout
# leaves room for a busy machine.
go test -race -count=1 -timeout 15m ./...
# 500 sessions × 4 MiB both ways; built only without -race (see the file).
go test -count=1 -run '^TestFiveHundredSessionsLoseNothing$' ./e2e/

# Each target runs a fixed number of inputs, about 10 s on two cores: a
# count has no wall-clock deadline, so the race of Go 1.26's fuzzing
# coordinator at a -fuzztime deadline (go.dev/issue/75804: "context
# deadline exceeded" with no failing input, on a loaded machine) cannot
# fail the run. FUZZTIME (a duration or a count) overrides every target's.
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZTIME:-$3}" -fuzzminimizetime 2s "$1"; }
fuzz ./control/ FuzzDecodeFrame 500000x
fuzz ./config/ FuzzParse 20000x
fuzz ./config/ FuzzPositions 100000x
fuzz ./sshgate/ FuzzParseCommand 250000x
fuzz ./selection/ FuzzPlaceTable 20000x

go test -run '^$' -bench . -benchtime 1x ./...
