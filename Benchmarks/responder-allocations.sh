#!/usr/bin/env bash
# Heap allocations per answered probe in `ted daemon` (1,000 ClassBench rules): an
# LD_PRELOAD counter (Benchmarks/responder/malloc_count.c, every malloc/calloc/realloc/
# memalign) is read (SIGUSR2) before and after Benchmarks/responder/ted_load.c sends probes
# for SECS seconds; the difference over the answers is the allocations per probe, start-up
# excluded. (valgrind stops with an internal error on the daemon.) Only 127.0.0.1;
# processes killed by their PID.
#
#   swift build -c release --product ted && swift build -c release --package-path Benchmarks && Benchmarks/responder-allocations.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ted=${TED:-.build/release/ted}
ted_bench=${TED_BENCH:-Benchmarks/.build/release/ted-bench}
secs=${SECS:-3}
dir=$(mktemp -d /tmp/ted-responder-allocs.XXXXXX)
pid=
trap '[[ -z $pid ]] || { kill "$pid" 2> /dev/null; wait "$pid" 2> /dev/null; } || true; rm -rf "$dir"' EXIT
cc -O2 -shared -fPIC -o "$dir/malloc_count.so" Benchmarks/responder/malloc_count.c
cc -O2 -o "$dir/ted_load" Benchmarks/responder/ted_load.c
base=$((41000 + $$ % 10000))
"$ted_bench" probes --classbench "${CLASSBENCH:-Benchmarks/classbench/acl1_2k.txt}" --entries "${ENTRIES:-1000}" \
    --listen-port "$base" --identity-port $((base + 1)) --control-socket "$dir/ted.sock" --config "$dir/p.yaml" \
    --probes "$dir/p.probes"
MALLOC_COUNT_FILE="$dir/count" LD_PRELOAD="$dir/malloc_count.so" "$ted" daemon --config "$dir/p.yaml" --log-level error &
pid=$!
for _ in $(seq 300); do
    "$ted" status --socket "$dir/ted.sock" > /dev/null 2>&1 && break
    kill -0 "$pid" || exit 1
    sleep 0.1
done
count() {
    rm -f "$dir/count"
    kill -USR2 "$pid"
    for _ in $(seq 100); do [[ -s $dir/count ]] && break; sleep 0.01; done
    cat "$dir/count"
}
before=$(count)
line=$(TED_LOAD_EXPECT=241 "$dir/ted_load" "$base" $((base + 1)) "$dir/p.probes" "$secs" window 64)
after=$(count)
# Every answer of the run, the warm-up's too (the 64 still in flight at the end: noise).
answers=$(echo "$line" | sed -n 's/.* answered_total=\([0-9]*\).*/\1/p')
echo "$line"
echo "allocations: $before before the load, $after after, $answers probes answered"
python3 -c "print(f'allocations per answered probe: {($after - $before) / $answers:.2f}')"
