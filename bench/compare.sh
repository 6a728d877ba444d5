#!/bin/sh
# compare.sh: Switchyard against a stock OpenSSH sshd on this machine.
#
#   bench/compare.sh [BENCHTIME]     BENCHTIME as for go test -benchtime
#                                    (default 1s; 3x for a quick look)
#
# Runs the e2e benchmarks (the same x/crypto/ssh client code against an
# in-process Switchyard cluster and a private sshd) and
# TestStockClientLatency (the real ssh binary, launch to first output) in
# one `go test`, then prints a table with the ratio Switchyard/sshd.
# Needs ssh and /usr/sbin/sshd; as root it creates /run/sshd. Figures are
# as noisy as the machine: the load average is printed with them.
set -eu
cd "$(dirname "$0")/.."
benchtime=${1:-1s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT INT TERM

echo "switchyard vs sshd: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), benchtime $benchtime"
if ! SWITCHYARD_BENCH=1 go test -count=1 -timeout 15m -run '^TestStockClientLatency$' \
	-bench . -benchtime "$benchtime" ./e2e/ >"$log" 2>&1; then
	cat "$log"
	echo "compare.sh: go test failed" >&2
	exit 1
fi

awk '
function better(unit) { return unit == "MB/s" ? "higher" : "lower" }
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
function show(x) { return x == "" ? "-" : x }
/^Benchmark/ {
	name = $1
	sub(/^Benchmark/, "", name)
	sub(/-[0-9]+$/, "", name)
	n = split(name, part, "/")
	if (n != 2) next
	bench = part[1]; target = part[2]
	for (i = 3; i < NF; i += 2) {
		key = bench SUBSEP $(i + 1)
		if (!(key in seen)) { seen[key] = 1; order[++rows] = key }
		val[key, target] = $i
	}
}
/^STOCKCLIENT / {
	for (i = 2; i <= NF; i++) {
		split($i, kv, "=")
		f[kv[1]] = kv[2]
	}
	t = f["name"]
	sc[t, "first output p50 ms"] = f["first_p50_ms"]
	sc[t, "first output p90 ms"] = f["first_p90_ms"]
	sc[t, "exit p50 ms"] = f["exit_p50_ms"]
	runs = f["runs"]
}
END {
	fmt = "%-16s %-8s %14s %14s %9s  %s\n"
	printf fmt, "benchmark", "metric", "switchyard", "sshd", "sy/sshd", "better"
	for (r = 1; r <= rows; r++) {
		split(order[r], k, SUBSEP)
		a = val[order[r], "switchyard"]; b = val[order[r], "sshd"]
		printf fmt, k[1], k[2], show(a), show(b), ratio(a, b), better(k[2])
	}
	print ""
	print "stock client: ssh -tt LOGIN@127.0.0.1 echo ready, " runs " runs each"
	fmt = "%-25s %14s %14s %9s  %s\n"
	split("first output p50 ms|first output p90 ms|exit p50 ms", m, "|")
	for (i = 1; i <= 3; i++) {
		a = sc["switchyard", m[i]]; b = sc["sshd", m[i]]
		printf fmt, m[i], show(a), show(b), ratio(a, b), "lower"
	}
}' "$log"

if grep -q -- '--- SKIP' "$log"; then
	echo
	grep -A1 -- '--- SKIP' "$log" | grep -v -- '^--$'
fi
