# Boots the Debian cloud kernel as a QEMU guest (TCG: nested KVM does not work on this
# machine kind) over the host's own root file system, read-only under a tmpfs overlay, and
# runs one command in it (source this file; bash). docs: /work/shared/notes/kernel-esp-vm.md
#
#   kernel_vm_run OUTDIR TIMEOUT_S SCRIPT [ARGS...]
#
# OUTDIR (a host directory) is the guest's /ted-out, writable, through a second virtiofs
# share; SCRIPT runs there as `bash SCRIPT ARGS` (paths as the host sees them: the guest
# sees the host's files as they are at boot). Its exit status comes back in
# OUTDIR/guest.rc, the console (guest's stdout/stderr) in OUTDIR/console.log and on our
# stdout as it comes. Returns the guest's status, 124 on timeout, 125 when the guest never
# wrote a status (did not boot, crashed). Every process it starts is gone when it returns.

source "$(dirname "${BASH_SOURCE[0]}")/reap.sh"   # OWNED: QEMU and virtiofsd die with the suite
KVM_KVER=${KVM_KVER:-$(ls /lib/modules 2>/dev/null | grep -- '-cloud-amd64$' | sort -V | tail -1)}
KVM_CACHE=${KVM_CACHE:-/var/tmp/ted-kernel-vm}
KVM_VIRTIOFSD=${KVM_VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
KVM_MEM=${KVM_MEM:-2G}
KVM_SMP=${KVM_SMP:-2}
# The host's root does not change under a run (the suite copies what may): let the guest
# cache it; every exec through an uncached share costs FUSE round trips under TCG.
KVM_ROOT_CACHE=${KVM_ROOT_CACHE:-always}

# The guest's /init: mount the host's root (virtiofs, read-only) under a tmpfs overlay,
# the output share at /ted-out, and run /ted-out/run.sh there; then power off.
# klibc tools only in the initramfs (no sed/awk/busybox). /tmp stays the host's, seen through
# the overlay (writes land in the tmpfs upper layer): a checkout there must be visible.
kernel_vm_init_script() {
  cat <<'INIT'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mkdir -p /proc /sys /dev /lower /rw /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in virtio_pci virtio_console fuse virtiofs overlay; do modprobe $m 2>/dev/null; done
mount -r -t virtiofs hostroot /lower || { echo "init: cannot mount the host root"; echo o > /proc/sysrq-trigger; }
mount -t tmpfs -o size=1024m tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || { echo "init: overlay failed"; echo o > /proc/sysrq-trigger; }
mkdir -p /newroot/ted-out
mount -t virtiofs tedout /newroot/ted-out || { echo "init: cannot mount the output share"; echo o > /proc/sysrq-trigger; }
exec run-init /newroot /bin/sh -c '
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin; ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmpfs /run
hostname ted-guest
/bin/sh /ted-out/run.sh > /dev/console 2>&1
sync; echo o > /proc/sysrq-trigger; sleep 10'
INIT
}

# kernel_vm_initramfs: path of an initramfs with virtio/virtiofs/overlay and our /init,
# built once per kernel and init script into $KVM_CACHE.
kernel_vm_initramfs() {
  local sum out work
  sum=$(kernel_vm_init_script | md5sum | cut -c1-12)
  out="$KVM_CACHE/initrd-$KVM_KVER-$sum.img"
  [ -s "$out" ] && { echo "$out"; return 0; }
  mkdir -p "$KVM_CACHE"
  work=$(mktemp -d "$KVM_CACHE/build.XXXXXX")
  cp -a /etc/initramfs-tools "$work/conf"
  printf '%s\n' virtio_pci virtio_console fuse virtiofs overlay >> "$work/conf/modules"
  # No compression tool surprises: gzip everywhere.
  sed -i 's/^COMPRESS=.*/COMPRESS=gzip/; s/^MODULES=.*/MODULES=list/' "$work/conf/initramfs.conf"
  if ! mkinitramfs -d "$work/conf" -o "$work/stock.img" "$KVM_KVER" >"$work/mkinitramfs.log" 2>&1; then
    echo "kernel-vm: mkinitramfs failed:" >&2; tail -5 "$work/mkinitramfs.log" >&2; rm -rf "$work"; return 1
  fi
  unmkinitramfs "$work/stock.img" "$work/unpacked" || { rm -rf "$work"; return 1; }
  local root="$work/unpacked"
  [ -d "$root/main" ] && root="$root/main"
  kernel_vm_init_script > "$root/init"; chmod 755 "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/new.img" || { rm -rf "$work"; return 1; }
  mv "$work/new.img" "$out"
  rm -rf "$work"
  echo "$out"
}

KVM_PIDS=()
kernel_vm_kill() {
  local pid
  for pid in "${KVM_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${KVM_PIDS[@]}"; do
    local i; for i in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  done
  KVM_PIDS=()
}

kernel_vm_run() {
  local out=$1 timeout=$2; shift 2
  local kernel="/boot/vmlinuz-$KVM_KVER" initrd sock_dir arg
  [ -r "$kernel" ] || { echo "kernel-vm: no $kernel (install linux-image-cloud-amd64)"; return 125; }
  [ -x "$KVM_VIRTIOFSD" ] || { echo "kernel-vm: no $KVM_VIRTIOFSD (install qemu-system-x86)"; return 125; }
  initrd=$(kernel_vm_initramfs) || { echo "kernel-vm: no initramfs"; return 125; }
  mkdir -p "$out"; rm -f "$out/guest.rc"
  {
    echo "cd $(printf %q "$PWD")"
    printf 'bash'; for arg in "$@"; do printf ' %q' "$arg"; done; echo
    echo 'echo $? > /ted-out/guest.rc; sync'
  } > "$out/run.sh"
  sock_dir=$(mktemp -d /tmp/ted-kvm-sock.XXXXXX)
  # One virtiofsd per share and per boot (each serves one guest and exits).
  "${OWNED[@]}" "$KVM_VIRTIOFSD" --socket-path="$sock_dir/root.sock" -o source=/ -o cache="$KVM_ROOT_CACHE" -o sandbox=chroot \
    > "$out/virtiofsd-root.log" 2>&1 &
  KVM_PIDS+=($!)
  "${OWNED[@]}" "$KVM_VIRTIOFSD" --socket-path="$sock_dir/out.sock" -o source="$out" -o cache=none -o sandbox=chroot \
    > "$out/virtiofsd-out.log" 2>&1 &
  KVM_PIDS+=($!)
  local i
  for i in $(seq 1 50); do [ -S "$sock_dir/root.sock" ] && [ -S "$sock_dir/out.sock" ] && break; sleep 0.1; done
  if ! [ -S "$sock_dir/root.sock" ] || ! [ -S "$sock_dir/out.sock" ]; then
    echo "kernel-vm: virtiofsd did not start"; cat "$out"/virtiofsd-*.log; kernel_vm_kill; rm -rf "$sock_dir"; return 125
  fi
  "${OWNED[@]}" qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp "$KVM_SMP" -m "$KVM_MEM" \
    -object memory-backend-memfd,id=mem,size="$KVM_MEM",share=on -numa node,memdev=mem \
    -chardev socket,id=c0,path="$sock_dir/root.sock" -device vhost-user-fs-pci,chardev=c0,tag=hostroot \
    -chardev socket,id=c1,path="$sock_dir/out.sock" -device vhost-user-fs-pci,chardev=c1,tag=tedout \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init" \
    -display none -monitor none -serial stdio -nic none -no-reboot \
    < /dev/null > >(tee "$out/console.log") 2>"$out/qemu.log" &
  local qemu=$!; KVM_PIDS+=($qemu)
  local status=0 waited=0
  while kill -0 "$qemu" 2>/dev/null; do
    [ $waited -ge $((timeout * 2)) ] && { status=124; echo "kernel-vm: guest timed out after ${timeout} s"; break; }
    sleep 0.5; waited=$((waited + 1))
  done
  kernel_vm_kill
  rm -rf "$sock_dir"
  [ $status -eq 124 ] && return 124
  [ -s "$out/guest.rc" ] || { echo "kernel-vm: the guest wrote no status (boot failed?)"; tail -5 "$out/qemu.log"; return 125; }
  return "$(cat "$out/guest.rc")"
}
