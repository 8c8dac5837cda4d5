#!/usr/bin/env bash
# Starts a Strata cluster of real processes on loopback for benchmarks:
# MinIO, etcd, one coordinator, one broker and one proxy, each with
# /metrics, built from this checkout. Used by docs/benchmarks.md.
#
#   scripts/bench-cluster.sh start DIR [broker flags...]   # prints the env to source
#   scripts/bench-cluster.sh usage DIR SECONDS   # CPU and RSS per process, each second
#   scripts/bench-cluster.sh stop DIR
#
# STRATA_BENCH_BIN=DIR uses binaries built before instead of building them.
# STRATA_BENCH_GOMEMLIMIT=128MiB sets GOMEMLIMIT for the broker and the
# proxy, as the Helm chart does (unset by default).
# STRATA_BENCH_PORT_OFFSET=N adds N to every port below, so that two
# clusters can run side by side (default 0).
# STRATA_BENCH_PROFILE=1 has the coordinator, broker and proxy write CPU
# profiles of their whole run to DIR/NAME.cpu (-cpuprofile), complete
# once stop has returned.
# After start, DIR/env holds STRATA_* settings for `strata bench s3` and the
# proxy address (STRATA_SERVER); DIR/*.pid the process ids; DIR/*.log logs.
set -euo pipefail

cmd=${1:?usage: bench-cluster.sh start|stop DIR [broker flags...]}
dir=${2:?usage: bench-cluster.sh start|stop DIR [broker flags...]}
shift 2
tools=${STRATA_TOOLS_DIR:-$HOME/.cache/strata/bin}
root=$(cd "$(dirname "$0")/.." && pwd)
off=${STRATA_BENCH_PORT_OFFSET:-0}
port() { echo $(($1 + off)); }

# stop sends SIGTERM to every process, waits up to 5 s for them to exit
# (so that their ports are free again), then SIGKILLs what is left.
# stop stops the servers first, while etcd and MinIO still answer (a
# broker flushes, hands its partitions off and writes its CPU profile),
# then etcd and MinIO.
stop() {
	stop_pids proxy broker coordinator
	stop_pids etcd minio
}

stop_pids() { # names of DIR/NAME.pid files
	local pids=()
	for name in "$@"; do
		f=$dir/$name.pid
		[ -e "$f" ] || continue
		pids+=("$(cat "$f")")
		rm -f "$f"
	done
	[ ${#pids[@]} -gt 0 ] || return 0
	kill "${pids[@]}" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "${pids[@]}" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "${pids[@]}" 2>/dev/null || true
}

wait_http() { # url
	for _ in $(seq 1 200); do
		curl -fs "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "bench-cluster: $1 not ready" >&2
	return 1
}

# usage prints, every second for SECONDS, each process's CPU use (1.00 = one
# core) and resident memory, and at the end the peak RSS of each.
usage() {
	local secs=$1 names=() pids=() prev=() peak=()
	for f in "$dir"/*.pid; do
		names+=("$(basename "$f" .pid)")
		pids+=("$(cat "$f")")
		prev+=(0)
		peak+=(0)
	done
	local hz
	hz=$(getconf CLK_TCK)
	for t in $(seq 0 "$secs"); do
		local line="$t"
		for i in "${!pids[@]}"; do
			local stat ticks rss
			stat=$(cat "/proc/${pids[$i]}/stat" 2>/dev/null) || continue
			ticks=$(echo "$stat" | awk '{print $14+$15}')
			rss=$(awk '/VmRSS/{print int($2/1024)}' "/proc/${pids[$i]}/status")
			((rss > peak[i])) && peak[i]=$rss
			if ((t > 0)); then
				line+=$(printf " %s=%.2fcpu/%dMiB" "${names[$i]}" "$(echo "(${ticks}-${prev[$i]})/$hz" | bc -l)" "$rss")
			fi
			prev[i]=$ticks
		done
		((t > 0)) && echo "$line"
		sleep 1
	done
	for i in "${!pids[@]}"; do echo "peak RSS ${names[$i]}: ${peak[$i]} MiB"; done
}

case $cmd in
stop)
	stop
	exit 0
	;;
usage)
	usage "${1:-30}"
	exit 0
	;;
start) ;;
*)
	echo "bench-cluster: unknown command $cmd" >&2
	exit 2
	;;
esac

mkdir -p "$dir/bin" "$dir/minio" "$dir/etcd"
if [ -n "${STRATA_BENCH_BIN:-}" ]; then # prebuilt binaries
	cp "$STRATA_BENCH_BIN"/{coordinator,broker,proxy,strata} "$dir/bin/"
else
	(cd "$root" && go build -o "$dir/bin/" ./cmd/...)
fi

key=strata-bench secret=strata-bench-secret
MINIO_ROOT_USER=$key MINIO_ROOT_PASSWORD=$secret MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=1 HOME=$dir \
	"$tools/minio" server --quiet --address 127.0.0.1:$(port 19000) --console-address 127.0.0.1:$(port 19001) "$dir/minio" \
	>"$dir/minio.log" 2>&1 &
echo $! >"$dir/minio.pid"
"$tools/etcd" --data-dir "$dir/etcd" --listen-client-urls http://127.0.0.1:$(port 12379) \
	--advertise-client-urls http://127.0.0.1:$(port 12379) --listen-peer-urls http://127.0.0.1:$(port 12380) \
	>"$dir/etcd.log" 2>&1 &
echo $! >"$dir/etcd.pid"
wait_http http://127.0.0.1:$(port 19000)/minio/health/ready
wait_http http://127.0.0.1:$(port 12379)/health
curl -fs -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret" http://127.0.0.1:$(port 19000)/strata >/dev/null ||
	curl -fs --aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret" http://127.0.0.1:$(port 19000)/strata >/dev/null

cat >"$dir/env" <<EOF
export STRATA_ETCD_ENDPOINTS=127.0.0.1:$(port 12379)
export STRATA_ETCD_PREFIX=/bench
export STRATA_S3_BUCKET=strata
export STRATA_S3_ENDPOINT=http://127.0.0.1:$(port 19000)
export STRATA_S3_REGION=us-east-1
export STRATA_S3_PATH_STYLE=true
export STRATA_S3_ACCESS_KEY=$key
export STRATA_S3_SECRET_KEY=$secret
export STRATA_LOG_LEVEL=info
export STRATA_SERVER=127.0.0.1:$(port 17070)
EOF
# shellcheck disable=SC1091
. "$dir/env"
declare -A prof=([coordinator]="" [broker]="" [proxy]="")
if [ -n "${STRATA_BENCH_PROFILE:-}" ]; then
	for p in coordinator broker proxy; do prof[$p]=-cpuprofile=$dir/$p.cpu; done
fi
"$dir/bin/coordinator" ${prof[coordinator]:+"${prof[coordinator]}"} -listen-addr 127.0.0.1:$(port 17072) -metrics-addr 127.0.0.1:$(port 19472) >"$dir/coordinator.log" 2>&1 &
echo $! >"$dir/coordinator.pid"
memlimit=${STRATA_BENCH_GOMEMLIMIT:-}
env ${memlimit:+GOMEMLIMIT=$memlimit} "$dir/bin/broker" ${prof[broker]:+"${prof[broker]}"} -listen-addr 127.0.0.1:$(port 17071) -metrics-addr 127.0.0.1:$(port 19471) -id broker-0 "$@" >"$dir/broker.log" 2>&1 &
echo $! >"$dir/broker.pid"
env ${memlimit:+GOMEMLIMIT=$memlimit} "$dir/bin/proxy" ${prof[proxy]:+"${prof[proxy]}"} -listen-addr 127.0.0.1:$(port 17070) -metrics-addr 127.0.0.1:$(port 19470) >"$dir/proxy.log" 2>&1 &
echo $! >"$dir/proxy.pid"
for p in 19470 19471 19472; do wait_http "http://127.0.0.1:$(port $p)/healthz"; done
echo "bench-cluster: running; . $dir/env"
