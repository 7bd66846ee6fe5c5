#!/usr/bin/env bash
# What the shape of an ACL must never let out in clear, read from a capture of the transit
# link: entries whose XFRM selectors coincide (a later deny equal to an earlier permit's
# block), and `icmp` over IPv6 (ICMPv6 on the wire). gwA's own traffic and a host's
# forwarded traffic, with first packets held and with `hold: off`. Only gwA runs ted; no
# discovery can succeed, so every protected packet must stay at gwA.
# Prints "N passed, N failed" last; exit 1 on any failure.
set -u
cd "$(dirname "$0")/.."
TED=${TED:-$PWD/.build/debug/ted}

source scripts/lib/topology.sh
source scripts/lib/checks.sh
source scripts/lib/traffic.sh
require e2e-leaks ip nft tcpdump ping python3
trap topology_cleanup EXIT

echo "e2e-leaks: namespaces $TOPO-* (work files in $TOPO_DIR)"
topology_up
# IPv6 on the path hostA - gwA - transit - gwB/gwC: documentation addresses, no DAD wait.
for n in hA gA gB gC; do
  in_ns $n sh -c 'for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 0 > $f; done'
done
in_ns hA ip addr add 2001:db8:1::10/64 dev eth0 nodad
in_ns hA ip route add default via 2001:db8:1::1
in_ns gA ip addr add 2001:db8:1::1/64 dev inside nodad
in_ns gA sysctl -qw net.ipv6.conf.all.forwarding=1
for site in A B C; do
  n=$(( $(printf '%d' "'$site") - 64 ))
  in_ns g$site ip addr add 2001:db8:100::$n/64 dev outside nodad
done
in_ns gA ip route add 2001:db8:2::/64 via 2001:db8:100::2
in_ns gA ip route add 2001:db8:3::/64 via 2001:db8:100::3

{
  echo "identity: 198.51.100.1"
  echo "listen: 0.0.0.0:1500"
  echo "advertise-port: 1500"
  echo "policy:"
  echo "  - permit tcp 198.18.1.0/24 198.18.2.0/24 range 1000 1005"
  # Its selector for 1004-1005 is the permit's own block for those ports.
  echo "  - deny   tcp 198.18.1.0/24 198.18.2.0/24 range 1004 1005"
  echo "  - permit icmp 2001:db8:1::/64 2001:db8:2::/64"
  echo "  - permit udp 198.18.1.0/24 198.18.2.0/24 eq 7000"
  echo "discovery: { retries: 1, timeout: 200ms, negative-ttl: 1s }"
  echo "dataplane: { traps: true, intercept: false, acquire-expires: 1 }"
  echo "peers: [198.51.100.0/24]"
  echo "ike: { vici: $TOPO_DIR/gA.vici, psk: \"no charon runs here\" }"
  echo "control-socket: $TOPO_DIR/gA.sock"
} > "$TOPO_DIR/gA.yaml"

# connect_from NS SOURCE PORT: one TCP connect() to 198.18.2.20:PORT, SOURCE bound (or "").
connect_from() {
  in_ns "$1" python3 -c "
import socket, sys
s = socket.socket()
s.settimeout(1.5)
if sys.argv[1]: s.bind((sys.argv[1], 0))
try: s.connect(('198.18.2.20', int(sys.argv[2])))
except OSError: pass" "$2" "$3"
}
syns_to() { captured "$1" "tcp[tcpflags] & tcp-syn != 0 and dst host 198.18.2.20 and dst port $2"; }
echo_requests_to() { captured "$1" "icmp6 and ip6[40] = 128 and dst host $2"; }
# big_datagram_from_a HOST: one 3000-byte UDP datagram from hostA to HOST:7000 (hostA's
# stack sends it as fragments: only the first carries the UDP header).
big_datagram_from_a() {
  in_ns hA python3 -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'secret' * 500, (sys.argv[1], 7000))" "$1"
}
# fragments_to CAPTURE HOST: fragments after the first (no UDP header) towards HOST.
fragments_to() { captured "$1" "ip[6:2] & 0x1fff != 0 and dst host $2"; }

ted_start A || { fail "ted on gwA"; exit 1; }

capture_start "hold on"
connect_from gA 198.18.1.1 1004
connect_from gA 198.18.1.1 1001
connect_from gA 198.18.1.1 1006
connect_from hA "" 1004
in_ns gA ping -6 -c 2 -i 0.3 -W 1 -I 2001:db8:1::1 2001:db8:2::20 >/dev/null 2>&1
in_ns gA ping -6 -c 2 -i 0.3 -W 1 -I 2001:db8:1::1 2001:db8:3::30 >/dev/null 2>&1
in_ns hA ping -6 -c 2 -i 0.3 -W 1 2001:db8:2::20 >/dev/null 2>&1
big_datagram_from_a 198.18.2.20
big_datagram_from_a 198.18.3.30
capture_stop
check "the capture sees hostA's fragments to 198.18.3.30, which no entry covers ($(fragments_to "hold on" 198.18.3.30))" \
  test "$(fragments_to "hold on" 198.18.3.30)" -gt 0
check "fragments: no fragment of hostA's datagram to 198.18.2.20 udp/7000 in clear ($(fragments_to "hold on" 198.18.2.20))" \
  test "$(fragments_to "hold on" 198.18.2.20)" -eq 0
check "the capture sees gwA's cleartext: its SYN to port 1006, which no entry covers ($(syns_to "hold on" 1006))" \
  test "$(syns_to "hold on" 1006)" -gt 0
check "the capture sees gwA's cleartext ICMPv6: echo requests to 2001:db8:3::30, which no entry covers" \
  test "$(echo_requests_to "hold on" 2001:db8:3::30)" -gt 0
check "coinciding selectors: SYNs to port 1004 (the permit's), gwA's own and hostA's, never in clear ($(syns_to "hold on" 1004))" \
  test "$(syns_to "hold on" 1004)" -eq 0
check "coinciding selectors: gwA's own SYN to port 1001 never in clear" test "$(syns_to "hold on" 1001)" -eq 0
check "permit icmp over IPv6: echo requests, gwA's own and hostA's, never in clear ($(echo_requests_to "hold on" 2001:db8:2::20))" \
  test "$(echo_requests_to "hold on" 2001:db8:2::20)" -eq 0

ted_stop A
echo "hold: off" >> "$TOPO_DIR/gA.yaml"
ted_start A || { fail "ted on gwA with hold: off"; exit 1; }
capture_start "hold off"
connect_from hA "" 1004
connect_from hA "" 1006
in_ns hA ping -6 -c 2 -i 0.3 -W 1 2001:db8:2::20 >/dev/null 2>&1
big_datagram_from_a 198.18.2.20
capture_stop
check "hold off, fragments: no fragment of hostA's datagram to 198.18.2.20 udp/7000 in clear ($(fragments_to "hold off" 198.18.2.20))" \
  test "$(fragments_to "hold off" 198.18.2.20)" -eq 0
check "hold off: the capture sees hostA's cleartext SYN to port 1006 ($(syns_to "hold off" 1006))" \
  test "$(syns_to "hold off" 1006)" -gt 0
check "hold off, coinciding selectors: hostA's SYN to port 1004 never in clear ($(syns_to "hold off" 1004))" \
  test "$(syns_to "hold off" 1004)" -eq 0
check "hold off, permit icmp over IPv6: hostA's echo requests never in clear ($(echo_requests_to "hold off" 2001:db8:2::20))" \
  test "$(echo_requests_to "hold off" 2001:db8:2::20)" -eq 0
check "gwA's ted exits 0 on SIGTERM" ted_stop A

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
