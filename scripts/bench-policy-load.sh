#!/usr/bin/env bash
# Start-up and memory of ted with a large policy: the ClassBench set (default acl1_100k)
# as the responder's policy in a configuration file, then
#   1. `ted check` on it: the configuration load (YAML and every ACL line), wall time and peak RSS;
#   2. `ted daemon` on it: time until its control socket answers `ted status` (load, compile
#      the classifier, bind), then VmRSS/VmHWM of the daemon 2 s later.
# Runs RUNS times (default 3) on the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
ted=${TED:-.build/release/ted}
set_file=${1:-Benchmarks/classbench/acl1_100k.txt.gz}
runs=${RUNS:-3}
dir=$(mktemp -d /tmp/ted-policy-load.XXXXXX)
trap 'rm -rf "$dir"' EXIT
port=$((20000 + $$ % 20000))
config="$dir/policy.yaml"
gzip -dcf "$set_file" | python3 -c '
import sys
names = {0: "ip", 1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah"}
def ports(lo, hi, has):
    if not has or (lo == 0 and hi == 65535): return ""
    return f" eq {lo}" if lo == hi else f" range {lo} {hi}"
print("identity: 127.0.0.1")
print(f"listen: 127.0.0.1:{sys.argv[1]}")
print(f"control-socket: {sys.argv[2]}")
print("policy:")
for line in sys.stdin:
    if not line.startswith("@"): continue
    f = [x.strip() for x in line[1:].split("\t")]
    slo, shi = [int(x) for x in f[2].split(":")]
    dlo, dhi = [int(x) for x in f[3].split(":")]
    p, m = [int(x, 16) for x in f[4].split("/")]
    proto = 0 if m == 0 else p
    has = proto in (6, 17, 132, 136)
    # The responder view, as ClassBenchRule.responderLine: the destination is local.
    print(f"  - permit {names.get(proto, proto)} {f[1]}{ports(dlo, dhi, has)} {f[0]}{ports(slo, shi, has)}")
' "$port" "$dir/ted.sock" > "$config"
echo "policy: $(grep -c '^  - ' "$config") entries from $set_file"
for run in $(seq "$runs"); do
    /usr/bin/time -f "run $run: ted check: %e s wall, peak %M KiB" "$ted" check "$config" > /dev/null
    rm -f "$dir/ted.sock"
    start=$(date +%s%N)
    "$ted" daemon --config "$config" --log-level error &
    pid=$!
    until "$ted" status --socket "$dir/ted.sock" > /dev/null 2>&1; do
        kill -0 "$pid" 2> /dev/null || { echo "daemon exited" >&2; exit 1; }
        sleep 0.02
    done
    ready=$(( ($(date +%s%N) - start) / 1000000 ))
    sleep 2
    echo "run $run: ted daemon: answering after $ready ms; $(grep -E 'VmRSS|VmHWM' /proc/$pid/status | tr -s ' \t' ' ' | tr '\n' ' ')"
    kill "$pid"; wait "$pid" 2> /dev/null || true
done
