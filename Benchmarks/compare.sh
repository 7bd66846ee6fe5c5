#!/usr/bin/env bash
# The working tree beside an older revision, measured in the same run (issue 34, item 2).
#
#   Benchmarks/compare.sh [--short] [--rounds N] REVISION
#
# Builds REVISION with `-c release` once, in a detached `git worktree` under
# .build-compare/<commit> (kept: a second run against the same commit does not rebuild; the
# Benchmarks package is built inside that worktree, since it depends on `../`), and the
# working tree with `-c release`; `ted` and `ted-bench` both come from the Benchmarks
# package's build (Benchmarks/.build/release), so the modules are compiled once per build.
# Then ROUNDS rounds, each running REVISION's benchmarks and then the tree's (ABAB...):
#   classify   `ted bench classify --classbench acl1_100k --json`: compiled lookups/s and scan
#              lookups/s; a packet on which the compiled classifier and the scan disagree exits 1
#   wire       `ted-bench wire` (`ted bench wire` where REVISION has no Benchmarks package):
#              messages/s of every row, the byte-copy baseline row included (it should stay ~1)
#   responder  full mode only: Benchmarks/responder.sh with TED_BEFORE = REVISION's ted, the
#              1,000-rule set; its own rounds alternate REVISION's and the tree's daemon (left
#              out, and said, where a daemon refuses the policy file the tree's ted-bench writes)
# Every figure is higher-is-better. For each: the median of the per-round ratios
# tree/REVISION, their min-max, and the run-to-run spread of each build's own rounds
# (round / median of that build's rounds).
#
# The rule (both modes; --short is CI's): a figure FAILS when the median of its per-round
# ratios is below 0.90 AND below the lower end of its own run-to-run spread (the smallest
# round / median over both builds' rounds of that figure): a drop of more than 10 % that the
# noise seen in the same run does not explain. Any failing figure: exit 1.
#
# --short: 5 rounds, classify (300k-packet trace) and wire (0.2 s a row) only, about 1 minute
# once both builds exist. Default: 7 rounds, 1M packets, 1 s a row, and the responder.
# Every benchmark is bounded by its own time or trace and runs under `timeout`. Needs the
# revision's commit in this clone (a fresh clone has all of main).
set -euo pipefail
cd "$(dirname "$0")/.."

short=0 rounds=
while [[ $# -gt 1 ]]; do
    case $1 in
        --short) short=1; shift ;;
        --rounds) rounds=$2; shift 2 ;;
        *) break ;;
    esac
done
if [[ $# -ne 1 || $1 == -* ]]; then
    echo "usage: Benchmarks/compare.sh [--short] [--rounds N] REVISION" >&2
    exit 2
fi
revision=$(git rev-parse --verify --quiet "$1^{commit}") || { echo "compare.sh: no commit $1 in this clone" >&2; exit 2; }
if [[ $short == 1 ]]; then
    rounds=${rounds:-5} trace=300000 scan_sample=1000 wire_seconds=0.2
else
    rounds=${rounds:-7} trace=1000000 scan_sample=2000 wire_seconds=1
fi
[[ $rounds =~ ^[0-9]+$ && $rounds -ge 2 && $rounds -le 50 ]] || { echo "compare.sh: --rounds 2 to 50" >&2; exit 2; }
classbench=Benchmarks/classbench/acl1_100k.txt.gz
cache=${TED_COMPARE_CACHE:-.build-compare}
old="$cache/$revision"

# build DIR: ted and ted-bench with -c release, both in the Benchmarks package's build
# directory (one compilation of the modules they share); ted alone where DIR has no
# Benchmarks package.
build() {
    if [[ -f $1/Benchmarks/Package.swift ]]; then
        swift build -c release --package-path "$1/Benchmarks" --product ted 2>&1 | tail -1
        swift build -c release --package-path "$1/Benchmarks" --product ted-bench 2>&1 | tail -1
    else
        swift build -c release --package-path "$1" --product ted 2>&1 | tail -1
    fi
}

# bin DIR: where build put DIR's binaries.
bin() {
    if [[ -f $1/Benchmarks/Package.swift ]]; then echo "$1/Benchmarks/.build/release"; else echo "$1/.build/release"; fi
}

if [[ ! -f $old/.compare-built ]]; then
    echo "== building $revision in $old (once)"
    mkdir -p "$cache"
    git worktree prune
    [[ -d $old ]] || git worktree add --detach "$old" "$revision" > /dev/null
    build "$old"
    touch "$old/.compare-built"
else
    echo "== $revision: built in $old"
fi
echo "== building the working tree ($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift Benchmarks/Sources || echo ', modified'))"
build .

dir=$(mktemp -d /tmp/ted-compare.XXXXXX)
trap 'rm -rf "$dir"' EXIT
results="$dir/results"
: > "$results"

# wire BUILD DIR: one run of the wire bench of the build in DIR, a "figure value" line per row.
wire() {
    local command=("$(bin "$2")/ted-bench" wire)
    [[ -x ${command[0]} ]] || command=("$(bin "$2")/ted" bench wire)
    timeout 120 "${command[@]}" --seconds "$wire_seconds" |
        awk -F'|' -v b="$1" -v r="$round" 'NR > 2 && NF >= 4 {
            gsub(/^ +| +$/, "", $2); gsub(/ /, "", $3); print r, b, "wire: " $2 "\t" $3 }' >> "$results"
}

# classify BUILD DIR: one run of the classifier bench of the build in DIR.
classify() {
    local json
    json=$(cd "$2" && timeout 300 "$(bin .)/ted" bench classify --classbench "$classbench" \
        --trace "$trace" --scan-sample "$scan_sample" --json) || {
        echo "compare.sh: $1's classifier bench failed (an answer disagreeing with the scan exits 1)" >&2
        exit 1
    }
    python3 -c '
import json, sys
j = json.loads(sys.argv[3])
if not j["agree"]: sys.exit("compare.sh: the compiled classifier and the scan disagree")
print(sys.argv[1], sys.argv[2], "classify: compiled lookups/s, acl1_100k\t%f" % j["compiled_lookups_per_second"])
print(sys.argv[1], sys.argv[2], "classify: linear scan lookups/s, acl1_100k\t%f" % j["scan_lookups_per_second"])
' "$round" "$1" "$json" >> "$results"
}

echo "== load before: $(uptime)"
start=$(date +%s)
for round in $(seq "$rounds"); do
    echo "== round $round of $rounds"
    for build in revision tree; do
        if [[ $build == revision ]]; then path=$old; else path=.; fi
        classify "$build" "$path"
        wire "$build" "$path"
    done
done

if [[ $short == 0 ]]; then
    echo "== responder (Benchmarks/responder.sh, 1,000 rules, TED_BEFORE=$revision)"
    # Its rows: "rules-1k before|ted mode=window ... answers_per_s=N"; a round runs before, then ted.
    # A revision whose daemon cannot read this tree's policy file leaves the figure out (said below).
    { TED_BEFORE="$(bin "$old")/ted" TED="$(bin .)/ted" TED_BENCH="$(bin .)/ted-bench" SETS=1k RUNS=$rounds \
        timeout 1800 Benchmarks/responder.sh || echo "compare.sh: responder.sh failed" >&2; } |
        tee "$dir/responder.log" | { grep -E '^rules-1k (before|ted) mode=window' || true; } |
        awk '{ for (i = 3; i <= NF; i++) if ($i ~ /^answers_per_s=/) { split($i, a, "="); v = a[2] }
               if ($2 == "before") { n++; print n, "revision", "responder: answers/s, 1,000 rules\t" v }
               else if (t < n) { t++; print t, "tree", "responder: answers/s, 1,000 rules\t" v } }' >> "$results"
    grep -m 1 -E '^\| rules-1k \| C echo \(recvfrom' "$dir/responder.log" || true
fi
echo "== load after: $(uptime); $(( $(date +%s) - start )) s of benchmarks"

python3 - "$results" "$revision" "$rounds" <<'PY'
import sys, statistics
from collections import defaultdict
values = defaultdict(lambda: defaultdict(dict))  # figure -> build -> round -> value
for line in open(sys.argv[1]):
    head, value = line.rstrip("\n").split("\t")
    round_, build, figure = head.split(" ", 2)
    values[figure][build][int(round_)] = float(value)
print(f"\ntree / {sys.argv[2][:12]}, {sys.argv[3]} rounds (ratio per round, revision then tree)\n")
print("| figure | revision (median) | tree (median) | tree / revision: median | min-max | run-to-run spread (both builds) | verdict |")
print("|---|---:|---:|---:|---:|---:|---|")
failed = []
for figure, builds in values.items():
    rounds = sorted(set(builds["revision"]) & set(builds["tree"]))
    if not rounds:
        print(f"| {figure} | | | | | | not measured in both |")
        continue
    ratios = [builds["tree"][r] / builds["revision"][r] for r in rounds if builds["revision"][r] > 0]
    median = statistics.median(ratios)
    spread = []
    for build in ("revision", "tree"):
        m = statistics.median(builds[build][r] for r in rounds)
        spread += [builds[build][r] / m for r in rounds] if m > 0 else []
    low, high = min(spread), max(spread)
    fails = median < 0.90 and median < low
    if fails: failed.append(figure)
    print(f"| {figure} | {statistics.median(builds['revision'][r] for r in rounds):,.0f} | "
          f"{statistics.median(builds['tree'][r] for r in rounds):,.0f} | **{median:.3f}** | "
          f"{min(ratios):.3f}-{max(ratios):.3f} | {low:.3f}-{high:.3f} | {'FAIL' if fails else 'ok'} |")
print()
if failed:
    print("compare.sh: FAIL (median ratio below 0.90 and below its run-to-run spread): " + "; ".join(failed))
    sys.exit(1)
print("compare.sh: ok (no figure's median ratio is below both 0.90 and its run-to-run spread)")
PY
