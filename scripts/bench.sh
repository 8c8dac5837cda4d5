#!/usr/bin/env bash
# Runs the benchmark suite of docs/benchmarks.md against a fresh cluster of
# real processes on loopback (scripts/bench-cluster.sh) and writes JSON
# summaries, per-process CPU/RSS samples and PNG plots to OUT.
#
#   scripts/bench.sh OUT [SECONDS]
#
# SECONDS is the measured time of each produce run (default 20).
set -euo pipefail

out=${1:?usage: bench.sh OUT [SECONDS]}
secs=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/strata-bench.XXXXXX)
mkdir -p "$out"
out=$(cd "$out" && pwd)
trap '"$root/scripts/bench-cluster.sh" stop "$dir"' EXIT
"$root/scripts/bench-cluster.sh" start "$dir"
# shellcheck disable=SC1091
. "$dir/env"
strata="$dir/bin/strata"

run() { # name, then strata bench arguments
	local name=$1
	shift
	echo "== $name: strata bench $* (load average: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$out/runs.txt"
	"$root/scripts/bench-cluster.sh" usage "$dir" $((secs + 5)) >"$out/$name-usage.txt" &
	local usage=$!
	"$strata" bench "$@" --json --plot "$out/$name" >"$out/$name.json" 2>"$out/$name.progress"
	kill "$usage" 2>/dev/null || true
	wait "$usage" 2>/dev/null || true
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); l=d['latency']; print('   %.0f %s/s  %.1f MB/s  p50 %.2f  p99 %.2f  p99.9 %.2f ms  errors %d' % (d['per_sec'], d['unit'], d['mb_per_sec'], l['p50_ms'], l['p99_ms'], l['p999_ms'], d['errors']))" "$out/$name.json" | tee -a "$out/runs.txt"
}

run s3 s3 --duration 10s
run produce produce --topic tput --duration "${secs}s" --warmup 2s
run produce-113k produce --topic tput --rate 113000 --duration "${secs}s" --warmup 2s
run latency-tuned produce --topic lat --linger 0 --inflight 1 --duration "${secs}s"
run s3-after s3 --duration 10s
run consume consume --topic tput
run consume-small consume --topic lat
run e2e e2e --topic e2e --rate 20000 --duration "${secs}s" --warmup 2s
"$strata" bench plot --out "$out/produce-vs-s3.png" --title "produce vs raw PUTs (MB/s)" \
	"s3 before=$out/s3.json" "produce=$out/produce.json" "s3 after=$out/s3-after.json"
"$strata" bench plot --out "$out/produce-latency-compare.png" --metric p99_ms --title "produce-ack p99 per second (ms)" \
	"max throughput=$out/produce.json" "113k/s target=$out/produce-113k.json" "one in flight=$out/latency-tuned.json"
echo "results in $out"
