#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): vet, every test under the
# race detector, the heavy load test without it, each fuzz target for a
# bounded time, and every benchmark once (to prove they run; benchmarks
# never pass or fail on time). About four minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")"
fuzztime=${FUZZTIME:-10s}

go vet ./...
go test -race -count=1 ./...
# 500 sessions × 4 MiB both ways; built only without -race (see the file).
go test -count=1 -run '^TestFiveHundredSessionsLoseNothing$' ./e2e/

fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s "$1"; }
fuzz ./control/ FuzzDecodeFrame
fuzz ./config/ FuzzParse
fuzz ./config/ FuzzPositions
fuzz ./sshgate/ FuzzParseCommand
fuzz ./selection/ FuzzPlaceTable

go test -run '^$' -bench . -benchtime 1x ./...
