#!/usr/bin/env bash
# The packaged gateway as an operator runs it: a fresh Debian 12 root (scripts/lib/deb-root.sh:
# debootstrap, systemd, charon-systemd, nftables), ted's .deb installed into it with apt-get,
# its shipped /etc/ted/ted.yaml edited as docs/OPERATOR.md says (policy, peers, key) and
# `systemctl enable ted`; then that root boots with systemd as PID 1 in a QEMU guest (TCG)
# on the Debian cloud kernel (kernel ESP). In the guest: gwA is the system itself, hostA,
# gwB (its own charon and ted) and hostB are network namespaces (docs/TESTING.md says why
# not a second guest). scripts/lib/system-guest.sh checks boot, charon late, reload, charon
# reloaded/restarted, nftables restarted and XFRM flushed, an upgrade, and apt purge, each
# read from outside ted (systemctl, journalctl, tcpdump, ip -s xfrm state, nft, swanctl).
#
#   scripts/e2e-system.sh [DEB]     # default: the newest ted_*_amd64.deb in .build/ or the root
#
# The upgrade installs the same build under version <version>+e2e (package-deb.sh with
# TED_DEB_VERSION; cached build, about a minute), or $TED_DEB_UPGRADE when set.
# E2E_SYSTEM_NO_GUARD=1 is the boot checks' negative control: ted-boot-guard.service
# disabled, the boot checks only; its "never crossed in clear" check must then FAIL.
# GUEST_TIMEOUT (s, default 900) bounds the guest. Prints `N passed, N failed` last, exits 1
# on a failure. Work files: $E2E_SYSTEM_DIR or /var/tmp/ted-e2e-system.XXXXXX (kept on failure).
set -u
cd "$(dirname "$0")/.."
repo=$PWD
start=$(date +%s)
GUEST_TIMEOUT=${GUEST_TIMEOUT:-900}
source scripts/lib/kernel-vm.sh        # also reap.sh: OWNED
source scripts/lib/deb-root.sh
[ "$(id -u)" = 0 ] || { echo "e2e-system: needs root" >&2; exit 2; }
missing=()
for tool in qemu-system-x86_64 mkinitramfs unmkinitramfs cpio gzip "$KVM_VIRTIOFSD" dpkg-deb chroot; do
  command -v "$tool" > /dev/null || missing+=("$tool"); done
[ -n "$KVM_KVER" ] && [ -r "/boot/vmlinuz-$KVM_KVER" ] || missing+=("/boot/vmlinuz-*-cloud-amd64")
if [ ${#missing[@]} -gt 0 ]; then   # as checks.sh's require: a failure in CI, a skip elsewhere
  echo "e2e-system: missing prerequisites: ${missing[*]}"
  [ -n "${CI:-}" ] && { echo "0 passed, 1 failed"; exit 1; }
  echo "e2e-system: skipped (set CI to make this a failure)"; exit 0
fi
DEB=$(realpath "${1:-$(ls -t .build/ted_*_amd64.deb ted_*_amd64.deb 2>/dev/null | head -1)}" 2>/dev/null)
[ -f "$DEB" ] || { echo "e2e-system: no .deb (scripts/package-deb.sh .build)" >&2; exit 2; }

OUT=${E2E_SYSTEM_DIR:-$(mktemp -d /var/tmp/ted-e2e-system.XXXXXX)}
SHARE="$OUT/share" ROOT="$OUT/root"
mkdir -p "$OUT"; rm -rf "$SHARE"; mkdir -p "$SHARE"
passed=0 failed=0
host_check() { if "$@" > "$OUT/host-check.out" 2>&1; then passed=$((passed + 1)); echo "PASS: $CHECK"
  else failed=$((failed + 1)); echo "FAIL: $CHECK"; tail -8 "$OUT/host-check.out" | sed 's/^/      /'; fi; }

mounted=()
cleanup() {
  kernel_vm_kill
  local m; for (( m=${#mounted[@]}-1; m>=0; m-- )); do umount -l "${mounted[$m]}" 2>/dev/null; done
  rm -rf "$OUT/upper" "$OUT/work" 2>/dev/null
  rmdir "$ROOT" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the root: the cached system root under an overlay, ted installed as an operator would --
system=$(deb_root_system "$KVM_KVER") || { echo "FAIL: the Debian 12 system root is made"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$OUT/upper" "$OUT/work" "$ROOT"
mount -t overlay -o "lowerdir=$system,upperdir=$OUT/upper,workdir=$OUT/work" overlay "$ROOT" && mounted+=("$ROOT") \
  || { echo "FAIL: the overlay on the system root"; echo "0 passed, 1 failed"; exit 1; }
mount --bind /dev "$ROOT/dev" && mounted+=("$ROOT/dev"); mount --bind /dev/pts "$ROOT/dev/pts" && mounted+=("$ROOT/dev/pts")
mount -t proc proc "$ROOT/proc" && mounted+=("$ROOT/proc")
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root DEBIAN_FRONTEND=noninteractive "$@"; }
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"; chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp "$DEB" "$ROOT/tmp/ted.deb"
CHECK="install: apt-get install ./$(basename "$DEB") into the fresh root (no network: every dependency is there)"
host_check in_root apt-get install -y -q /tmp/ted.deb
# The operator's edits (docs/OPERATOR.md, "Installing the package"): this gateway's address,
# policy and peers, the peers' key in /etc/ted/ike.psk. Nothing else.
PSK="ted e2e-system pre-shared key $(date +%s)"
sed -i -e 's|^identity: .*|identity: 198.51.100.1|' -e 's|^  - permit ip .*|  - permit ip 198.18.1.0/24 198.18.0.0/15|' \
  -e 's|^  - 198.51.100.0/24$|  - 198.51.100.2/32|' "$ROOT/etc/ted/ted.yaml"
printf '%s\n' "$PSK" > "$ROOT/etc/ted/ike.psk"
diff <(dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./etc/ted/ted.yaml) "$ROOT/etc/ted/ted.yaml" > "$OUT/operator-edits.diff"
CHECK="install: ted check of the edited /etc/ted/ted.yaml passes, no warning (conffile $(stat -c %a "$ROOT/etc/ted/ted.yaml"), key file $(stat -c %a "$ROOT/etc/ted/ike.psk"))"
host_check in_root sh -c 'ted check /etc/ted/ted.yaml 2>/tmp/check.err >/dev/null && ! grep . /tmp/check.err'
in_root systemctl enable ted.service > "$OUT/enable.txt" 2>&1
CHECK="install: systemctl enable ted enables the boot guard too"
host_check test -L "$ROOT/etc/systemd/system/sysinit.target.wants/ted-boot-guard.service"
if [ -n "${E2E_SYSTEM_NO_GUARD:-}" ]; then
  in_root systemctl disable ted-boot-guard.service >> "$OUT/enable.txt" 2>&1
  touch "$SHARE/boot-only"
  echo "e2e-system: NEGATIVE CONTROL: the boot guard disabled, boot checks only"
fi
# The gateway's forwarding, as an operator's sysctl.d turns it on.
echo "net.ipv4.ip_forward = 1" > "$ROOT/etc/sysctl.d/60-gateway.conf"
echo 30 > "$SHARE/acq_expires_before"   # the guest kernel's default: it boots fresh
# The suite's own units (not the package's): the neighbours at boot, the checks once booted.
cp scripts/lib/system-topology.sh scripts/lib/system-guest.sh "$SHARE/"
printf '%s\n' "$PSK" > "$SHARE/psk"
cat > "$ROOT/etc/systemd/system/e2e-topology.service" <<UNIT
[Unit]
Description=e2e-system: hostA, gwB, hostB and the transit capture (the suite, not ted)
After=network-pre.target
Before=network.target
Wants=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/bash /ted-out/system-topology.sh
[Install]
WantedBy=multi-user.target
UNIT
cat > "$ROOT/etc/systemd/system/e2e-driver.service" <<UNIT
[Unit]
Description=e2e-system: the checks (the suite, not ted)
[Service]
Type=simple
ExecStart=/bin/bash -c '/bin/bash /ted-out/system-guest.sh /ted-out $((GUEST_TIMEOUT - 150)); echo \$? > /ted-out/guest.rc; sync; echo o > /proc/sysrq-trigger'
[Install]
WantedBy=multi-user.target
UNIT
in_root systemctl enable e2e-topology.service e2e-driver.service >> "$OUT/enable.txt" 2>&1
rm -f "$ROOT/usr/sbin/policy-rc.d"
umount "$ROOT/proc" "$ROOT/dev/pts" "$ROOT/dev"; mounted=("$ROOT")

# The upgrade: the same build, a newer version.
if [ -n "${E2E_SYSTEM_NO_GUARD:-}" ]; then :
elif [ -n "${TED_DEB_UPGRADE:-}" ]; then cp "$TED_DEB_UPGRADE" "$SHARE/ted-upgrade.deb"
else
  version=$(dpkg-deb -f "$DEB" Version)
  TED_DEB_VERSION="$version+e2e" scripts/package-deb.sh "$OUT/upgrade" > "$OUT/upgrade-build.log" 2>&1 \
    && cp "$OUT/upgrade/ted_${version}+e2e_amd64.deb" "$SHARE/ted-upgrade.deb" || tail -5 "$OUT/upgrade-build.log"
fi

# --- the guest: that root, systemd as PID 1 ------------------------------------------------
kernel_vm_init_script() {
  cat <<'INIT'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mkdir -p /proc /sys /dev /lower /rw /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in virtio_pci virtio_console fuse virtiofs overlay; do modprobe $m 2>/dev/null; done
mount -r -t virtiofs sysroot /lower || { echo "init: cannot mount the system root"; echo o > /proc/sysrq-trigger; }
mount -t tmpfs -o size=1024m tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || { echo "init: overlay failed"; echo o > /proc/sysrq-trigger; }
mkdir -p /newroot/ted-out
mount -t virtiofs tedout /newroot/ted-out || { echo "init: cannot mount the output share"; echo o > /proc/sysrq-trigger; }
umount /sys; umount /proc
exec run-init /newroot /lib/systemd/systemd
INIT
}
initrd=$(kernel_vm_initramfs) || { echo "FAIL: the initramfs"; exit 1; }
sock_dir=$(mktemp -d /tmp/ted-sys-sock.XXXXXX)
"${OWNED[@]}" "$KVM_VIRTIOFSD" --socket-path="$sock_dir/root.sock" -o source="$ROOT" -o cache=always -o sandbox=chroot \
  -o xattr > "$OUT/virtiofsd-root.log" 2>&1 &
KVM_PIDS+=($!)
"${OWNED[@]}" "$KVM_VIRTIOFSD" --socket-path="$sock_dir/out.sock" -o source="$SHARE" -o cache=none -o sandbox=chroot \
  > "$OUT/virtiofsd-out.log" 2>&1 &
KVM_PIDS+=($!)
for i in $(seq 1 50); do [ -S "$sock_dir/root.sock" ] && [ -S "$sock_dir/out.sock" ] && break; sleep 0.1; done
echo "e2e-system: booting $(basename "$DEB") in Debian 12 with systemd on $KVM_KVER (QEMU, TCG); work files in $OUT"
"${OWNED[@]}" qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp "$KVM_SMP" -m "$KVM_MEM" \
  -object memory-backend-memfd,id=mem,size="$KVM_MEM",share=on -numa node,memdev=mem \
  -chardev socket,id=c0,path="$sock_dir/root.sock" -device vhost-user-fs-pci,chardev=c0,tag=sysroot \
  -chardev socket,id=c1,path="$sock_dir/out.sock" -device vhost-user-fs-pci,chardev=c1,tag=tedout \
  -kernel "/boot/vmlinuz-$KVM_KVER" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init systemd.show_status=false" \
  -display none -monitor none -serial file:"$OUT/console.log" -nic none -no-reboot < /dev/null 2> "$OUT/qemu.log" &
qemu=$!; KVM_PIDS+=($qemu)
waited=0 status=0
tail -F "$SHARE/checks.txt" 2>/dev/null & tailer=$!
while kill -0 "$qemu" 2>/dev/null; do
  [ $waited -ge $((GUEST_TIMEOUT * 2)) ] && { status=124; echo "e2e-system: guest timed out after $GUEST_TIMEOUT s"; break; }
  sleep 0.5; waited=$((waited + 1))
done
sleep 1; kill "$tailer" 2>/dev/null; wait "$tailer" 2>/dev/null
kernel_vm_kill; rm -rf "$sock_dir"

g_passed=$(grep -c '^PASS: ' "$SHARE/checks.txt" 2>/dev/null); g_failed=$(grep -c '^FAIL: ' "$SHARE/checks.txt" 2>/dev/null)
passed=$((passed + ${g_passed:-0})); failed=$((failed + ${g_failed:-0}))
if ! grep -q '^guest: [0-9]* passed, [0-9]* failed$' "$SHARE/checks.txt" 2>/dev/null; then
  echo "FAIL: the guest ran the suite to its end (status $status; see $OUT/console.log)"; tail -5 "$OUT/console.log"
  failed=$((failed + 1))
fi
grep -o 'Overall exposure level.*' "$SHARE/security.txt" 2>/dev/null | sed 's/^/e2e-system: systemd-analyze security: /'
cleanup
[ "$failed" -eq 0 ] && [ -z "${E2E_SYSTEM_DIR:-}" ] && rm -rf "$OUT"
echo "e2e-system: wall time $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
