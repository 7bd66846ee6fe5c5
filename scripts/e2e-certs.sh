#!/usr/bin/env bash
# End-to-end: IKE proves what a TED response claims. A CA made at run time certifies each
# gateway's IP identity and, as RFC 3779 address blocks, what it protects; every charon
# runs the addrblock plugin in strict mode, and ted's connections require the peer's
# identity and that CA. A rogue gateway (gwC) with a valid certificate for 198.18.3.0/24
# only answers gwA's probes for hostB first, with a greedy policy: it gets no tunnel for
# hostB's network, gwA refutes it and finds gwB, and nothing crosses the transit in clear;
# started by the rogue itself, IKE to gwB's responder connection gets no child either.
# Then the same with pre-shared keys owned by one peer identity each: the rogue, holding
# a key of its own for anyone, gets no key from gwA and no tunnel.
# Every check reads charon (swanctl) or a capture of the transit bridge.
# Prints "N passed, N failed" last; exit 1 on any failure.
# No pipefail: checks pipe into `grep -q`, which may close the pipe early (SIGPIPE upstream).
set -u
cd "$(dirname "$0")/.."
TED=${TED:-$PWD/.build/debug/ted}

source scripts/lib/topology.sh
source scripts/lib/checks.sh
require e2e-certs ip nft tcpdump nc ping python3 pki /usr/lib/ipsec/charon swanctl
trap topology_cleanup EXIT

# The PKI, made here and left in the run's temporary directory only. The CA's own address
# blocks bound what it may certify (strict addrblock checks the chain too).
PKI=$TOPO_DIR/pki
mkdir -p "$PKI"
make_pki() {
  pki --gen --type ecdsa --size 256 --outform pem > "$PKI/ca.key" &&
  pki --self --ca --in "$PKI/ca.key" --type ecdsa --dn "CN=ted e2e CA" --addrblock 198.18.0.0/15 \
    --lifetime 2 --outform pem > "$PKI/ca.pem" || return 1
  local site n block
  for site in A B C; do
    n=$(( $(printf '%d' "'$site") - 64 )); block=198.18.$n.0/24
    pki --gen --type ecdsa --size 256 --outform pem > "$PKI/g$site.key" &&
    pki --pub --in "$PKI/g$site.key" --type ecdsa |
      pki --issue --cacert "$PKI/ca.pem" --cakey "$PKI/ca.key" --type pub --dn "CN=198.51.100.$n" \
        --san 198.51.100.$n --addrblock "$block" --lifetime 2 --outform pem > "$PKI/g$site.pem" || return 1
  done
}
check "pki: a CA (198.18.0.0/15) and gateway certificates with RFC 3779 address blocks" make_pki 2> "$PKI/pki.log"
addrblock_of() { pki --print --in "$PKI/g$1.pem" 2>/dev/null | awk '/^ *addresses:/ { print $2 }'; }
check "pki: the rogue gwC's certificate certifies 198.18.3.0/24 only ($(addrblock_of C))" test "$(addrblock_of C)" = "198.18.3.0/24"

# ted_config SITE POLICY-LINES...: a gateway's ted configuration, with certificates unless
# PEERS[SITE] (a YAML list; its keys then) or GROUP_PSK[SITE] (one key) say otherwise.
declare -A PEERS GROUP_PSK
ted_config() {
  local site=$1 ike=""
  if [ -n "${GROUP_PSK[$site]:-}" ]; then
    ike="  psk: \"${GROUP_PSK[$site]}\""$'\n'
  elif [ -z "${PEERS[$site]:-}" ]; then
    ike="  certificate: $PKI/g$site.pem"$'\n'"  private-key: $PKI/g$site.key"$'\n'"  ca-certificate: $PKI/ca.pem"$'\n'
  fi
  TED_DISCOVERY="retries: 3, timeout: 200ms, negative-ttl: 30s" TED_ACQUIRE_EXPIRES=1 TED_PEERS="${PEERS[$site]:-}" \
    TED_IKE="$ike  initiate-timeout: 2s" TED_PROPOSAL=aes128-sha256-modp2048 ted_yaml "$@" > "$TOPO_DIR/g$site.yaml"
}

# children SITE: "PEER REMOTE-TS" for every child SA gwSITE's charon holds, whatever its state.
children() {
  sas "$1" | awk '/^[^ ]/ { peer = "" }
    /^  remote / { split($0, at, "@ "); split(at[2], host, "["); peer = host[1] }
    /^    remote / && peer != "" { for (i = 2; i <= NF; i++) print peer, $i }'
}
child_with() { children "$1" | grep -qE "^$2 $3\$"; }
captured() { tcpdump -nn -r "$TOPO_DIR/transit.pcap" "$1" 2>/dev/null | wc -l; }
# Packets of a host on the transit link other than TED probes (udp/500) and the ICMP
# unreachables a host without a responder in front sends back to them.
cleartext_count() { captured "host $1 and not (udp port $ISAKMP_PORT) and not (icmp and icmp[0] = 3)"; }
plugins_of() { swanctl --stats --uri "unix://$TOPO_DIR/g$1.vici" 2>/dev/null | sed -n '/loaded plugins/,$p'; }

echo "e2e-certs: building the topology in namespaces $TOPO-* (work files in $TOPO_DIR)"
topology_up
CHARON_PLUGINS="    addrblock {
      load = yes
      strict = yes
    }"
for site in A B C; do charon_start $site || { fail "charon on g$site"; echo "$passed passed, $failed failed"; exit 1; }; done
for site in A B C; do check "g$site's charon has the addrblock plugin loaded" grep -qw addrblock <<< "$(plugins_of $site)"; done
bg tr tcpdump -Z root -i br0 -U -w "$TOPO_DIR/transit.pcap" >/dev/null 2>&1
sleep 0.5

ted_config A "permit ip 198.18.1.0/24 198.18.0.0/15"
ted_config B "permit ip 198.18.2.0/24 198.18.1.0/24"
# The rogue: its own network, and hostB's, which its certificate does not cover.
ted_config C "permit ip 198.18.3.0/24 198.18.1.0/24" "permit ip 198.18.2.0/24 198.18.1.0/24"
for site in A B C; do ted_start $site || { fail "ted on g$site"; echo "$passed passed, $failed failed"; exit 1; }; done
cert_loaded() { swanctl --list-certs --uri "unix://$TOPO_DIR/g$1.vici" 2>/dev/null | grep -q "198.51.100.$2"; }
check "ted loaded gwA's certificate (198.51.100.1) and the CA into charon" retry 20 cert_loaded A 1

# The rogue sits on gwA's path to hostB: its ted intercepts gwA's probes for hostB and
# answers them first. It also lets each probe go on to gwB 100 ms later, as a rogue
# racing the genuine gateway would (one that swallowed probes could only deny service):
# a copy taken off its outside link (AF_PACKET), resent by a raw socket.
in_ns gC sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.outside.send_redirects=0
# An address of hostB's network on the rogue itself, so that its own charon can install
# the child it is asked for (kernel-libipsec needs a local address in the local selector):
# then only gwA's charon stands between the rogue and the tunnel.
in_ns gC ip addr add 198.18.2.254/32 dev lo
in_ns gA ip route replace 198.18.2.0/24 via 198.51.100.3
bg gC python3 -c '
import socket, struct, sys, threading, time
packets = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
packets.bind(("outside", 0))
packets.settimeout(0.5)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
relayed, end = 0, time.monotonic() + 300
while time.monotonic() < end:
    try:
        data, address = packets.recvfrom(65535)
    except socket.timeout:
        continue
    ihl = (data[0] & 15) * 4
    if address[2] != 0 or data[9] != 17 or len(data) < ihl + 27 or data[16:19] != bytes([198, 18, 2]):
        continue
    if struct.unpack("!H", data[ihl + 2:ihl + 4])[0] != 500 or data[ihl + 26] != 0xf0 or data[8] <= 1:
        continue
    copy = bytearray(data[:struct.unpack("!H", data[2:4])[0]]); copy[8] -= 1
    # The copy may carry a checksum the sender left for offload to finish: compute it.
    udp = copy[ihl:]; udp[6:8] = b"\0\0"
    words = bytes(copy[12:20]) + bytes([0, 17]) + struct.pack("!H", len(udp)) + bytes(udp) + b"\0"
    total = sum(struct.unpack("!%dH" % (len(words) // 2), words[:len(words) // 2 * 2]))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    copy[ihl + 6:ihl + 8] = struct.pack("!H", (~total & 0xffff) or 0xffff)
    destination = socket.inet_ntoa(data[16:20])
    threading.Timer(0.1, raw.sendto, (bytes(copy), (destination, 0))).start()
    relayed += 1
    open(sys.argv[1], "w").write(str(relayed))
' "$TOPO_DIR/relayed"
sleep 0.5

# 1. hostA to hostB: the rogue answers first; IKE with it cannot carry hostB's network.
: > "$TOPO_DIR/gA.children"
ping_sampling() { children A >> "$TOPO_DIR/gA.children"; in_ns hA ping -c 1 -W 1 198.18.2.20; }
check "hostA reaches hostB although the rogue answers first" retry 40 ping_sampling
check "gwA's child SA for hostB is with gwB (198.51.100.2): remote 198.18.2.0/24" child_with A 198.51.100.2 '198\.18\.2\.0/24'
check "gwA's charon refused the rogue's selector by its certificate's address blocks (RFC 3779)" \
  grep -q "TS 198.18.2.0/24 is not contained in any address block constraint" "$TOPO_DIR/gA.charon.log"
no_rogue_child() { children A >> "$TOPO_DIR/gA.children"; ! grep -qE "^198\.51\.100\.3 198\.18\.2\." "$TOPO_DIR/gA.children"; }
check "gwA never held a child SA with the rogue for hostB's network (charon sampled at every try)" no_rogue_child
refuted() { "$TED" status --socket "$TOPO_DIR/gA.sock" --json | grep -q '"refutedClaim":[1-9]'; }
check "gwA's ted counts the rogue's later answers as refuted (ted status)" refuted
check "the rogue let probes go on towards gwB ($(cat "$TOPO_DIR/relayed" 2>/dev/null || echo 0))" test "$(cat "$TOPO_DIR/relayed" 2>/dev/null || echo 0)" -gt 0

# 2. A gateway with a correct certificate gets its tunnel: the same rogue, for the
# network its certificate does cover.
check "hostA reaches hostC through gwC, whose certificate covers 198.18.3.0/24" retry 20 in_ns hA ping -c 1 -W 1 198.18.3.30
check "gwA's child SA with gwC (198.51.100.3): remote 198.18.3.0/24" child_with A 198.51.100.3 '198\.18\.3\.0/24'
check "still no child SA with gwC for hostB's network" no_rogue_child

# 2b. The responder side: the rogue starts IKE to gwB itself, claiming hostA's network
# (a connection of its own, beside ted's). gwB's ted-responder connection takes the
# rogue's certificate (same CA), but gwB's charon leaves out the selector its address
# blocks do not cover, so no child comes up.
cat > "$TOPO_DIR/rogue.swanctl.conf" <<CONF
connections {
  rogue {
    version = 2
    local_addrs = 198.51.100.3
    remote_addrs = 198.51.100.2
    proposals = aes128-sha256-modp2048
    local {
      auth = pubkey
      id = 198.51.100.3
      certs = $PKI/gC.pem
    }
    remote {
      auth = pubkey
      id = 198.51.100.2
    }
    children {
      rogue {
        local_ts = 198.18.1.0/24
        remote_ts = 198.18.2.0/24
        esp_proposals = aes128-sha256
        mode = tunnel
      }
    }
  }
}
CONF
swanctl --load-conns --file "$TOPO_DIR/rogue.swanctl.conf" --uri "unix://$TOPO_DIR/gC.vici" > "$TOPO_DIR/rogue.load" 2>&1
swanctl --initiate --child rogue --timeout 5 --uri "unix://$TOPO_DIR/gC.vici" > "$TOPO_DIR/rogue.initiate" 2>&1
rogue_ike_with_b() { sas B | grep -A2 "ESTABLISHED" | grep -q "remote '198.51.100.3'"; }
check "responder: the rogue's own IKE SA with gwB came up (its certificate is valid)" rogue_ike_with_b
check "responder: gwB holds no child SA with the rogue for hostA's network" eval '! child_with B 198.51.100.3 "198\.18\.1\.0/24"'
check "responder: gwB's charon left 198.18.1.0/24 out by the rogue's address blocks" \
  grep -q "TS 198.18.1.0/24 is not contained in any address block constraint" "$TOPO_DIR/gB.charon.log"
swanctl --terminate --ike rogue --timeout 5 --uri "unix://$TOPO_DIR/gC.vici" >/dev/null 2>&1

# 3. What crossed the transit link.
sleep 0.5
rogue_mac=$(in_ns gC cat /sys/class/net/outside/address)
check "transit: gwA's probes for hostB went to the rogue (exchange 240 to its MAC)" \
  test "$(captured "ether dst $rogue_mac and dst host 198.18.2.20 and $PROBES")" -gt 0
check "transit: the rogue answered them (exchange 241 from 198.51.100.3 to gwA)" \
  test "$(captured "src host 198.51.100.3 and dst host 198.51.100.1 and $(exchange $TED_RESPONSE)")" -gt 0
check "transit: gwB answered too (exchange 241 from 198.51.100.2)" \
  test "$(captured "src host 198.51.100.2 and dst host 198.51.100.1 and $(exchange $TED_RESPONSE)")" -gt 0
check "transit: gwA started IKE with the rogue (IKE_SA_INIT to 198.51.100.3): IKE, not ted, refused it" \
  test "$(captured "src host 198.51.100.1 and dst host 198.51.100.3 and udp dst port $ISAKMP_PORT and $(exchange $IKE_SA_INIT)")" -gt 0
check "transit: the capture saw ESP-in-UDP (port 4500), so it saw the tunnels" test "$(captured 'udp port 4500')" -gt 0
check "transit: no cleartext between hostA and hostB" test "$(cleartext_count 198.18.2.20)" -eq 0
check "transit: no cleartext between hostA and hostC" test "$(cleartext_count 198.18.3.30)" -eq 0

# 4. Pre-shared keys, never one for any identity: gwA and gwB share a key owned by each
# other's identity only; gwA lets any 198.51.100.0/24 gateway answer but holds no key for
# the rogue, which keeps a group key it would use with any gateway of 198.51.100.0/24.
# Fresh charons, so no SA remains.
for site in A B C; do ted_stop $site; kill -KILL "${CHARON_PID[$site]}"; wait "${CHARON_PID[$site]}" 2>/dev/null; done
for site in A B C; do charon_start $site || { fail "charon on g$site (restart)"; echo "$passed passed, $failed failed"; exit 1; }; done
PEERS[A]='[{ identity: 198.51.100.2, psk: "gwA and gwB only" }, 198.51.100.0/24]'
PEERS[B]='[{ identity: 198.51.100.1, psk: "gwA and gwB only" }]'
PEERS[C]='[198.51.100.0/24]'
GROUP_PSK[C]="the rogue's key for anyone"
ted_config A "permit ip 198.18.1.0/24 198.18.0.0/15"
ted_config B "permit ip 198.18.2.0/24 198.18.1.0/24"
ted_config C "permit ip 198.18.3.0/24 198.18.1.0/24" "permit ip 198.18.2.0/24 198.18.1.0/24"
bg tr tcpdump -Z root -i br0 -U -w "$TOPO_DIR/psk.pcap" >/dev/null 2>&1
sleep 0.5
for site in A B C; do ted_start $site || { fail "ted on g$site (psk)"; echo "$passed passed, $failed failed"; exit 1; }; done
: > "$TOPO_DIR/gA.children"
check "psk: hostA reaches hostB although the rogue answers first" retry 40 ping_sampling
check "psk: gwA's child SA for hostB is with gwB (198.51.100.2)" child_with A 198.51.100.2 '198\.18\.2\.0/24'
check "psk: gwA never held a child SA with the rogue for hostB's network" no_rogue_child
check "psk: gwA's ted refuted the rogue's later answers (ted status)" refuted
check "psk: gwA's charon found no key for the rogue's identity" \
  grep -q "no shared key found for '198.51.100.1' - '198.51.100.3'" "$TOPO_DIR/gA.charon.log"
sleep 0.3
check "psk transit: the rogue answered gwA's probes (exchange 241 from 198.51.100.3)" \
  test "$(tcpdump -nn -r "$TOPO_DIR/psk.pcap" "src host 198.51.100.3 and dst host 198.51.100.1 and $(exchange $TED_RESPONSE)" 2>/dev/null | wc -l)" -gt 0
check "psk transit: gwA started IKE with the rogue (IKE_SA_INIT to 198.51.100.3)" \
  test "$(tcpdump -nn -r "$TOPO_DIR/psk.pcap" "src host 198.51.100.1 and dst host 198.51.100.3 and udp dst port $ISAKMP_PORT and $(exchange $IKE_SA_INIT)" 2>/dev/null | wc -l)" -gt 0
check "psk transit: no cleartext between hostA and hostB" \
  test "$(tcpdump -nn -r "$TOPO_DIR/psk.pcap" "host 198.18.2.20 and not (udp port $ISAKMP_PORT) and not (icmp and icmp[0] = 3)" 2>/dev/null | wc -l)" -eq 0

if [ $failed -gt 0 ]; then
  for site in A B C; do
    echo "--- g$site SAs"; sas $site
    echo "--- g$site ted log"; tail -20 "$TOPO_DIR/g$site.ted.log"
    echo "--- g$site charon log"; tail -25 "$TOPO_DIR/g$site.charon.log" 2>/dev/null; echo
  done
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
