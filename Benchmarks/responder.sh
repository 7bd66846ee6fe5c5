#!/usr/bin/env bash
# The responder against a C UDP echo, on loopback, in the same run (issue #11, item 4).
#
#   swift build -c release --product ted && swift build -c release --package-path Benchmarks && Benchmarks/responder.sh
#
# Builds Benchmarks/responder/{udp_echo,ted_load}.c with `cc -O2`, writes each policy and
# its probes with `ted-bench probes` (the codec's bytes), then for each policy
# (the first 1,000 rules of acl1_2k; all of acl1_100k):
#   - RUNS rounds of closed-loop runs (WINDOW probes in flight, SECS seconds each): the
#     generator against the C echo (recvfrom/sendto: the baseline), against a C echo
#     with recvmmsg/sendmmsg (a faster server: the generator's own ceiling, above the
#     baseline's), then against `ted daemon` (and against $TED_BEFORE, an older build,
#     when set: before/after in the same run);
#   - LATENCY_RUNS open-loop runs at half of ted's median maximum: p50/p99 of ted (and
#     of the echo at the same rate);
#   - the daemon's VmRSS/VmHWM after the runs.
# SETS="1k 100k" (default) chooses the policies. Servers on core 0, the generator on core 1 (taskset). Only 127.0.0.1; every process
# is bounded in time and killed by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ted=${TED:-.build/release/ted}
ted_bench=${TED_BENCH:-Benchmarks/.build/release/ted-bench}
before=${TED_BEFORE:-}
runs=${RUNS:-5}
latency_runs=${LATENCY_RUNS:-3}
secs=${SECS:-3}
window=${WINDOW:-64}
dir=$(mktemp -d /tmp/ted-responder-bench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
cc -O2 -o "$dir/udp_echo" Benchmarks/responder/udp_echo.c
cc -O2 -o "$dir/ted_load" Benchmarks/responder/ted_load.c
base=$((30000 + $$ % 10000))
echo_port=$base ted_port=$((base + 1)) gen_port=$((base + 2)) mmsg_port=$((base + 3))
results="$dir/results"
: > "$results"

# load NAME PORT MODE PARAM EXPECT: one generator run, its line appended to the results.
load() {
    local line
    line=$(TED_LOAD_EXPECT=$5 taskset -c 1 "$dir/ted_load" "$2" "$gen_port" "$probes" "$secs" "$3" "$4")
    echo "$set_name $1 $line" | tee -a "$results"
}

# daemon BINARY: starts it on core 0 and waits (at most 30 s) until its control socket answers.
daemon() {
    rm -f "$dir/ted.sock"
    taskset -c 0 "$1" daemon --config "$config" --log-level error &
    daemon_pid=$!
    pids+=("$daemon_pid")
    for _ in $(seq 1500); do
        "$ted" status --socket "$dir/ted.sock" > /dev/null 2>&1 && return 0
        kill -0 "$daemon_pid" 2> /dev/null || { echo "daemon exited" >&2; exit 1; }
        sleep 0.02
    done
    echo "daemon not answering after 30 s" >&2
    exit 1
}

stop() {
    kill "$1" 2> /dev/null || true
    wait "$1" 2> /dev/null || true
}

median_rate() { # median answers/s of NAME window rows of the current set
    awk -v s="$set_name" -v n="$1" '$1 == s && $2 == n && $3 == "mode=window" {
        for (i = 3; i <= NF; i++) if ($i ~ /^answers_per_s=/) { split($i, a, "="); print a[2] } }' "$results" |
        sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

run_set() {
    set_name=$1
    config="$dir/$set_name.yaml" probes="$dir/$set_name.probes"
    "$ted_bench" probes --classbench "$2" ${3:+--entries "$3"} --count 1000 --listen-port "$ted_port" \
        --identity-port "$gen_port" --control-socket "$dir/ted.sock" --config "$config" --probes "$probes"
    local servers=(ted) pid
    [[ -n $before ]] && servers=(before ted)
    local lifetime=$(( (runs * (${#servers[@]} + 2) + latency_runs * 2) * (secs + 2) + 60 ))
    taskset -c 0 "$dir/udp_echo" "$echo_port" "$lifetime" &
    echo_pid=$!
    taskset -c 0 "$dir/udp_echo" "$mmsg_port" "$lifetime" mmsg &
    mmsg_pid=$!
    pids+=("$echo_pid" "$mmsg_pid")
    for run in $(seq "$runs"); do
        load echo "$echo_port" window "$window" 240
        load mmsg "$mmsg_port" window "$window" 240
        for server in "${servers[@]}"; do
            if [[ $server == before ]]; then daemon "$before"; else daemon "$ted"; fi
            load "$server" "$ted_port" window "$window" 241
            [[ $server == ted && $run == "$runs" ]] || stop "$daemon_pid"
        done
    done
    local half=$(( $(median_rate ted) / 2 ))
    for run in $(seq "$latency_runs"); do
        load echo "$echo_port" rate "$half" 240
        load ted "$ted_port" rate "$half" 241
    done
    echo "$set_name memory $(grep -E 'VmRSS|VmHWM' /proc/$daemon_pid/status | tr -s ' \t' ' ' | tr '\n' ' ')" | tee -a "$results"
    stop "$daemon_pid"
    stop "$echo_pid"
    stop "$mmsg_pid"
}

echo "load: $(uptime)"
for set in ${SETS:-1k 100k}; do
    case $set in
        1k) run_set rules-1k Benchmarks/classbench/acl1_2k.txt 1000 ;;
        100k) run_set rules-100k Benchmarks/classbench/acl1_100k.txt.gz ;;
        *) echo "SETS: 1k and/or 100k" >&2; exit 2 ;;
    esac
done
echo "load: $(uptime)"
python3 - "$results" "$runs" "$secs" "$window" <<'PY'
import sys, statistics
rows = [line.split() for line in open(sys.argv[1])]
def fields(r): return dict(x.split("=", 1) for x in r[2:] if "=" in x)
# The issue's figures on main (C echo recvfrom/sendto 247k/s; ted 128k/s at 1k rules, 61k/s at 100k).
baseline = {("rules-1k", "echo"): "247,000", ("rules-100k", "echo"): "247,000",
            ("rules-1k", "mmsg"): "313,000", ("rules-100k", "mmsg"): "313,000",
            ("rules-1k", "ted"): "128,000 (0.49-0.55)", ("rules-100k", "ted"): "61,000 (0.25)"}
names = {"echo": "C echo (recvfrom/sendto)", "mmsg": "C echo (recvmmsg/sendmmsg): generator ceiling", "before": "ted, before ($TED_BEFORE)", "ted": "ted"}
print(f"\nclosed loop, {sys.argv[4]} in flight, {sys.argv[3]} s per run ({float(sys.argv[3]) - 0.5:.1f} s counted), medians of {sys.argv[2]}\n")
print("| policy | server | answers/s (median) | min-max | / echo (medians) | / echo (median of rounds) | generator CPU | issue's figure on main |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for s in ["rules-1k", "rules-100k"]:
    med, runs = {}, {}
    for n in ["echo", "mmsg", "before", "ted"]:
        rs = [float(fields(r)["answers_per_s"]) for r in rows if r[0] == s and r[1] == n and fields(r).get("mode") == "window"]
        cpu = [float(fields(r)["generator_cpu"]) for r in rows if r[0] == s and r[1] == n and fields(r).get("mode") == "window"]
        if not rs: continue
        med[n], runs[n] = statistics.median(rs), rs
        ratio = f"{med[n] / med['echo']:.2f}" if n != "echo" else "1"
        # Each round runs every server once, one after the other: the ratio within a round
        # is the least disturbed by load that comes and goes on a shared machine.
        paired = f"{statistics.median(x / e for x, e in zip(rs, runs['echo'])):.2f}" if n != "echo" else "1"
        print(f"| {s} | {names[n]} | {med[n]:,.0f} | {min(rs):,.0f}-{max(rs):,.0f} | {ratio} | {paired} | {statistics.median(cpu):.2f} | {baseline.get((s, n), '')} |")
print("\nopen loop at half of ted's median maximum\n")
print("| policy | server | rate | answers/s | p50 us | p99 us | p99.9 us | lost |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    f = fields(r)
    if f.get("mode") == "rate":
        print(f"| {r[0]} | {names[r[1]]} | {float(f['param']):,.0f} | {float(f['answers_per_s']):,.0f} | {f['p50_us']} | {f['p99_us']} | {f['p999_us']} | {f['lost']} |")
print()
for r in rows:
    if r[1] == "memory": print(f"{r[0]} daemon after the runs: {' '.join(r[2:])}")
PY
