#!/usr/bin/env bash
# Fuzzes what strangers feed ted with libFuzzer: SECONDS (default 60) for each TARGET
# (default all: DecodeFuzzer ResponderFuzzer ViciFuzzer ConfigFuzzer). The wire targets are
# seeded with the test vectors of docs/WIRE-FORMAT.md (each a whole line of hex), the configuration target with
# contrib's example (lld links them: ld.gold fails on these targets). Exit 0 when no
# crash; non-zero (and the crasher in fuzz/artifacts/TARGET) otherwise: turn each crasher
# into a regression test.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
# On a crash, Swift's own backtracer fights AddressSanitizer and can hang for minutes;
# libFuzzer and ASan already report the crash and keep the input.
export SWIFT_BACKTRACE=enable=no
seconds=${1:-60}
shift || true
targets=("${@:-DecodeFuzzer}")
[ $# -gt 0 ] || targets=(DecodeFuzzer ResponderFuzzer ViciFuzzer ConfigFuzzer)
flags=(-c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld)
swift build "${flags[@]}" 2>&1 | tail -1
bin=$(swift build "${flags[@]}" --show-bin-path)
failed=0
for target in "${targets[@]}"; do
  corpus=corpus/$target; artifacts=artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  case "$target" in
    DecodeFuzzer|ResponderFuzzer)
      i=0
      while read -r hex; do
        i=$((i + 1)); python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$hex" > "$corpus/vector-$i"
      done < <(grep -oE '^   `[0-9a-f]+`$' ../docs/WIRE-FORMAT.md | tr -d ' `')
      # Every vector, challenge (8) and probe echoing a cookie (9) included; a line that only
      # quotes bytes inside the prose (vector 8's cookie) is not one.
      [ "$i" -ge 9 ] || { echo "fuzz.sh: only $i vectors in docs/WIRE-FORMAT.md" >&2; exit 2; } ;;
    ConfigFuzzer) cp ../contrib/debian/ted.yaml "$corpus/example.yaml" ;;
  esac
  echo "fuzz.sh: $target for $seconds s"
  "$bin/$target" "$corpus" -max_total_time="$seconds" -max_len=4200 -artifact_prefix="$artifacts/" -print_final_stats=1 2>&1 \
    | grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb|INFO: Loaded|==[0-9]+==ERROR|SUMMARY)" || true
  if [ -n "$(ls "$artifacts")" ]; then echo "fuzz.sh: crashers in fuzz/$artifacts: $(ls "$artifacts")" >&2; failed=1; fi
done
[ $failed -eq 0 ] || exit 1
echo "fuzz.sh: no crash in ${seconds} s per target (${targets[*]})"
