#!/usr/bin/env bash
# Measures one-record-in-flight produce latency against its floor on a
# cluster started by scripts/bench-cluster.sh (docs/benchmarks.md, "One
# record in flight"). Each round runs, back to back in the same window:
#
#   strata bench s3 --object-size 1024 --concurrency 1     one 1 KiB PUT at a time
#   strata bench etcd                                      the broker's commit transaction, one at a time
#   strata bench etcd --put-size 1024                      a 1 KiB PUT then the commit, one pair at a time
#   strata bench produce --linger 0 --inflight 1           one record at a time through SDK, proxy, broker
#
# and prints p50/p99 of each, the gap produce - (PUT + commit) against the
# separate runs' sum and against the pair, and the
# produce's stages (means over the run) from the proxy's and broker's
# /metrics: SDK (client - proxy), proxy hop (proxy - broker), broker
# buffering and answering (broker - flush PUT - flush commit), PUT, commit.
#
#   scripts/bench-latency.sh DIR ROUNDS [SECONDS]
#
# DIR is the bench-cluster directory (its env and bin/strata are used).
set -euo pipefail

dir=${1:?usage: bench-latency.sh DIR ROUNDS [SECONDS]}
rounds=${2:?usage: bench-latency.sh DIR ROUNDS [SECONDS]}
secs=${3:-10}
# shellcheck disable=SC1091
. "$dir/env"
strata=$dir/bin/strata

# scrape prints "name sum count" for the stage histograms of the proxy
# (19470) and the broker (19471), plus STRATA_BENCH_PORT_OFFSET.
scrape() {
	for port in 19470 19471; do
		curl -fs "http://127.0.0.1:$((port + ${STRATA_BENCH_PORT_OFFSET:-0}))/metrics"
	done | awk '
		/^strata_(proxy_produce_duration|broker_produce_duration|broker_flush_put|broker_flush_commit|meta_commit)_seconds_(sum|count) / {
			n = $1; sub(/_(sum|count)$/, "", n)
			if ($1 ~ /_sum$/) s[n] += $2; else c[n] += $2
		}
		END { for (n in s) print n, s[n], c[n] }'
}

# mean prints the mean in ms of histogram $1 between scrapes $2 and $3.
mean() {
	awk -v n="$1" '
		FNR == NR && $1 == n { s0 = $2; c0 = $3; next }
		$1 == n { if ($3 > c0) printf "%.2f", 1000 * ($2 - s0) / ($3 - c0); else printf "nan" }' "$2" "$3"
}

# lat prints "p50 p99" of a --json summary.
lat() { jq -r '"\(.latency.p50_ms) \(.latency.p99_ms)"' "$1"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf "%-5s %-13s %-13s %-13s %-15s %-13s %-13s | %s\n" round "s3 p50/p99" "etcd p50/p99" "pair p50/p99" "produce p50/p99" \
	"gap p50 sum/pair" "gap p99 sum/pair" \
	"stage means ms: SDK proxy-hop broker-other PUT commit"
for r in $(seq 1 "$rounds"); do
	"$strata" bench s3 --object-size 1024 --concurrency 1 --duration "${secs}s" --json >"$tmp/s3.json" 2>/dev/null
	"$strata" bench etcd --warmup 1s --duration "${secs}s" --json >"$tmp/etcd.json" 2>/dev/null
	"$strata" bench etcd --put-size 1024 --warmup 1s --duration "${secs}s" --json >"$tmp/pair.json" 2>/dev/null
	scrape >"$tmp/m0"
	"$strata" bench produce --topic lat --linger 0 --inflight 1 --warmup 2s --duration "$((secs + 5))s" \
		--json >"$tmp/produce.json" 2>/dev/null
	scrape >"$tmp/m1"
	read -r s50 s99 < <(lat "$tmp/s3.json")
	read -r e50 e99 < <(lat "$tmp/etcd.json")
	read -r q50 q99 < <(lat "$tmp/pair.json")
	read -r p50 p99 < <(lat "$tmp/produce.json")
	client=$(jq -r .latency.mean_ms "$tmp/produce.json")
	proxy=$(mean strata_proxy_produce_duration_seconds "$tmp/m0" "$tmp/m1")
	broker=$(mean strata_broker_produce_duration_seconds "$tmp/m0" "$tmp/m1")
	put=$(mean strata_broker_flush_put_seconds "$tmp/m0" "$tmp/m1")
	commit=$(mean strata_broker_flush_commit_seconds "$tmp/m0" "$tmp/m1")
	awk -v r="$r" -v s50="$s50" -v s99="$s99" -v e50="$e50" -v e99="$e99" -v q50="$q50" -v q99="$q99" \
		-v p50="$p50" -v p99="$p99" -v c="$client" -v x="$proxy" -v b="$broker" -v u="$put" -v m="$commit" 'BEGIN {
		printf "%-5s %-13s %-13s %-13s %-15s %-13s %-13s | %.2f %.2f %.2f %.2f %.2f\n", r,
			sprintf("%.2f/%.1f", s50, s99), sprintf("%.2f/%.1f", e50, e99), sprintf("%.2f/%.1f", q50, q99),
			sprintf("%.2f/%.1f", p50, p99), sprintf("%+.2f/%+.2f", p50 - s50 - e50, p50 - q50),
			sprintf("%+.1f/%+.1f", p99 - s99 - e99, p99 - q99), c - x, x - b, b - u - m, u, m }'
done
