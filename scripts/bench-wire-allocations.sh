#!/usr/bin/env bash
# Heap allocations per decode, counted by valgrind: (allocations with N decodes -
# allocations with 0 decodes) / N, on the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
ted=${TED:-.build/release/ted}
count() { valgrind --tool=memcheck "$ted" bench wire --only-decode "$1" 2>&1 | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,; }
n=20000
base=$(count 0); with=$(count $n)
echo "allocations: $base at start-up, $with with $n decodes: $(python3 -c "print(round(($with - $base) / $n, 3))") per decode"
