#!/usr/bin/env bash
# Server CPU per GB produced, on a cluster started by bench-cluster.sh:
# `strata bench s3` (the store's own rate in the same window), then a
# full-load `strata bench produce` (1 KiB records, 8 partitions), with the
# user + system CPU of the broker, the proxy and the coordinator read from
# /proc/PID/stat before and after it, and the batch bytes the broker
# acknowledged (strata_broker_produce_bytes_total{result="OK"}). Prints
# core-seconds per GB (10^9 bytes) for each (and the part spent in the
# kernel) and their total.
#
#   scripts/bench-cpu.sh DIR [SECONDS [strata bench produce flags...]]
#
# STRATA_BENCH_S3_SECONDS sets the length of the bench s3 run (default 5).
# Used by docs/benchmarks.md ("CPU per GB produced").
set -euo pipefail

dir=${1:?usage: bench-cpu.sh DIR [SECONDS [produce flags...]]}
secs=${2:-20}
shift $(($# >= 2 ? 2 : 1))
# shellcheck disable=SC1091
. "$dir/env"
strata=$dir/bin/strata
hz=$(getconf CLK_TCK)

ticks() { awk '{print $14+$15}' "/proc/$(cat "$dir/$1.pid")/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$(cat "$dir/$1.pid")/stat"; }
acked() {
	curl -fs "http://127.0.0.1:$((19471 + ${STRATA_BENCH_PORT_OFFSET:-0}))/metrics" |
		awk '/^strata_broker_produce_bytes_total\{result="OK"\}/{v=$2} END{printf "%.0f\n", v+0}'
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$strata" bench s3 --duration "${STRATA_BENCH_S3_SECONDS:-5}s" 2>/dev/null | head -1
b0=$(acked)
declare -A c0 s0
for p in broker proxy coordinator; do c0[$p]=$(ticks "$p") s0[$p]=$(sys_ticks "$p"); done
"$strata" bench produce --topic cpu --duration "${secs}s" "$@" 2>/dev/null | head -2
b1=$(acked)
gb=$(echo "($b1-$b0)/10^9" | bc -l)
total=0
line=$(printf "GB %.3f" "$gb")
for p in broker proxy coordinator; do
	s=$(echo "($(ticks "$p")-${c0[$p]})/$hz" | bc -l)
	total=$(echo "$total+$s" | bc -l)
	sys=$(echo "($(sys_ticks "$p")-${s0[$p]})/$hz" | bc -l)
	line+=$(printf "  %s %.1fs %.2f (system %.2f)" "$p" "$s" "$(echo "$s/$gb" | bc -l)" "$(echo "$sys/$gb" | bc -l)")
done
echo "$line  total $(printf "%.2f" "$(echo "$total/$gb" | bc -l)") core-s/GB"
