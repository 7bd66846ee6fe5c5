#!/usr/bin/env bash
# Installs the Debian packages ted's tests and end-to-end suite need (root, Debian 12).
# Idempotent: does nothing when everything is present.
set -euo pipefail
pkgs=(tshark nftables iproute2 strongswan-charon strongswan-swanctl
      strongswan-pki libcharon-extra-plugins libstrongswan-standard-plugins tcpdump ethtool
      iputils-ping netcat-openbsd procps python3-scapy iptables
      qemu-system-x86 linux-image-cloud-amd64 initramfs-tools cpio gzip   # e2e-kernel.sh
      debootstrap lintian)   # test-deb.sh, e2e-system.sh, the package's lint
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# promtool (scripts/test.sh checks contrib/prometheus) comes with Debian's prometheus
# package, installed without starting its server (policy-rc.d refuses the start).
dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q 'install ok installed' || missing_prometheus=1
[ ${#missing[@]} -eq 0 ] && [ -z "${missing_prometheus:-}" ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -n "${missing_prometheus:-}" ]; then
  echo "install-deps: installing prometheus (for promtool), not started" >&2
  policy=/usr/sbin/policy-rc.d
  if [ -e "$policy" ]; then
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
fi
