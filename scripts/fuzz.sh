#!/usr/bin/env bash
# Fuzzes ted's TED v3 decoder with libFuzzer for SECONDS (default 60), seeded with the
# spec's test vectors (lld links it: ld.gold fails on this target). Exit 0 when no crash; non-zero (and the crasher in fuzz/artifacts)
# otherwise: turn each crasher into a regression test.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
# On a crash, Swift's own backtracer fights AddressSanitizer and can hang for minutes;
# libFuzzer and ASan already report the crash and keep the input.
export SWIFT_BACKTRACE=enable=no
seconds=${1:-60}
swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld --product DecodeFuzzer 2>&1 | tail -1
binary=$(swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld --show-bin-path)/DecodeFuzzer
mkdir -p corpus artifacts
i=0
while read -r hex; do
  i=$((i + 1)); python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$hex" > "corpus/vector-$i"
done < <(grep -oE '^   `[0-9a-f]+`' ../../shared/spec/ted-v3-wire.md 2>/dev/null | tr -d ' `' || true)
[ -n "$(ls corpus)" ] || { echo "fuzz.sh: no seed vectors found" >&2; exit 1; }
"$binary" corpus -max_total_time="$seconds" -max_len=4200 -artifact_prefix=artifacts/ -print_final_stats=1 2>&1 \
  | grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb|INFO: Loaded|==[0-9]+==ERROR|SUMMARY)" || true
[ -z "$(ls artifacts)" ] || { echo "fuzz.sh: crashers in fuzz/artifacts: $(ls artifacts)" >&2; exit 1; }
echo "fuzz.sh: no crash in ${seconds} s"
