#!/usr/bin/env bash
# What compaction costs per GB it rewrites, on a cluster started by
# bench-cluster.sh: a `strata bench produce` (default 15 s at 20,000
# records/s of 1 KiB, 8 partitions: small flushes, as a moderately busy
# broker writes them), then a wait until the coordinator's compaction has
# settled (its compacted bytes unchanged for 16 s, at most 4 minutes). Prints
# the bytes and entries compacted, the coordinator's GETs and PUTs after
# the produce, and the user + system CPU of the coordinator and of MinIO
# after the produce per GB compacted (10^9 bytes).
#
#   scripts/bench-compact.sh DIR [SECONDS [strata bench produce flags...]]
#
# Flags given replace the default --rate 20000. Used by docs/benchmarks.md
# ("What compaction costs").
set -euo pipefail

dir=${1:?usage: bench-compact.sh DIR [SECONDS [produce flags...]]}
secs=${2:-15}
shift $(($# >= 2 ? 2 : 1))
[ $# -gt 0 ] || set -- --rate 20000
# shellcheck disable=SC1091
. "$dir/env"
strata=$dir/bin/strata
hz=$(getconf CLK_TCK)
port=$((19472 + ${STRATA_BENCH_PORT_OFFSET:-0}))

ticks() { awk '{print $14+$15}' "/proc/$(cat "$dir/$1.pid")/stat"; }
# metric prints the sum of the coordinator's samples of $1 whose labels
# contain $2.
metric() {
	curl -fs "http://127.0.0.1:$port/metrics" |
		awk -v n="$1" -v l="${2:-}" 'index($1, n) == 1 && index($1, l) > 0 {v += $2} END {printf "%.0f\n", v + 0}'
}

"$strata" bench produce --topic compact --duration "${secs}s" "$@" 2>/dev/null | head -1
c0=$(ticks coordinator) m0=$(ticks minio)
b0=$(metric strata_lifecycle_compacted_bytes_total) e0=$(metric strata_lifecycle_compacted_entries_total)
g0=$(metric strata_objstore_operations_total 'op="get",result="ok"')
p0=$(metric strata_objstore_operations_total 'op="put",result="ok"')
last=-1 stable=0
for _ in $(seq 1 120); do
	sleep 2
	v=$(metric strata_lifecycle_compacted_bytes_total)
	if [ "$v" = "$last" ]; then stable=$((stable + 1)); else stable=0; fi
	last=$v
	[ "$stable" -ge 8 ] && break
done
bytes=$((last - b0))
if [ "$bytes" -le 0 ]; then
	echo "nothing was compacted" >&2
	exit 1
fi
gb=$(echo "$bytes/10^9" | bc -l)
per() { printf "%.1f" "$(echo "($1)/$hz/$gb" | bc -l)"; }
printf "compacted %.3f GB in %d entries with %d GETs and %d PUTs; core-s per GB compacted: coordinator %s, minio %s\n" \
	"$gb" "$(($(metric strata_lifecycle_compacted_entries_total) - e0))" \
	"$(($(metric strata_objstore_operations_total 'op="get",result="ok"') - g0))" \
	"$(($(metric strata_objstore_operations_total 'op="put",result="ok"') - p0))" \
	"$(per "$(ticks coordinator)-$c0")" "$(per "$(ticks minio)-$m0")"
