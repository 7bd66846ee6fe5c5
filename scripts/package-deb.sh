#!/usr/bin/env bash
# Builds ted_<version>_amd64.deb from the committed HEAD (uncommitted changes are not in it):
# a release binary with the Swift runtime linked in (--static-swift-stdlib), the systemd
# unit, /etc/ted/ted.yaml as a conffile, man pages from swift-argument-parser's
# generate-manual plugin, bash completion and the docs.
#
#   scripts/package-deb.sh [OUTPUT-DIR]      # default: the repository's root
#   TED_DEB_VERSION=0.1.0+1 scripts/package-deb.sh DIR   # the same build under another
#                                            # version (scripts/e2e-system.sh's upgrade)
#
# The build goes to .build-deb/ (kept, so a second run only rebuilds what changed).
# Needs dpkg-deb and git; the Swift packages come from the usual resolution.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$repo}")
work="$repo/.build-deb"
start=$SECONDS

commit=$(git -C "$repo" rev-parse HEAD)
version=$(sed -n 's/^.*static let number = "\(.*\)"$/\1/p' "$repo/Sources/TEDDaemon/Operations/Version.swift")
[ -n "$version" ] || { echo "package-deb.sh: no version in Sources/TEDDaemon/Operations/Version.swift" >&2; exit 1; }
version=${TED_DEB_VERSION:-$version}
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] \
  || echo "package-deb.sh: uncommitted changes are not packaged: building HEAD $commit" >&2

# The committed tree, with Version.swift written for this build. Files whose content did
# not change keep their time stamps, so the build stays incremental.
mkdir -p "$work/src" "$work/stage"
rm -rf "$work/export" && mkdir "$work/export"
git -C "$repo" archive HEAD | tar -x -C "$work/export"
cat > "$work/export/Sources/TEDDaemon/Operations/Version.swift" <<SWIFT
/// What \`ted --version\` prints and \`ted_build_info\` shows (written by scripts/package-deb.sh).
public enum Version {
    public static let number = "$version"
    public static let commit = "$commit"

    public static var line: String { "\(number) (commit \(commit))" }
}
SWIFT
(cd "$work/export" && find . -type f -print0) | while IFS= read -r -d '' file; do
  cmp -s "$work/export/$file" "$work/src/$file" || { mkdir -p "$(dirname "$work/src/$file")"; cp "$work/export/$file" "$work/src/$file"; }
done
(cd "$work/src" && find . -type f -print0) | while IFS= read -r -d '' file; do
  [ -e "$work/export/$file" ] || rm -f "$work/src/$file"
done
[ -f "$repo/Package.resolved" ] && cp -p "$repo/Package.resolved" "$work/src/Package.resolved"

# One release build serves both: the plugin builds every product with these flags, then
# runs generate-manual on the ted binary. `-Xswiftc -static-stdlib` is what
# `swift build --static-swift-stdlib` passes, spelled so that `swift package` takes it too.
cd "$work/src"
flags=(--scratch-path "$work/build" -c release -Xswiftc -static-stdlib)
echo "package-deb.sh: building ted $version ($commit) in release mode"
nice -n 10 swift package "${flags[@]}" plugin generate-manual --multi-page >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; exit 1; }
man=$(dirname "$(find "$work/build/plugins" -path '*GenerateManual*' -name ted.1 -newer "$work/export/Package.swift" | head -1)")
nice -n 10 swift build "${flags[@]}" --product ted >>"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }
binary="$(swift build "${flags[@]}" --show-bin-path)/ted"
if ldd "$binary" | grep -q 'libswift\|libFoundation\|not found'; then
  echo "package-deb.sh: $binary still needs the Swift runtime:" >&2; ldd "$binary" >&2; exit 1
fi

# The tree of the package.
root="$work/stage/ted"
rm -rf "$root" && mkdir -p "$root/DEBIAN"
install -D -m 0755 "$binary" "$root/usr/bin/ted"
strip --strip-unneeded "$root/usr/bin/ted"
install -D -m 0644 "$work/src/contrib/systemd/ted.service" "$root/lib/systemd/system/ted.service"
install -D -m 0644 "$work/src/contrib/systemd/ted-boot-guard.service" "$root/lib/systemd/system/ted-boot-guard.service"
install -D -m 0755 "$work/src/contrib/systemd/boot-guard" "$root/usr/lib/ted/boot-guard"
# The configuration may hold a key: root only.
install -D -m 0600 "$work/src/contrib/debian/ted.yaml" "$root/etc/ted/ted.yaml"
for page in "$man"/*.1; do
  install -D -m 0644 "$page" "$root/usr/share/man/man1/$(basename "$page")"
  gzip -9n "$root/usr/share/man/man1/$(basename "$page")"
done
[ -e "$root/usr/share/man/man1/ted.1.gz" ] || { echo "package-deb.sh: no ted.1 from generate-manual" >&2; exit 1; }
mkdir -p "$root/usr/share/bash-completion/completions"
# A completion file is sourced, not run: no #! line.
"$root/usr/bin/ted" --generate-completion-script bash | sed '1{/^#!/d}' > "$root/usr/share/bash-completion/completions/ted"
install -D -m 0644 "$work/src/README.md" "$root/usr/share/doc/ted/README.md"
for doc in "$work/src"/docs/*.md; do install -m 0644 "$doc" "$root/usr/share/doc/ted/"; done
install -D -m 0644 "$work/src/contrib/wireshark/ted.lua" "$root/usr/share/doc/ted/examples/ted.lua"
install -m 0644 "$work/src/contrib/debian/copyright" "$root/usr/share/doc/ted/copyright"
sed "1s/(.*)/($version)/" "$work/src/contrib/debian/changelog" | gzip -9n > "$root/usr/share/doc/ted/changelog.gz"
# What lintian reports and is meant (contrib/debian/lintian-overrides says why).
install -D -m 0644 "$work/src/contrib/debian/lintian-overrides" "$root/usr/share/lintian/overrides/ted"

# Libraries the binary still loads (glibc, libstdc++, ...), as the Debian packages that ship them.
# dpkg knows a library by the path its package ships, /lib or /usr/lib (merged /usr).
libs=$(ldd "$root/usr/bin/ted" | awk '/=> \//{print $3}' | sort -u)
shlib_packages=$(for lib in $libs; do
    real=$(realpath "$lib")
    for path in "$lib" "$real" "${real#/usr}" "/usr$lib"; do dpkg -S "$path" 2>/dev/null && break; done
  done | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
# charon-systemd is Debian 12's strongswan.service, the unit ted.service wants; a charon run
# some other way (strongswan-charon) serves too.
depends="${shlib_packages:+$shlib_packages, }charon-systemd | strongswan-charon, strongswan-swanctl, libcharon-extra-plugins, nftables, iptables, iproute2"

cat > "$root/DEBIAN/control" <<CONTROL
Package: ted
Version: $version
Architecture: amd64
Maintainer: ted maintainers <ted@example.org>
Homepage: https://example.org/ted
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Recommends: charon-systemd
Section: net
Priority: optional
Description: tunnel endpoint discovery (TED v3) for IPsec gateways
 ted finds, for a packet that must be protected, the IPsec gateway that protects
 its destination (a TED probe answered with that gateway's full proxy) and hands
 the peer and the intersected traffic selectors to strongSwan over VICI.
 .
 Built from commit $commit.
CONTROL
echo /etc/ted/ted.yaml > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  # The IKE key the shipped configuration reads (ike.psk-file): a random one until the
  # operator puts the peers' shared key there. Not a conffile: purge removes it.
  if [ ! -e /etc/ted/ike.psk ]; then
    (umask 077 && head -c 33 /dev/urandom | base64 > /etc/ted/ike.psk)
  fi
  # The value ted changes (net.core.xfrm_acq_expires), as it was before ted: prerm puts it back.
  if [ ! -e /var/lib/ted/xfrm_acq_expires ] && [ -r /proc/sys/net/core/xfrm_acq_expires ]; then
    mkdir -p /var/lib/ted && cat /proc/sys/net/core/xfrm_acq_expires > /var/lib/ted/xfrm_acq_expires
  fi
  # The service is not enabled on a first install: /etc/ted/ted.yaml must be edited first.
  # On an upgrade a running ted is restarted on the new binary (its traps and tunnels stay).
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    if [ -n "$2" ] && systemctl is-active --quiet ted.service; then systemctl restart ted.service || true; fi
  fi
fi
exit 0
SCRIPT
cat > "$root/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
# A stopped ted keeps its traps (fail closed); removing the package removes them too.
if [ "$1" = remove ]; then
  if [ -d /run/systemd/system ]; then systemctl stop ted.service ted-boot-guard.service || true; fi
  if command -v systemctl >/dev/null; then systemctl --no-reload disable ted.service ted-boot-guard.service >/dev/null 2>&1 || true; fi
  if [ -f /etc/ted/ted.yaml ]; then ted cleanup --config /etc/ted/ted.yaml || true
  else ted cleanup || true; fi
  /usr/lib/ted/boot-guard remove || true
  if [ -r /var/lib/ted/xfrm_acq_expires ] && [ -w /proc/sys/net/core/xfrm_acq_expires ]; then
    cat /var/lib/ted/xfrm_acq_expires > /proc/sys/net/core/xfrm_acq_expires || true
  fi
fi
exit 0
SCRIPT
cat > "$root/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
if [ "$1" = purge ]; then
  rm -rf /run/ted /var/lib/ted /var/log/ted
  rm -f /etc/ted/ike.psk
  rmdir /etc/ted 2>/dev/null || true
fi
exit 0
SCRIPT
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

mkdir -p "$out"
deb="$out/ted_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "package-deb.sh: $deb ($(du -h "$deb" | cut -f1)), commit $commit, in $((SECONDS - start)) s"
