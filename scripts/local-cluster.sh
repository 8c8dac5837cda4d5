#!/usr/bin/env bash
# Runs a real multi-process Strata cluster on this machine, for trying
# broker drains, failover and scaling on a laptop: one etcd, one
# coordinator, N brokers and one proxy, each a separate process, all
# storing objects in one local directory. See docs/local-cluster.md.
#
#   scripts/local-cluster.sh start [BROKERS]   # default 3 brokers
#   scripts/local-cluster.sh add-broker ID     # one more broker
#   scripts/local-cluster.sh kill ID           # kill -9 a process (broker-1, proxy, ...)
#   scripts/local-cluster.sh status            # the processes and their pids
#   scripts/local-cluster.sh stop              # SIGTERM everything
#
# Environment:
#   STRATA_LOCAL_DIR   state, logs and pids (default ./strata-local)
#   STRATA_LOCAL_PORT  the proxy's port; the others follow it (default 7070):
#                      coordinator +100, broker-N +100+N, etcd +300/+301,
#                      proxy metrics +20
#   ETCD               the etcd binary (default: etcd on PATH, then
#                      ~/.cache/strata/bin/etcd from scripts/tools.sh etcd)
#   STRATA_BIN         directory with coordinator, broker, proxy and strata
#                      (default: built from this checkout into the state dir)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${STRATA_LOCAL_DIR:-$PWD/strata-local}
port=${STRATA_LOCAL_PORT:-7070}
cmd=${1:-}

die() { echo "local-cluster: $*" >&2; exit 1; }

etcd_bin() {
	if [ -n "${ETCD:-}" ]; then echo "$ETCD"; return; fi
	if command -v etcd >/dev/null; then command -v etcd; return; fi
	[ -x "$HOME/.cache/strata/bin/etcd" ] && { echo "$HOME/.cache/strata/bin/etcd"; return; }
	die "no etcd: install etcd 3.5+ or run scripts/tools.sh etcd, or set ETCD"
}

bin_dir() {
	if [ -n "${STRATA_BIN:-}" ]; then echo "$STRATA_BIN"; return; fi
	if [ ! -x "$dir/bin/strata" ]; then
		echo "building the binaries into $dir/bin ..." >&2
		(cd "$root" && go build -o "$dir/bin/" ./cmd/coordinator ./cmd/broker ./cmd/proxy ./cmd/strata)
	fi
	echo "$dir/bin"
}

# alive PID: the process exists and is not a zombie (one that was killed
# but not yet reaped by its parent, which kill -0 still finds).
alive() {
	local state
	if [ -r "/proc/$1/stat" ]; then
		state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	else
		state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	fi
	[ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

# launch NAME BINARY ARGS... starts a process in the background with the
# cluster's shared settings, logging to NAME.log, its pid in NAME.pid.
launch() {
	local name=$1 binary=$2
	shift 2
	if [ -e "$dir/$name.pid" ] && alive "$(cat "$dir/$name.pid")"; then
		die "$name is already running (pid $(cat "$dir/$name.pid"))"
	fi
	STRATA_ETCD_ENDPOINTS="http://127.0.0.1:$((port + 300))" STRATA_DATA_DIR="$dir/objects" \
		nohup "$binary" "$@" >"$dir/$name.log" 2>&1 &
	echo $! >"$dir/$name.pid"
}

# wait_serving runs `strata cluster status` until it answers (bounded).
wait_serving() {
	local bin=$1
	for _ in $(seq 1 300); do
		"$bin/strata" --server "127.0.0.1:$port" cluster status >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	die "the proxy at 127.0.0.1:$port did not answer within 60s; see $dir/*.log"
}

start_broker() { # BIN ID N
	launch "$2" "$1/broker" -id "$2" -listen-addr "127.0.0.1:$((port + 100 + $3))"
}

start() {
	local n=${1:-3} bin etcd
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "BROKERS must be a positive number, got $n"
	mkdir -p "$dir/objects"
	bin=$(bin_dir)
	etcd=$(etcd_bin)
	launch etcd "$etcd" --name strata-local --data-dir "$dir/etcd" \
		--listen-client-urls "http://127.0.0.1:$((port + 300))" --advertise-client-urls "http://127.0.0.1:$((port + 300))" \
		--listen-peer-urls "http://127.0.0.1:$((port + 301))" --initial-advertise-peer-urls "http://127.0.0.1:$((port + 301))" \
		--initial-cluster "strata-local=http://127.0.0.1:$((port + 301))" --log-level warn
	launch coordinator "$bin/coordinator" -id coordinator-1 -listen-addr "127.0.0.1:$((port + 100))"
	for i in $(seq 1 "$n"); do
		start_broker "$bin" "broker-$i" "$i"
	done
	launch proxy "$bin/proxy" -listen-addr "127.0.0.1:$port" -metrics-addr "127.0.0.1:$((port + 20))"
	wait_serving "$bin"
	echo "Strata is running: $n brokers. Clients connect to 127.0.0.1:$port."
	echo "Try: $bin/strata --server 127.0.0.1:$port cluster status"
}

status() {
	for f in "$dir"/*.pid; do
		[ -e "$f" ] || continue
		local name pid
		name=$(basename "$f" .pid)
		pid=$(cat "$f")
		if alive "$pid"; then echo "$name running (pid $pid)"; else echo "$name stopped"; fi
	done
}

signal() { # SIG NAME
	local f="$dir/$2.pid"
	[ -e "$f" ] || die "no process $2 (see: local-cluster.sh status)"
	kill "-$1" "$(cat "$f")" 2>/dev/null || true
}

stop() {
	# Proxy and brokers first (brokers flush and release), etcd last.
	for name in proxy $(cd "$dir" 2>/dev/null && ls broker-*.pid 2>/dev/null | sed 's/\.pid$//') coordinator etcd; do
		[ -e "$dir/$name.pid" ] || continue
		local pid
		pid=$(cat "$dir/$name.pid")
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$dir/$name.pid"
	done
}

case "$cmd" in
start) start "${2:-3}" ;;
add-broker)
	id=${2:?usage: local-cluster.sh add-broker ID}
	n=$(ls "$dir"/broker-*.pid 2>/dev/null | wc -l)
	start_broker "$(bin_dir)" "$id" "$((n + 1))"
	;;
kill) signal KILL "${2:?usage: local-cluster.sh kill NAME}" ;;
status) status ;;
stop) stop ;;
*) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
