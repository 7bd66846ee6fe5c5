#!/usr/bin/env bash
# Installs ted_*.deb into a clean Debian 12 root and checks what an operator relies on:
# it installs with apt-get and its dependencies, runs without Swift on the machine,
# `ted --version` names the commit, the conffile passes `ted check`, `man ted` works,
# bash completion and the unit are in place, and `apt-get purge ted` leaves no file of it.
#
#   scripts/test-deb.sh [DEB]     # default: the newest ted_*_amd64.deb in the repository root
#
# Root only (chroot). The clean root is a debootstrap of bookworm minbase (plus man-db),
# made once in $TED_DEB_ROOT_CACHE (default /tmp/ted-deb-cache) and copied for every run.
# Prints "N passed, N failed" last; exits non-zero when a check fails.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
deb=$(realpath "${1:-$(ls -t "$repo"/ted_*_amd64.deb 2>/dev/null | head -1)}" 2>/dev/null) \
  || { echo "test-deb.sh: no .deb (run scripts/package-deb.sh first)" >&2; exit 2; }
[ -f "$deb" ] || { echo "test-deb.sh: no .deb (run scripts/package-deb.sh first)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "test-deb.sh: needs root (chroot)" >&2; exit 2; }
cache=${TED_DEB_ROOT_CACHE:-/tmp/ted-deb-cache}
mkdir -p "$cache"
start=$SECONDS
passed=0 failed=0
check() {   # check NAME COMMAND...: one line per check
  local name=$1; shift
  if "$@" >"$root/tmp/check.out" 2>&1; then
    passed=$((passed + 1))
    # A one-line answer (the version, a count) is worth seeing.
    if [ "$(wc -l < "$root/tmp/check.out")" = 1 ]; then echo "ok    $name: $(cat "$root/tmp/check.out")"; else echo "ok    $name"; fi
  else failed=$((failed + 1)); echo "FAIL  $name"; sed 's/^/      /' "$root/tmp/check.out" | tail -15; fi
}
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"; }

source "$repo/scripts/lib/deb-root.sh"
base=$(deb_root_base) || exit 2
if [ ! -e "$cache/bookworm-minbase.primed" ]; then
  # Package lists and the dependencies' .debs, downloaded once (not installed): each run's
  # apt-get then only refreshes the lists.
  cp /etc/resolv.conf "$base/etc/resolv.conf"
  chroot "$base" apt-get update -q >"$cache/prime.log" 2>&1 \
    && chroot "$base" apt-get install -y -q --download-only strongswan-charon strongswan-swanctl \
         libcharon-extra-plugins nftables iptables iproute2 >>"$cache/prime.log" 2>&1 \
    && touch "$cache/bookworm-minbase.primed" || { tail -5 "$cache/prime.log" >&2; exit 2; }
fi

root=$(mktemp -d /tmp/ted-deb-root.XXXXXX)
cleanup() {
  for mount in dev/pts dev proc; do umount -l "$root/$mount" 2>/dev/null; done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
cp -a "$base/." "$root/"
mount --bind /dev "$root/dev" && mount --bind /dev/pts "$root/dev/pts" && mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# No service starts inside the root (there is no init).
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
cp "$deb" "$root/tmp/"
package="/tmp/$(basename "$deb")"
echo "test-deb.sh: $(basename "$deb") into a copy of $base"

check "no Swift toolchain in the root" \
  sh -c "! ls '$root'/usr/lib/swift '$root'/opt/swift '$root'/usr/bin/swift 2>/dev/null | grep -q ."
check "apt-get install ./$(basename "$deb") (with its dependencies)" \
  in_root sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $package"
check "the binary loads: no Swift library and none missing" \
  in_root sh -c "ldd /usr/bin/ted && ! ldd /usr/bin/ted | grep -E 'not found|libswift|libFoundation'"
commit=$(dpkg-deb -f "$deb" Description | sed -n 's/.*Built from commit \([0-9a-f]*\)\..*/\1/p')
version=$(dpkg-deb -f "$deb" Version)
check "ted --version prints $version and the commit" \
  in_root sh -c "ted --version && ted --version | grep -qx '$version (commit $commit)' && [ -n '$commit' ]"
check "ted check /etc/ted/ted.yaml" in_root ted check /etc/ted/ted.yaml
check "ted demo (initiator and responders on loopback)" \
  in_root sh -c "ted demo > /tmp/demo.out && tail -1 /tmp/demo.out | grep -q scripts/e2e.sh && grep -c 'TED v3        tunnel' /tmp/demo.out"
check "/etc/ted/ted.yaml is a conffile" \
  in_root sh -c "dpkg-query -W -f='\${Conffiles}' ted | grep -q '/etc/ted/ted.yaml '"
check "man ted, man ted.check" in_root sh -c "man -P cat ted | grep -q 'Tunnel Endpoint Discovery' && man -P cat ted.check | grep -q 'ted check'"
check "bash completion" in_root sh -c "grep -q '_ted()' /usr/share/bash-completion/completions/ted"
check "systemd unit runs /usr/bin/ted" \
  in_root sh -c "grep -q '^ExecStart=/usr/bin/ted daemon --config /etc/ted/ted.yaml' /lib/systemd/system/ted.service"
check "depends on strongSwan (charon-systemd), nftables, iptables and iproute2" \
  in_root sh -c "for p in charon-systemd strongswan-swanctl libcharon-extra-plugins nftables iptables iproute2; do dpkg -s \$p >/dev/null || exit 1; done"
in_root dpkg -L ted > "$root/tmp/ted.files"
check "apt-get purge ted" in_root sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q ted"
check "no file of ted left behind (dpkg -L before, after purge)" \
  in_root sh -c 'left=0; while read -r f; do [ -d "$f" ] && continue; if [ -e "$f" ] || [ -L "$f" ]; then echo "left: $f"; left=1; fi; done < /tmp/ted.files
                 for d in /etc/ted /usr/share/doc/ted /run/ted /var/lib/ted /var/log/ted; do [ -e "$d" ] && { echo "left: $d"; left=1; }; done
                 dpkg -s ted 2>/dev/null | grep -q "^Status: install" && { echo "still installed"; left=1; }
                 [ $left = 0 ] && echo "$(grep -c . /tmp/ted.files) paths gone"'

echo "test-deb.sh: $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
