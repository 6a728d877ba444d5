#!/usr/bin/env bash
# sidebyside.sh: Switchyard against a private stock OpenSSH sshd, each as
# real processes on this machine, measured by the same load tool
# (cmd/load) with the same parameters; prints one table with the ratios.
#
#   bench/sidebyside.sh [-n HOLD] [-r RATE] [-a SERVERS] [-P PROCS] [-T] [-s] [-H] [-R] [-k] [-w] [-p]
#
#   -n HOLD  concurrent sessions of the hold run (default 1000)
#   -a N     appd servers (default 2; each holds 4 descriptors per session
#            without a PTY, and ulimit -n may be capped at 20000)
#   -r RATE  hold: sessions opened per second, 0 for all at once (default
#            250; at most 64 are being opened at any time)
#   -P N     run the Switchyard daemons with GOMAXPROCS=N (default: the
#            Go runtime's, one per CPU); the load tool and sshd are
#            unaffected
#   -T       hold without PTYs (the kernel allows /proc/sys/kernel/pty/max)
#   -s       hold against Switchyard only (sshd needs about three
#            processes per session: 10,000 sessions would exhaust pid_max)
#   -H       the hold run only
#   -R       Switchyard's sessions are relayed: the load tool connects to
#            a second gateway, gwr (redirect = "relay", reaching only a
#            server s0 that runs no appd), which carries each session
#            through gw1's internal listener; the hold reports gwr's and
#            gw1's memory (gateway= is gwr, relay= is gw1)
#   -k       keep the temp dir (configs, keys, logs, results)
#   -w       measure nothing: start both servers, write their load tool
#            arguments to TMP/env.sh (source it, then e.g.
#            $bin/load hold "${sy[@]}" -cmd cat -n 10000 -pids "$sy_pids"),
#            and wait until interrupted
#   -p       profile: run the daemons under bench/profd and keep, in
#            the temp dir's prof/, a CPU profile of each for every
#            Switchyard run and a heap profile taken during the hold
#
# It builds broker, slave, appd, load and profd into a temp dir, starts
# `sshd -D -e -f CONFIG` on a free loopback port (host key and authorized
# key generated here, serving a temporary system user with /bin/sh, made
# and removed by this script) and a cluster of one broker, one gateway
# (gw1) and the appd servers (s1, s2, ...) from a config written here,
# runs each measurement against Switchyard then sshd (the hold first, on
# fresh daemons, since a Go heap grown earlier would absorb its growth),
# prints the table, and stops everything on exit.
# Needs go, ssh, ssh-keygen, jq, curl (-p) and /usr/sbin/sshd; run it as
# root (sshd wants /run/sshd and a user to switch to; appd runs the apps
# as nobody). Takes about two minutes on two cores. Figures are as noisy
# as the machine: compare the ratios, and run it twice.
set -euo pipefail
cd "$(dirname "$0")/.."

hold_n=1000 hold_rate=250 servers=2 procs="" hold_pty=true hold_sshd=true hold_only=false keep=false profile=false wait=false relay=false
while getopts "n:r:a:P:TsHRkpw" opt; do
	case $opt in
	n) hold_n=$OPTARG ;;
	r) hold_rate=$OPTARG ;;
	a) servers=$OPTARG ;;
	P) procs=$OPTARG ;;
	T) hold_pty=false ;;
	s) hold_sshd=false ;;
	H) hold_only=true ;;
	R) relay=true ;;
	k) keep=true ;;
	p) profile=true keep=true ;;
	w) wait=true ;;
	*) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "sidebyside.sh: run as root (sshd, apps as nobody)" >&2; exit 2; }
for tool in go ssh ssh-keygen jq /usr/sbin/sshd; do
	command -v "$tool" >/dev/null || { echo "sidebyside.sh: $tool is missing" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/sidebyside.XXXXXX)
chmod 755 "$tmp" # sshd reads authorized_keys as the login user
started=()
bench_user=sybench$$ # one per run: concurrent runs must not share it
made_user=false
cleanup() {
	for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
	if $made_user; then
		for _ in 1 2 3 4 5; do # its sessions may still be ending
			userdel "$bench_user" 2>/dev/null && break
			sleep 1
		done
	fi
	if $keep; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Many sessions want many descriptors; every child inherits this.
ulimit -n "$(ulimit -Hn)"

log() { echo "sidebyside: $*" >&2; }

# free_port VAR: a loopback port nothing listens on, not handed out before.
taken=" "
free_port() {
	local p
	while :; do
		p=$((15000 + RANDOM % 15000))
		case $taken in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			taken="$taken$p "
			printf -v "$1" %s "$p"
			return
		fi
	done
}

# wait_port PORT PID NAME: until PORT accepts, or fail if PID exits.
wait_port() {
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
		kill -0 "$2" 2>/dev/null || { log "$3 exited:"; tail -n 20 "$tmp/$3.log" >&2; exit 1; }
		sleep 0.05
	done
	log "$3 did not listen on $1 within 10s"; exit 1
}

bin=$tmp/bin
log "building into $bin"
go build -o "$bin/" ./cmd/broker ./cmd/slave ./cmd/appd ./cmd/load ./bench/profd

keygen() { ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1"; }
keygen "$tmp/user_key" sidebyside-user

# --- stock sshd ---------------------------------------------------------
# sshd runs every command through the login user's shell and its rc
# files; root's ~/.bashrc here runs pyenv (hundreds of ms, and a lock
# shared by all sessions), which is not sshd's cost. So sshd serves a
# temporary system user with /bin/sh and an empty home, removed on exit.
mkdir -p /run/sshd "$tmp/home"
if id "$bench_user" >/dev/null 2>&1; then
	usermod -d "$tmp/home" -s /bin/sh -p "*" "$bench_user"
else
	# "*": no password, yet not locked (sshd without PAM refuses locked accounts)
	useradd --system --password "*" --no-create-home --home-dir "$tmp/home" --shell /bin/sh --gid nogroup "$bench_user"
fi
made_user=true
chown "$bench_user" "$tmp/home"
keygen "$tmp/sshd_host" sshd-host
cp "$tmp/user_key.pub" "$tmp/authorized_keys"
chmod 644 "$tmp/authorized_keys"
free_port sshd_port
cat >"$tmp/sshd_config" <<EOF
Port $sshd_port
ListenAddress 127.0.0.1
HostKey $tmp/sshd_host
AuthorizedKeysFile $tmp/authorized_keys
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
PrintLastLog no
LogLevel ERROR
MaxStartups 100000
MaxSessions 100000
EOF
/usr/sbin/sshd -D -e -f "$tmp/sshd_config" >"$tmp/sshd.log" 2>&1 &
sshd_pid=$!
started+=("$sshd_pid")
echo "[127.0.0.1]:$sshd_port $(cut -d' ' -f1,2 "$tmp/sshd_host.pub")" >"$tmp/sshd_known"

# --- Switchyard: broker, gateway gw1, servers s1..sN --------------------
state=$tmp/state
mkdir -p "$state/keys"
names=$(seq -f 's%g' "$servers")
for node in broker gw1 $names; do keygen "$state/keys/$node" "$node"; done
keygen "$state/keys/gw1_host" gw1-host
free_port broker_port; free_port gw_port
pty_bytes=$((64 << 20))
cap=$((hold_n * 2 + 1000))
server_tables=""
for s in $names; do
	free_port port
	server_tables+="[server.$s]"$'\n'"listen = \"127.0.0.1:$port\""$'\n'"max_sessions = $cap"$'\n'
done
relay_tables="" gw1_internal=""
if $relay; then
	for node in gwr s0; do keygen "$state/keys/$node" "$node"; done
	keygen "$state/keys/gwr_host" gwr-host
	free_port internal_port; free_port gwr_port; free_port s0_port
	gw1_internal="internal = \"127.0.0.1:$internal_port\""
	relay_tables="[gateway.gwr]
listen = \"127.0.0.1:$gwr_port\"
capacity = $cap
max_conns_per_source = $cap
max_sessions_per_user = $cap
max_channels_per_conn = $cap
reach = [\"s0\"]
redirect = \"relay\"
[server.s0] # no appd: down, so every session goes to a server only gw1 reaches
listen = \"127.0.0.1:$s0_port\""
fi
cat >"$tmp/config.toml" <<EOF
state_dir = "$state"
[broker]
listen = "127.0.0.1:$broker_port"
report_interval = "1s"
[gateway.gw1]
listen = "127.0.0.1:$gw_port"
capacity = $cap
# One load tool on one address, one user: lift the per-client limits.
max_conns_per_source = $cap
max_sessions_per_user = $cap
max_channels_per_conn = $cap
$gw1_internal
$server_tables
$relay_tables
[policy]
affinity = "none" # spread the hold run over the servers
[app.cat]
argv = ["cat"]
user = "nobody"
grace = "0s"
[app.echo]
argv = ["echo"]
allow_args = true
user = "nobody"
grace = "0s"
[app.echoraw]
argv = ["sh", "-c", "stty raw -echo; echo ready; exec cat"]
user = "nobody"
grace = "0s"
[app.zeros]
argv = ["head", "-c", "$pty_bytes", "/dev/zero"]
user = "nobody"
grace = "0s"
[user.alice]
keys = ["$(cat "$tmp/user_key.pub")"]
apps = ["*"]
EOF
profiled=()
daemon() { # daemon NAME EXE ARGS...: start one node, its log in $tmp/NAME.log
	local name=$1 exe=$2
	local run=("$bin/$exe")
	shift 2
	if $profile; then
		local port
		free_port port
		mkdir -p "$tmp/prof/$name"
		run=("$bin/profd" -pprof "127.0.0.1:$port" -dir "$tmp/prof/$name" "$exe")
		profiled+=("$name=127.0.0.1:$port")
	fi
	if [ -n "$procs" ]; then run=(env "GOMAXPROCS=$procs" "${run[@]}"); fi
	"${run[@]}" -config "$tmp/config.toml" -log-level warn "$@" >"$tmp/$name.log" 2>&1 &
	started+=("$!")
	printf -v "pid_$name" %s "$!"
}
# prof PATH NAME: GET PATH?name=NAME from every profiled daemon.
prof() {
	local p
	for p in "${profiled[@]}"; do curl -fsS "http://${p#*=}$1?name=${2:-}" >/dev/null; done
}
daemon broker broker
wait_port "$broker_port" "$pid_broker" broker
sy_pids=""
for s in $names; do
	daemon "$s" appd -node "$s"
	pid=pid_$s
	sy_pids+=",appd=${!pid}"
done
daemon gw1 slave -node gw1
sy_pids="gateway=$pid_gw1$sy_pids"
wait_port "$gw_port" "$pid_gw1" gw1
if $relay; then
	daemon gwr slave -node gwr
	sy_pids="gateway=$pid_gwr,relay=$pid_gw1${sy_pids#gateway=$pid_gw1}"
	wait_port "$gwr_port" "$pid_gwr" gwr
	echo "[127.0.0.1]:$gwr_port $(cut -d' ' -f1,2 "$state/keys/gwr_host.pub")" >"$tmp/gwr_known"
fi
wait_port "$sshd_port" "$sshd_pid" sshd
echo "[127.0.0.1]:$gw_port $(cut -d' ' -f1,2 "$state/keys/gw1_host.pub")" >"$tmp/gw_known"
for _ in $(seq 300); do
	if "$bin/broker" status -json -config "$tmp/config.toml" 2>/dev/null |
		jq -e --argjson n "$servers" '([.servers[] | select(.healthy)] | length) == $n and all(.gateways[]; .connected)' >/dev/null 2>&1; then
		break
	fi
	sleep 0.1
done
# Each appd's keeper (its child, holding the apps' descriptors and state
# across appd restarts) is part of what a session costs on its server.
for s in $names; do
	pid=pid_$s
	keeper=$(pgrep -P "${!pid}" -f -- -switchyard-keeper | head -1 || true)
	if [ -n "$keeper" ]; then sy_pids+=",keeper=$keeper"; fi
done

# --- measurements -------------------------------------------------------
sy=(-addr "127.0.0.1:$gw_port" -user alice -key "$tmp/user_key" -known-hosts "$tmp/gw_known")
if $relay; then sy=(-addr "127.0.0.1:$gwr_port" -user alice -key "$tmp/user_key" -known-hosts "$tmp/gwr_known"); fi
sd=(-addr "127.0.0.1:$sshd_port" -user "$bench_user" -key "$tmp/user_key" -known-hosts "$tmp/sshd_known")
if $wait; then
	{
		declare -p bin sy sd
		echo "sy_pids=$sy_pids sd_pids=sshd=$sshd_pid+ gw_pid=$pid_gw1 sshd_pid=$sshd_pid"
		echo "profiled=(${profiled[*]})"
	} >"$tmp/env.sh"
	log "servers up; source $tmp/env.sh for their load tool arguments; interrupt to stop"
	while :; do sleep 1; done
fi

# measure NAME MODE SY_CMD SSHD_CMD ARGS...: the same run against both;
# a failed session does not stop the script (the table shows it).
measure() {
	local name=$1 mode=$2 sycmd=$3 sdcmd=$4
	shift 4
	log "$name: $mode $* (switchyard: $sycmd; sshd: $sdcmd)"
	prof /cpu/start "$name"
	"$bin/load" "$mode" -json -name "$name" "${sy[@]}" -cmd "$sycmd" "$@" >>"$tmp/switchyard.jsonl" || true
	prof /cpu/stop
	"$bin/load" "$mode" -json -name "$name" "${sd[@]}" -cmd "$sdcmd" "$@" >>"$tmp/sshd.jsonl" || true
}
# At most 64 sessions opening at once: sshd's listen backlog is 128, and
# a flood of handshakes it cannot take gets connections reset.
hold=(hold -json -name hold -n "$hold_n" -rate "$hold_rate" -parallel 64 -hold 10s -timeout 10m -pty="$hold_pty" -cmd cat)
heap=()
if $profile; then
	get="true"
	for p in "${profiled[@]}"; do get="$get && curl -fsS http://${p#*=}/heap?name=hold"; done
	heap=(-while-held "$get")
fi
log "hold: ${hold[*]} against switchyard"
"$bin/load" "${hold[@]}" "${sy[@]}" -pids "$sy_pids" "${heap[@]}" >"$tmp/switchyard-hold.jsonl" || true
if $hold_sshd; then
	log "hold: ${hold[*]} against sshd"
	"$bin/load" "${hold[@]}" "${sd[@]}" -pids "sshd=$sshd_pid+" >"$tmp/sshd-hold.jsonl" || true
else
	jq -c '{name, mode, pty}' "$tmp/switchyard-hold.jsonl" >"$tmp/sshd-hold.jsonl"
fi
sleep 2 # let the held sessions' processes end

echoraw_sshd="sh -c 'stty raw -echo; echo ready; exec cat'"
if ! $hold_only; then
	measure setup setup "echo ready" "echo ready" -n 50 -c 1
	measure setup-c8 setup "echo ready" "echo ready" -n 200 -c 8
	measure echo echo echoraw "$echoraw_sshd" -n 2000 -ready ready
	measure bulk bulk cat cat -bytes $((256 << 20))
	measure bulk-pty bulk zeros "head -c $pty_bytes /dev/zero" -pty -bytes "$pty_bytes"
	measure ssh-tt client "echo ready" "echo ready" -n 20
fi
cat "$tmp/switchyard-hold.jsonl" >>"$tmp/switchyard.jsonl"
cat "$tmp/sshd-hold.jsonl" >>"$tmp/sshd.jsonl"
echo
echo "switchyard (1 gateway, $servers appd, separate processes${procs:+, GOMAXPROCS=$procs}) vs $(/usr/sbin/sshd -V 2>&1 | head -n 1 | cut -d, -f1) sshd, same load tool"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC'); hold: $hold_n sessions, pty=$hold_pty, $hold_rate/s, 64 opening at most"
"$bin/load" compare -labels switchyard,sshd "$tmp/switchyard.jsonl" "$tmp/sshd.jsonl"
errors=$(jq -r 'select(.errors) | "\(.name): \(.errors[])"' "$tmp/switchyard.jsonl" "$tmp/sshd.jsonl" | head -n 10)
if [ -n "$errors" ]; then
	echo
	echo "first errors:"
	echo "$errors"
fi
if $profile; then
	echo
	echo "profiles (go tool pprof -top FILE):"
	ls "$tmp"/prof/*/*.pprof
fi
