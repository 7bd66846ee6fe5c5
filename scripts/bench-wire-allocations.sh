#!/usr/bin/env bash
# Heap allocations per decode, counted by valgrind: (allocations with N probe and N
# response decodes - allocations with none) / 2N, on the release build of `ted-bench wire`:
#
#   swift build -c release --package-path Benchmarks && scripts/bench-wire-allocations.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# valgrind cannot read Swift's DWARF 5: measure a stripped copy.
bench=$(mktemp /tmp/ted-bench-stripped.XXXXXX)
trap 'rm -f "$bench"' EXIT
cp "${TED_BENCH:-Benchmarks/.build/release/ted-bench}" "$bench" && chmod +x "$bench" && strip "$bench"
count() { valgrind --tool=memcheck "$bench" wire --only-decode "$1" 2>&1 | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,; }
n=20000
base=$(count 0); with=$(count $n)
echo "allocations: $base at start-up, $with with $n probe and $n response decodes: $(python3 -c "print(round(($with - $base) / (2 * $n), 3))") per decode"
