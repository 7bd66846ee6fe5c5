#!/usr/bin/env bash
# Heap allocations per decode, counted by valgrind: (allocations with N probe and N
# response decodes - allocations with none) / 2N, on the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
# valgrind cannot read Swift's DWARF 5: measure a stripped copy.
ted=$(mktemp /tmp/ted-stripped.XXXXXX)
trap 'rm -f "$ted"' EXIT
cp "${TED:-.build/release/ted}" "$ted" && chmod +x "$ted" && strip "$ted"
count() { valgrind --tool=memcheck "$ted" bench wire --only-decode "$1" 2>&1 | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,; }
n=20000
base=$(count 0); with=$(count $n)
echo "allocations: $base at start-up, $with with $n probe and $n response decodes: $(python3 -c "print(round(($with - $base) / (2 * $n), 3))") per decode"
