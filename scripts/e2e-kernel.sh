#!/usr/bin/env bash
# End-to-end with KERNEL ESP: this machine's kernel has XFRM but no ESP, so the suite boots
# the Debian cloud kernel (linux-image-cloud-amd64) as a QEMU guest (TCG) over the host's
# own root file system (virtiofs, read-only, tmpfs overlay) and runs there
# scripts/lib/kernel-guest.sh: hostA - gwA - transit - gwB - hostB, a charon per gateway
# with kernel-netlink (not kernel-libipsec), ted on both gateways. Checks come from
# captures on the transit link, `ip -s xfrm state` and `swanctl --list-sas`.
# Prints one line per check and `N passed, N failed` last; exit 1 on any failure (a guest
# that does not boot or times out counts as one).
#   TED=path/to/ted scripts/e2e-kernel.sh      (default: the release build of package-deb.sh,
#                                               else .build/release/ted, else .build/debug/ted)
# GUEST_TIMEOUT (s, default 720) bounds the guest; measured 257-330 s wall on 2 shared cores.
# Work files: $E2E_KERNEL_DIR or a new /var/tmp/ted-e2e-kernel.XXXXXX (kept on failure).
set -u
cd "$(dirname "$0")/.."
start=$(date +%s)
if [ -z "${TED:-}" ]; then
  for candidate in .build-deb/build/*/release/ted .build/release/ted .build/debug/ted; do
    [ -x "$candidate" ] && { TED=$PWD/$candidate; break; }
  done
  TED=${TED:-$PWD/.build/debug/ted}
fi
GUEST_TIMEOUT=${GUEST_TIMEOUT:-720}

source scripts/lib/checks.sh
source scripts/lib/kernel-vm.sh
require e2e-kernel qemu-system-x86_64 mkinitramfs unmkinitramfs cpio gzip "$KVM_VIRTIOFSD" \
  ip nft tcpdump nc ping python3 /usr/lib/ipsec/charon swanctl
[ -n "$KVM_KVER" ] && [ -r "/boot/vmlinuz-$KVM_KVER" ] || require e2e-kernel "/boot/vmlinuz-*-cloud-amd64"

OUT=${E2E_KERNEL_DIR:-$(mktemp -d /var/tmp/ted-e2e-kernel.XXXXXX)}
mkdir -p "$OUT"; rm -rf "$OUT/logs" "$OUT/checks.txt"
trap kernel_vm_kill EXIT
# The guest runs a copy: the tree's binary may be rebuilt while the guest runs.
cp "$TED" "$OUT/ted"
echo "e2e-kernel: booting $KVM_KVER under QEMU (TCG) with $TED (work files in $OUT)"
# The guest stops by itself (saving its logs) 120 s before the host would kill it.
# STRICT_ONE_SYN=1 adds e2e.sh's "exactly one SYN" check (fails under TCG: discovery + IKE
# take longer than Linux's 1 s SYN retransmission); IKE_PROPOSAL overrides the guest's
# (curve25519: modp2048 is slow under TCG); ACQUIRE_EXPIRES ted's acquire-expires (3).
kernel_vm_run "$OUT" "$GUEST_TIMEOUT" scripts/lib/kernel-guest.sh "$OUT/ted" /ted-out $((GUEST_TIMEOUT - 120)) \
  "${STRICT_ONE_SYN:-0}" "${IKE_PROPOSAL:-aes128-sha256-curve25519}" "${ACQUIRE_EXPIRES:-3}"
status=$?

passed=$(grep -c '^PASS: ' "$OUT/checks.txt" 2>/dev/null); passed=${passed:-0}
failed=$(grep -c '^FAIL: ' "$OUT/checks.txt" 2>/dev/null); failed=${failed:-0}
if ! grep -q '^guest: [0-9]* passed, [0-9]* failed$' "$OUT/checks.txt" 2>/dev/null; then
  echo "FAIL: the guest ran the suite to its end (status $status; 124: killed after ${GUEST_TIMEOUT} s, 125: no boot or no status)"
  failed=$((failed + 1))
elif [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "FAIL: the guest suite exited $status with no failed check"
  failed=$((failed + 1))
fi
if [ "$failed" -gt 0 ] && [ -d "$OUT/logs" ]; then
  for site in A B; do
    echo "--- g$site swanctl --list-sas"; cat "$OUT/logs/g$site.sas.txt" 2>/dev/null
    echo "--- g$site ted log"; tail -20 "$OUT/logs/g$site.ted.log" 2>/dev/null
    echo "--- g$site charon log"; tail -15 "$OUT/logs/g$site.charon.log" 2>/dev/null
  done
fi
rm -f "$OUT/ted"
[ "$failed" -eq 0 ] && [ -z "${E2E_KERNEL_DIR:-}" ] && rm -rf "$OUT"
echo "e2e-kernel: wall time $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
