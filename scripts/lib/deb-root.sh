# A clean Debian 12 root, debootstrapped once and cached (source this file; bash; root).
#
#   deb_root_base        # path of the minbase root (bookworm, plus man-db), made once
#
# $TED_DEB_ROOT_CACHE (default /tmp/ted-deb-cache) holds it; scripts/test-deb.sh and
# scripts/e2e-system.sh copy or overlay it, never change it.
TED_DEB_ROOT_CACHE=${TED_DEB_ROOT_CACHE:-/tmp/ted-deb-cache}

deb_root_base() {
  local cache=$TED_DEB_ROOT_CACHE base="$TED_DEB_ROOT_CACHE/bookworm-minbase"
  mkdir -p "$cache"
  if [ ! -d "$base" ]; then
    command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; } \
      || { echo "deb-root: cannot install debootstrap" >&2; return 2; }
    echo "deb-root: making the clean root once in $base (debootstrap, a few minutes)" >&2
    rm -rf "$base.partial"
    debootstrap --variant=minbase --include=man-db bookworm "$base.partial" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 \
      || { tail -5 "$cache/debootstrap.log" >&2; return 2; }
    mv "$base.partial" "$base"
  fi
  echo "$base"
}

# Packages of the system root: systemd as init, strongSwan as Debian 12 runs it under
# systemd (charon-systemd: strongswan.service), the plugins ted's hand-off needs (the
# strongswan-charon/libcharon-extra-plugins ted depends on), nftables, iptables, iproute2,
# and the tools the suite reads the system with (tcpdump, ping, python3 for probes).
DEB_ROOT_SYSTEM_PACKAGES=(systemd systemd-sysv udev kmod dbus charon-systemd strongswan-swanctl strongswan-charon
  libcharon-extra-plugins libstrongswan-standard-plugins nftables iptables iproute2 procps
  tcpdump iputils-ping netcat-openbsd python3-minimal)

# deb_root_system KVER: path of a root with systemd and strongSwan installed (services
# enabled the Debian way) and the guest kernel's modules (/lib/modules/KVER, copied from
# the host), made once from deb_root_base. ted is not in it.
deb_root_system() {
  local kver=$1 base system="$TED_DEB_ROOT_CACHE/bookworm-system-$1"
  [ -e "$system/.complete" ] && { echo "$system"; return 0; }
  base=$(deb_root_base) || return 2
  echo "deb-root: making the system root once in $system (apt-get install, a few minutes)" >&2
  rm -rf "$system" && cp -a "$base" "$system" || return 2
  cp /etc/resolv.conf "$system/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' > "$system/usr/sbin/policy-rc.d" && chmod 755 "$system/usr/sbin/policy-rc.d"
  mount --bind /dev "$system/dev" && mount -t proc proc "$system/proc" || return 2
  local status=0
  { chroot "$system" apt-get update -q && DEBIAN_FRONTEND=noninteractive chroot "$system" apt-get install -y -q --no-install-recommends \
      "${DEB_ROOT_SYSTEM_PACKAGES[@]}"; } > "$TED_DEB_ROOT_CACHE/system.log" 2>&1 || status=$?
  umount "$system/proc" "$system/dev"
  [ $status -eq 0 ] || { tail -5 "$TED_DEB_ROOT_CACHE/system.log" >&2; return 2; }
  rm -f "$system/usr/sbin/policy-rc.d"
  mkdir -p "$system/lib/modules" && cp -a "/lib/modules/$kver" "$system/lib/modules/" || return 2
  chroot "$system" depmod "$kver" || return 2
  # A guest with no network of its own: no wait for it at boot, no getty on tty1.
  chroot "$system" systemctl mask systemd-networkd-wait-online.service getty@tty1.service serial-getty@ttyS0.service \
    apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1
  # strongswan-charon (the peer's charon in e2e-system.sh) brings strongswan-starter, a
  # second charon for UDP 500 and the VICI socket: an operator's gateway runs charon-systemd
  # alone (what ted's Depends picks first), so this one stays off.
  chroot "$system" systemctl disable strongswan-starter.service >/dev/null 2>&1
  echo ted-guest > "$system/etc/hostname"
  touch "$system/.complete"
  echo "$system"
}
