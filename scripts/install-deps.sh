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
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
