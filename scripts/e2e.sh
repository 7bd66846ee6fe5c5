#!/usr/bin/env bash
# End-to-end: real namespaces, a real charon per gateway (kernel-libipsec), ted on every
# gateway, no peer configured anywhere (only the prefix peers come from, which owns the
# group key). Prints "N passed, N failed" last; exit 1 on any failure.
# No pipefail: checks pipe into `grep -q`, which may close the pipe early (SIGPIPE upstream).
set -u
cd "$(dirname "$0")/.."
TED=${TED:-$PWD/.build/debug/ted}

source scripts/lib/topology.sh
source scripts/lib/checks.sh
source scripts/lib/traffic.sh
require e2e ip nft tcpdump nc ping /usr/lib/ipsec/charon swanctl
trap topology_cleanup EXIT

PSK="ted end-to-end pre-shared key"
# ted_config SITE POLICY-LINES...: a gateway's ted configuration.
ted_config() {
  TED_DISCOVERY="retries: 3, timeout: 200ms, negative-ttl: 1s" TED_ACQUIRE_EXPIRES=1 \
    TED_PEERS="[198.51.100.0/24]   # who may answer, and own the group key (any of them may claim anything)" \
    TED_IKE="  psk: \"$PSK\"" TED_PROPOSAL=aes128-sha256-modp2048 ted_yaml "$@" > "$TOPO_DIR/g$1.yaml"
}


no_established_sa() { ! sas A | grep -q ESTABLISHED; }
no_ted_objects() {
  local site=$1
  ! in_ns g$site ip xfrm policy | grep -q "priority 21275[0-9]\{5\}" && ! in_ns g$site nft list tables 2>/dev/null | grep -q "inet ted" \
    && ! in_ns g$site ip rule | grep -qE "fwmark 0x7ed|dport 500 lookup main"
}
# cleartext_count HOST-ADDRESS: packets of that host on the transit link other than TED probes
# (udp/500) and the ICMP unreachables a host without a responder in front sends back to them.
cleartext_count() {
  tcpdump -nn -r "$TOPO_DIR/transit.pcap" "host $1 and not (udp port $ISAKMP_PORT) and not (icmp and icmp[0] = 3)" 2>/dev/null | wc -l
}

control() { in_ns g$1 python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b'\\n')
print(b''.join(iter(lambda: s.recv(65536), b'')).decode())" "$TOPO_DIR/g$1.sock" "$2"; }
metric_of() { control "$1" metrics | awk -v name="$2" '$1 == name { print $2 }'; }

echo "e2e: building the topology in namespaces $TOPO-* (work files in $TOPO_DIR)"
topology_up
for site in A B C; do charon_start $site || { fail "charon on g$site"; exit 1; }; done
# The forged flood of 3a (issue 21) and the challenges it draws are left out of captures,
# so that tcpdump keeps up with everything else.
FLOOD_MAC=02:7e:d0:00:00:21
NOT_FLOOD="not ether src $FLOOD_MAC and not (udp src port 1500 and $(exchange $TED_CHALLENGE))"
bg tr tcpdump -Z root -i br0 -U -w "$TOPO_DIR/transit.pcap" "$NOT_FLOOD" >/dev/null 2>&1
bg hB nc -lk 443
bg hB nc -lk 80
bg hC nc -lk 22
sleep 0.5

ted_config A "deny ip 198.18.1.0/24 198.18.3.128/25" "permit ip 198.18.1.0/24 198.18.0.0/15"
# gwB's policy, written again after 4d changes it.
gwB_config() {
  ted_config B "permit tcp 198.18.2.0/24 eq 443 198.18.1.0/24" "permit icmp 198.18.2.0/24 198.18.1.0/24" \
    "permit udp 198.18.2.0/24 eq 5353 198.18.1.0/24" "permit udp 198.18.2.0 0.0.0.135 198.18.1.0/24" \
    "permit icmp 198.18.2.0/24 198.18.3.0/24"
}
gwB_config
ted_config C "deny ip 198.18.3.0/24 198.18.1.128/25" "permit ip 198.18.3.0/24 198.18.0.0/15"
for site in A B C; do ted_start $site || { fail "ted on g$site"; exit 1; }; done

# 1. Fail closed: gwB's ted is down, so hostA's traffic to hostB never finds a tunnel and never leaves in clear.
check "gwB's ted exits 0 on SIGTERM" ted_stop B
check "fail closed: no TCP to hostB while gwB's ted is stopped" no_tcp_to 198.18.2.20 443
check "fail closed: no SA with gwB while its ted is stopped" test "$(sas A | grep -c "198.51.100.2\[")" -eq 0
failure_reported() { "$TED" status --socket "$TOPO_DIR/gA.sock" --json | grep -q '"timeout":[1-9]'; }
check "fail closed: gwA's ted reports the failed discovery" retry 20 failure_reported
ted_start B

# 2. hostA reaches hostC: a tunnel that did not exist, no peer configured on gwA.
check "no SA on gwA before any traffic" no_established_sa
# First packets held: a TCP connect() to a host behind a gateway nobody has discovered yet
# completes in one go (its SYN waits at gwA while discovery and IKE run, then goes through
# the new tunnel), well before Linux's 1 s SYN retransmission.
first_connect "hold on" 198.18.3.30 22
check "hold on: connect() to hostC through a new tunnel in under 1 s ($(connect_ms "hold on") ms)" \
  test "$(connect_ms "hold on")" != failed -a "$(connect_ms "hold on" | sed 's/failed/9999/')" -lt 1000
check "hold on: one SYN on hostA's link, no retransmission ($(hostA_syns "hold on") seen)" test "$(hostA_syns "hold on")" -eq 1
check "hold on: the transit capture saw the new tunnel (ESP-in-UDP)" test "$(captured "hold on" 'udp port 4500')" -gt 0
check "hold on: no SYN in clear on the transit" test "$(captured "hold on" 'tcp and host 198.18.3.30')" -eq 0
held_total() { metric_of "$1" ted_held_packets_total | cut -d. -f1; }
released_total() { metric_of "$1" ted_held_released_total | cut -d. -f1; }
check "hold on: gwA held and released the SYN (held $(held_total A), released $(released_total A))" \
  test "$(held_total A)" -ge 1 -a "$(released_total A)" -ge 1
check "hostA pings hostC over a discovered tunnel" retry 20 ping_to 198.18.3.30
check "hostA opens a TCP connection to hostC" retry 10 tcp_to 198.18.3.30 22
check "gwA has an IKE SA with gwC (198.51.100.3)" ike_sa_with A 198.51.100.3
# gwA's policy denies 198.18.3.128/25 above its permit, gwC's denies 198.18.1.128/25 above
# its own: the child leaves both out (gwA cuts its proposal; gwC answers with the part of
# its permit that is its own), and traffic there follows the deny (in clear, as asked).
check "the child SA gwA-gwC leaves both denied parts out: 198.18.1.0/25 === 198.18.3.0/25" \
  child_ts A 198.51.100.3 '198.18.1.0/25' '198.18.3.0/25'
in_ns hC ip addr add 198.18.3.200/24 dev eth0
in_ns hA ping -c 3 -i 0.2 -W 1 198.18.3.200 >/dev/null 2>&1
# Whatever a peer proposes, gwC's children hold only what its policy gives the permit: a
# plain charon connection on gwA (not ted) proposing all of 198.18.1.0/24 === 198.18.3.0/24
# is narrowed by gwC to the one child config it overlaps, without 198.18.1.128/25.
# plain_child NAME FROM-SITE TO-SITE LOCAL-TS REMOTE-TS: a plain charon connection (not ted's)
# on gwFROM to gwTO with one child, loaded and initiated; its output in NAME.initiate.
plain_child() {
  local from=$(( $(printf '%d' "'$2") - 64 )) to=$(( $(printf '%d' "'$3") - 64 ))
  cat > "$TOPO_DIR/$1.swanctl.conf" <<CONF
connections {
  $1 {
    version = 2
    local_addrs = 198.51.100.$from
    remote_addrs = 198.51.100.$to
    proposals = aes128-sha256-modp2048
    local { auth = psk
      id = 198.51.100.$from }
    remote { auth = psk
      id = 198.51.100.$to }
    children { $1 { local_ts = $4
        remote_ts = $5
        esp_proposals = aes128-sha256 } }
  }
}
CONF
  swanctl --load-conns --file "$TOPO_DIR/$1.swanctl.conf" --uri "unix://$TOPO_DIR/g$2.vici" > "$TOPO_DIR/$1.load" 2>&1
  swanctl --initiate --child "$1" --timeout 5 --uri "unix://$TOPO_DIR/g$2.vici" > "$TOPO_DIR/$1.initiate" 2>&1
}
plain_child wide A C 198.18.1.0/24 198.18.3.0/24
wide_ts() { sas A | awk '/^  wide:/ { c = 1 } c && $1 == "local" { l = $2 } c && $1 == "remote" { print l " === " $2; exit }'; }
# charon on gwC narrows with the child config it picks: its responder share, or a tunnel
# gwC's own ted made towards gwA (then 198.18.3.0/25, gwA's deny cut); either leaves
# 198.18.1.128/25 out.
check "a wide proposal to gwC is narrowed within its policy: $(wide_ts)" \
  bash -c "[ '$(wide_ts)' = '198.18.1.0/25 === 198.18.3.0/24' ] || [ '$(wide_ts)' = '198.18.1.0/25 === 198.18.3.0/25' ]"
swanctl --terminate --ike wide --uri "unix://$TOPO_DIR/gA.vici" >/dev/null 2>&1
swanctl --unload-conn --name wide --uri "unix://$TOPO_DIR/gA.vici" >/dev/null 2>&1

# hold: off keeps the patent's drop (block 208): the first SYN is lost and the connection
# waits for its retransmission; still nothing in clear.
terminate_to() { local name; name=$(sas A | grep -o "^ted-${1//./-}-[0-9a-f]*" | head -1)
  [ -z "$name" ] || swanctl --terminate --ike "$name" --uri "unix://$TOPO_DIR/gA.vici" >/dev/null 2>&1; }
no_sa_with_c() { ! sas A | grep -q "198.51.100.3\["; }
ted_stop A
echo "hold: off" >> "$TOPO_DIR/gA.yaml"
ted_start A
terminate_to 198.51.100.3
check "hold off: gwA's tunnel to gwC is gone" retry 20 no_sa_with_c
sleep 1.2   # the larval state of the last ACQUIRE (acquire-expires 1) is gone too
first_connect "hold off" 198.18.3.30 22
check "hold off: connect() to hostC completes after the SYN retransmission ($(connect_ms "hold off") ms)" \
  test "$(connect_ms "hold off" | sed 's/failed/0/')" -ge 1000
check "hold off: two SYNs on hostA's link, the first one lost ($(hostA_syns "hold off") seen)" test "$(hostA_syns "hold off")" -eq 2
check "hold off: no SYN in clear on the transit" test "$(captured "hold off" 'tcp and host 198.18.3.30')" -eq 0
check "hold off: the hold table is gone" bash -c "! ip netns exec $(ns gA) nft list tables | grep -q ted-hold"
ted_stop A
sed -i '/^hold: off$/d' "$TOPO_DIR/gA.yaml"
ted_start A

# 3a. Issue 21: a host on the transit at gwB floods it with forged probes (valid, naming
# gwA's identity and TED port, sources forged in hostA's site, fresh cookies) along the
# probes' own path (to hostB's network, intercepted by gwB as gwA's probes are) at 3,000/s:
# 3x gwB's per-source and global buckets (1000/s), 30x its per-target one (100/s), while
# gwA discovers a new flow to hostB: gwB challenges what its buckets refuse, and spends
# the last half of gwA's target bucket on challenges to gwA; gwA learns the cookie from
# them (it names gwA's identity), its probes echo it and are answered from its proven
# bucket, and the flow is tunnelled within 2 s, nothing of it in clear. Without challenges
# gwA's probes go unanswered and the connect() fails (checked once with a build that never
# challenges: RELIABILITY.md). Faster, a debug build of gwB loses part of the flood in the
# intercepting socket's buffer, gwA's probes with it, which no cookie helps.
transit_host fl 198.51.100.9 "$FLOOD_MAC"; flood_rate=3000
challenged_before=$(metric_of B ted_responder_challenges_total); cookies_before=$(metric_of B ted_responder_cookies_accepted_total)
in_ns fl ip route add 198.18.0.0/15 via 198.51.100.2
bg fl python3 scripts/lib/soak.py flood path 198.51.100.1:1500 198.18.1.0/24 6 $flood_rate > "$TOPO_DIR/flood.json"
flood_pid=$!
sleep 1   # gwB's buckets spent
first_connect flood 198.18.2.20 443 "$NOT_FLOOD"
flood_on=$(kill -0 "$flood_pid" 2>/dev/null && echo yes || echo no)
wait "$flood_pid"
grep "198.18.2.20:443" "$TOPO_DIR/gA.ted.log" | tail -1
challenged=$(( $(metric_of B ted_responder_challenges_total | cut -d. -f1) - ${challenged_before:-0} ))
cookies=$(( $(metric_of B ted_responder_cookies_accepted_total | cut -d. -f1) - ${cookies_before:-0} ))
flood_figure() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$TOPO_DIR/flood.json" "$1"; }
check "flood: $(flood_figure flood_sent) forged probes at $(flood_figure flood_rate)/s, still on after the connect ($flood_on)" \
  test "$(flood_figure flood_rate)" -ge $(( $flood_rate * 9 / 10 )) -a "$flood_on" = yes
check "flood: connect() to hostB:443 through a new tunnel within 2 s ($(connect_ms flood) ms)" \
  test "$(connect_ms flood | sed 's/failed/9999/')" -lt 2000
check "flood: gwB challenged the flood ($challenged) and took gwA's cookie ($cookies)" \
  test "$challenged" -gt 0 -a "$cookies" -gt 0
check "flood: the transit capture saw the new tunnel to gwB (ESP-in-UDP)" test "$(captured flood 'udp port 4500 and host 198.51.100.2')" -gt 0
check "flood: no TCP to hostB in clear on the transit" test "$(captured flood 'tcp and host 198.18.2.20')" -eq 0

# 3. Narrowing: gwB protects only tcp/443 and ICMP towards hostB; each tunnel is exactly that.
check "hostA opens a TCP connection to hostB:443" retry 20 tcp_to 198.18.2.20 443
check "hostA pings hostB over a second discovered tunnel to the same peer" retry 20 ping_to 198.18.2.20
check "gwA's child SA to gwB is exactly 198.18.1.0/24[tcp] === 198.18.2.0/24[tcp/443]" \
  child_ts A 198.51.100.2 '198.18.1.0/24\[tcp\]' '198.18.2.0/24\[tcp/https\]'
no_tcp80() { no_tcp_to 198.18.2.20 80; }
check "gwA's other child SA to gwB is exactly 198.18.1.0/24[icmp] === 198.18.2.0/24[icmp]" \
  child_ts A 198.51.100.2 '198.18.1.0/24\[icmp\]' '198.18.2.0/24\[icmp\]'
check "other traffic to hostB (tcp/80) gets no tunnel" no_tcp80
no_http_child() { ! sas A | grep -qE "\[tcp/(80|http)\]"; }
check "other traffic to hostB (tcp/80): no child SA carries it" no_http_child

# A rekey gives the child SA a new unique id: ted follows it (child-rekey), so the kernel
# state of the tunnel (hold set element, ipsec0 bypass) stays while it lives and goes with it.
# child_of SITE REMOTE-TS: the name of gwSITE's child SA whose remote selector is that.
child_of() { sas "$1" | awk -v ts="$2" '$3 == "reqid" { child = $1 } $1 == "remote" && $2 == ts { sub(":", "", child); print child; exit }'; }
child_id() { sas A | awk -v name="$1:" '$1 == name && $3 == "reqid" { id = $2 } END { sub(",", "", id); print id }'; }
hold_element() { in_ns gA nft list set inet ted-hold tunnelled4 | grep -q "198.18.1.0/24 . 198.18.2.0/24 . tcp . 0-65535 . 443"; }
https_bypass() { in_ns gA ip xfrm policy | grep -q "proto tcp dport 443 dev ipsec0"; }
kept() { hold_element && https_bypass; }
https_child=$(child_of A '198.18.2.0/24[tcp/https]')
before_rekey=$(child_id "$https_child")
check "rekey: the tunnel to hostB:443 ($https_child) is in the hold set and bypassed on ipsec0" kept
swanctl --rekey --child "$https_child" --uri "unix://$TOPO_DIR/gA.vici" >/dev/null 2>&1
rekeyed() { [ -n "$(child_id "$https_child")" ] && [ "$(child_id "$https_child")" != "$before_rekey" ]; }
retry 20 rekeyed
check "rekey: the child SA to hostB:443 has a new unique id ($before_rekey, then $(child_id "$https_child"))" rekeyed
sleep 0.5
check "rekey: hostA still reaches hostB:443" retry 10 tcp_to 198.18.2.20 443
check "rekey: the rekeyed tunnel stays in the hold set and bypassed" kept
swanctl --terminate --child "$https_child" --uri "unix://$TOPO_DIR/gA.vici" >/dev/null 2>&1
gone() { ! hold_element && ! https_bypass; }
check "rekey: the rekeyed child SA going down takes its hold set element and bypass with it" retry 20 gone

# A non-contiguous mask end to end: gwB protects udp for 198.18.2.0 0.0.0.135, that is
# 198.18.2.0/29 and 198.18.2.128/29 and nothing between. Its responder child lists both
# prefixes; gwA proposes the largest prefix of the intersection holding each packet and,
# for a host in the other prefix of the same intersection, hands off again. (Under
# kernel-libipsec a child needs a gateway address in its local selector for its route, so
# gwB also holds 198.18.2.129.) The entry above it, udp 5353 from the same addresses, takes
# that port: gwB serves the rest (ports 0-5352 and 5354-65535, a child config each), and
# answers with the part holding the packet, so gwA's children leave 5353 out.
in_ns gB ip addr add 198.18.2.129/24 dev inside
for address in 198.18.2.2 198.18.2.130 198.18.2.9; do in_ns hB ip addr add $address/24 dev eth0; done
bg hB /usr/bin/python3 -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 7000))
with open(sys.argv[1], 'a') as f:
    while True:
        data, _ = s.recvfrom(64); f.write(data.decode(errors='replace')); f.flush()" "$TOPO_DIR/hostB.7000"
sleep 0.3
capture_start wildcard
udp_arrived() { in_ns hA bash -c "echo to-$1 > /dev/udp/$1/7000"; sleep 0.2; grep -q "to-$1" "$TOPO_DIR/hostB.7000"; }
# A first child may be refused TS_UNACCEPTABLE when charon puts it on an IKE SA that lives
# under a connection of gwB whose children do not fit; ted then retries after
# initiate-timeout (10 s), so the check waits past one retry.
check "wildcard mask: hostA reaches 198.18.2.2 (inside the entry) over a tunnel" retry 50 udp_arrived 198.18.2.2
check "wildcard mask: hostA reaches 198.18.2.130 (inside the entry) over a tunnel" retry 50 udp_arrived 198.18.2.130
for i in 1 2 3 4 5; do in_ns hA bash -c "echo to-198.18.2.9 > /dev/udp/198.18.2.9/7000"; sleep 0.3; done
capture_stop
check "wildcard mask: nothing reaches 198.18.2.9 (outside the entry)" bash -c "! grep -q to-198.18.2.9 '$TOPO_DIR/hostB.7000'"
check "wildcard mask: gwA's child for 198.18.2.2 is exactly 198.18.1.0/24[udp] === 198.18.2.0/29[udp/5354-65535]" \
  child_ts A 198.51.100.2 '198.18.1.0/24\[udp\]' '198.18.2.0/29\[udp/5354-65535\]'
check "wildcard mask: gwA's child for 198.18.2.130 is exactly 198.18.1.0/24[udp] === 198.18.2.128/29[udp/5354-65535]" \
  child_ts A 198.51.100.2 '198.18.1.0/24\[udp\]' '198.18.2.128/29\[udp/5354-65535\]'
check "wildcard mask: no udp/7000 in clear on the transit" test "$(captured wildcard 'udp port 7000')" -eq 0
check "wildcard mask: the capture saw the tunnels (ESP-in-UDP)" test "$(captured wildcard 'udp port 4500')" -gt 0

# A probe addressed to a gateway itself (where charon holds :500) is answered by ted.
probe_to_gateway() {
  ip netns exec "$(ns gA)" "$TED" probe --config "$TOPO_DIR/gA.yaml" --packet "tcp 198.18.1.10:40000 198.18.2.20:443" \
    --to 198.51.100.2:500 --json | grep -q '"discovered":true,"peer":{"address":"198.51.100.2","port":1500}'
}
check "ted probe to gwB's own address is intercepted beside charon and answered" probe_to_gateway
"$TED" status --socket "$TOPO_DIR/gA.sock" > "$TOPO_DIR/gA.status.txt"

# 4. What crossed the transit link.
sleep 0.5
check "transit: the capture saw ESP-in-UDP (port 4500), so it saw the tunnels" test "$(tcpdump -nn -r "$TOPO_DIR/transit.pcap" udp port 4500 2>/dev/null | wc -l)" -gt 0
check "transit: no cleartext from hostA to hostC (only ESP-in-UDP)" test "$(cleartext_count 198.18.3.30)" -eq 0
check "transit: traffic to the denied part (198.18.3.200) left gwA in clear, as its policy says" \
  test "$(tcpdump -nn -r "$TOPO_DIR/transit.pcap" 'icmp and dst host 198.18.3.200' 2>/dev/null | wc -l)" -gt 0
check "transit: no cleartext from hostA to hostB" test "$(cleartext_count 198.18.2.20)" -eq 0
check "transit: TED probes (exchange 240) were seen" test "$(tcpdump -nn -r "$TOPO_DIR/transit.pcap" "$PROBES" 2>/dev/null | wc -l)" -gt 0

# 4b. Probes pass gateways that do not answer them: hostA - gwA - gwC - gwB - hostB, where
# gwC's ted intercepts probes to hostB (its policy has 198.18.2.0/24 as a local half, for
# tcp/22 towards hostC's network) but does not cover hostA to hostB udp/5353.
ted_stop C
ted_config C "permit ip 198.18.3.0/24 198.18.0.0/15" "permit tcp 198.18.2.0/24 eq 22 198.18.3.0/24"
ted_start C
in_ns gC sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.outside.send_redirects=0
in_ns gA ip route replace 198.18.2.0/24 via 198.51.100.3
capture_start passthrough
bg hB sh -c "exec nc -lku 5353 > $TOPO_DIR/hostB.5353"
sleep 0.3
mdns_arrived() { in_ns hA bash -c 'echo hello-through-gwC > /dev/udp/198.18.2.20/5353'; sleep 0.3; grep -q hello-through-gwC "$TOPO_DIR/hostB.5353"; }
check "pass-through: hostA reaches hostB udp/5353 through a tunnel discovered across gwC" retry 30 mdns_arrived
capture_stop
check "pass-through: gwC passed probes on (ted_probes_passed_total $(metric_of C ted_probes_passed_total))" \
  test "$(metric_of C ted_probes_passed_total | cut -d. -f1)" -gt 0
check "pass-through: gwA's child SA to gwB is exactly 198.18.1.0/24[udp] === 198.18.2.0/24[udp/5353]" \
  child_ts A 198.51.100.2 '198.18.1.0/24\[udp\]' '198.18.2.0/24\[udp/(5353|mdns)\]'
check "pass-through: the capture saw the probes (exchange 240) crossing to gwC" \
  test "$(captured passthrough "$PROBES and ether dst $(in_ns gC cat /sys/class/net/outside/address)")" -gt 0
check "pass-through: no udp/5353 in clear between the gateways" test "$(captured passthrough 'udp port 5353')" -eq 0
# A probe that is itself traffic gwC protects (UDP/500 from hostC's network, which gwC's
# first entry protects towards 198.18.0.0/15) is not passed on: gwC's trap would have
# caught it, so it must not leave in clear past the trap (issue 28).
not_passed_before=$(metric_of C ted_probes_not_passed_total | cut -d. -f1)
capture_start protectedprobe
in_ns hC python3 scripts/lib/soak.py flood path 198.51.100.9 198.18.3.0/24 1 50 > /dev/null
capture_stop
check "pass-through: no probe from hostC's protected network left gwC in clear" \
  test "$(captured protectedprobe "$PROBES and src net 198.18.3.0/24")" -eq 0
check "pass-through: gwC refused to pass those 50 probes on (ted_probes_not_passed_total)" \
  test $(( $(metric_of C ted_probes_not_passed_total | cut -d. -f1) - ${not_passed_before:-0} )) -ge 50
in_ns gA ip route replace 198.18.2.0/24 via 198.51.100.2

# 4c. Peers going down alone: gwB's responder children for gwA and for gwC share one
# connection (ted-responder); gwA's tunnels to gwB going down must leave gwC's flowing
# (kernel-libipsec bypasses and hold-set elements are kept per child SA, counted per selector).
ping_b_from_c() { in_ns hC ping -c 1 -W 1 198.18.2.20; }
check "hostC pings hostB over a tunnel gwC-gwB" retry 20 ping_b_from_c
held_before=$(metric_of B ted_held_packets_total | cut -d. -f1)
in_ns hC ping -c 40 -i 0.1 -W 1 198.18.2.20 > "$TOPO_DIR/other-peer.ping" 2>&1 &
ping_pid=$!
sleep 1
for name in $(sas A | grep -o "^ted-198-51-100-2-[0-9a-f]*" | sort -u); do
  swanctl --terminate --ike "$name" --uri "unix://$TOPO_DIR/gA.vici" >/dev/null 2>&1
done
wait "$ping_pid"
no_sa_a_b() { ! sas A | grep -q "198.51.100.2\["; }
check "gwA's tunnels to gwB are down" retry 10 no_sa_a_b
check "gwA's tunnels to gwB going down left gwC's flowing ($(received "$TOPO_DIR/other-peer.ping") of 40 replies)" \
  test "$(received "$TOPO_DIR/other-peer.ping")" -ge 38
held_after=$(metric_of B ted_held_packets_total | cut -d. -f1)
# Had gwB taken gwC's child for gone, hostB's replies would have been held and rediscovered.
check "gwB kept gwC's child SA as up: none of hostB's replies to hostC was held (${held_before:-0}, then ${held_after:-0})" \
  test "${held_after:-0}" -eq "${held_before:-0}"
check "hostA reaches hostB again (a new discovery)" retry 20 ping_to 198.18.2.20

# 4d. A child this gateway cannot install: under charon 5.9.8's kernel-libipsec a child
# whose local selector holds no address of the gateway has no route into ipsec0 and is
# refused (fixed upstream in 5.9.12; kernel ESP has no such need, scripts/e2e-kernel.sh).
# gwB gives 198.18.1.0/26 to an entry above its udp/7101 one, so a flow from 198.18.1.100
# gets the child 198.18.1.64/26[udp] === 198.18.2.0/24[udp/7101] at gwA, which holds no
# address there. ted says why (charon's line, naming the selectors), does not refute gwB,
# and nothing of the flow leaves in clear.
ted_stop B
ted_config B "permit ip 198.18.2.0/24 198.18.1.0/26" "permit udp 198.18.2.0/24 eq 7101 198.18.1.0/24"
ted_start B
in_ns hA ip addr add 198.18.1.100/24 dev eth0
capture_start uninstallable
in_ns hA python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('198.18.1.100', 0))
for _ in range(6):
    s.sendto(b'narrowed', ('198.18.2.20', 7101)); time.sleep(0.5)" 
capture_stop
install_failure_shown() { "$TED" status --socket "$TOPO_DIR/gA.sock" \
  | grep -qF 'install failed: error installing route with policy 198.18.1.64/26[udp] === 198.18.2.0/24[udp/7101]'; }
check "a child gwA cannot install (no address of gwA in 198.18.1.64/26): ted status shows charon's reason with the selectors" \
  retry 20 install_failure_shown
check "gwA does not refute gwB for its own installation failure" \
  bash -c "! '$TED' status --socket '$TOPO_DIR/gA.sock' --json | grep -q '\"refuted\":\[{'"
check "the uninstallable child's flow: no udp/7101 in clear on the transit" test "$(captured uninstallable 'udp port 7101')" -eq 0
in_ns hA ip addr del 198.18.1.100/24 dev eth0
ted_stop B
gwB_config
ted_start B

# 5. ted status shows the tunnels it made.
status_lists_tunnel() { "$TED" status --socket "$TOPO_DIR/gA.sock" | grep -q "ted-198-51-100-3-.* up peer 198.51.100.3"; }
check "ted status on gwA lists its tunnels" status_lists_tunnel

# 6. Fail closed through every stop, crash and outage (each check read from a capture of
# the transit link or from charon). The new flow is UDP to hostB:9999, which gwA's policy
# protects and gwB's does not cover: it can never get a tunnel, so any packet of it on the
# transit link is a leak. hostA pings hostC over its tunnel meanwhile: that proves the
# capture sees traffic, and that tunnels keep flowing while ted is away.
new_flow() { in_ns hA bash -c 'for i in $(seq 1 50); do echo x > /dev/udp/198.18.2.20/9999; sleep 0.1; done' 2>/dev/null; }
# fail_closed NAME: 5 s of the new flow and of pings to hostC, captured.
fail_closed() {
  capture_start "$1"
  in_ns hA ping -c 50 -i 0.1 -W 1 198.18.3.30 > "$TOPO_DIR/$1.ping" 2>&1 &
  local ping_pid=$!
  new_flow
  wait "$ping_pid"
  capture_stop
  check "$1: the capture saw tunnel traffic (ESP-in-UDP)" test "$(captured "$1" 'udp port 4500')" -gt 0
  check "$1: 0 packets of a new protected flow in clear" test "$(captured "$1" 'udp and dst host 198.18.2.20 and dst port 9999')" -eq 0
}

check "gwA's ted exits 0 on SIGTERM" ted_stop A
fail_closed "after SIGTERM of gwA's ted"
check "after SIGTERM: the tunnel to hostC kept carrying traffic ($(received "$TOPO_DIR/after SIGTERM of gwA's ted.ping") of 50 replies)" \
  test "$(received "$TOPO_DIR/after SIGTERM of gwA's ted.ping")" -ge 45
ted_start A
kill -KILL "${TED_PID[A]}"; wait "${TED_PID[A]}" 2>/dev/null; TED_PID[A]=""
fail_closed "after SIGKILL of gwA's ted"
ted_start A

# A restart under live tunnels: ping hostB every 100 ms through a SIGKILL and a start.
ike_sas_to_b() { sas A | grep -c "^ted-198-51-100-2-"; }
before=$(ike_sas_to_b)
in_ns hA ping -c 60 -i 0.1 -W 1 198.18.2.20 > "$TOPO_DIR/restart.ping" 2>&1 &
ping_pid=$!
sleep 1
kill -KILL "${TED_PID[A]}"; wait "${TED_PID[A]}" 2>/dev/null; TED_PID[A]=""
ted_start A
wait "$ping_pid"
check "SIGKILL and restart of gwA's ted under a live tunnel: at most 2 of 60 pings lost ($(received "$TOPO_DIR/restart.ping") received)" \
  test "$(received "$TOPO_DIR/restart.ping")" -ge 58
sleep 1
check "the restarted ted adopted the tunnels: no duplicate connection or SA to gwB ($before before, $(ike_sas_to_b) after)" \
  test "$(ike_sas_to_b)" -eq "$before"
adopted() { "$TED" status --socket "$TOPO_DIR/gA.sock" | grep -q "ted-198-51-100-2-.* up peer 198.51.100.2"; }
check "the restarted ted lists the adopted tunnels as up" retry 10 adopted

# charon comes and goes: ted keeps its traps, restarts without charon, and rebuilds by itself.
kill -KILL "${CHARON_PID[A]}"; wait "${CHARON_PID[A]}" 2>/dev/null
none_up() { local status; status=$("$TED" status --socket "$TOPO_DIR/gA.sock") && ! grep -q " up peer " <<< "$status"; }
check "charon gone: within 15 s ted status shows no tunnel as up" retry 50 none_up
check "gwA's ted exits 0 on SIGTERM while charon is down" ted_stop A
check "ted starts while charon is down" ted_start A
capture_start "charon down"; new_flow; capture_stop
check "charon down: the capture saw gwA's probes for the flow (exchange 240)" \
  test "$(captured "charon down" "$PROBES")" -gt 0
check "charon down: 0 packets of a new protected flow in clear" \
  test "$(captured "charon down" 'udp and dst host 198.18.2.20 and dst port 9999')" -eq 0
charon_start A
check "charon back: within 15 s hostA reaches hostB again, ted untouched" retry 50 ping_to 198.18.2.20
check "charon back: ted status lists the new tunnel as up" retry 10 adopted

# Inbound cleartext: packets with hostA's source injected on the transit link towards hostB
# (to gwB's MAC): TCP to hostB:443, what gwB's policy protects. gwB's guard counts them (so
# they reached gwB) and hostB never sees them.
gwb_mac=$(in_ns gB cat /sys/class/net/outside/address)
bg hB tcpdump -Z root -i eth0 -U -w "$TOPO_DIR/hostB.pcap" src host 198.18.1.10 and src port 7777 >/dev/null 2>&1; hb_capture=$!
sleep 0.5
in_ns tr /usr/bin/python3 -c "
from scapy.all import Ether, IP, TCP, sendp
forged = IP(src='198.18.1.10', dst='198.18.2.20')
sendp([Ether(dst='$gwb_mac') / forged / TCP(sport=7777, dport=443, flags='S')] * 5, iface='br0', verbose=False)"
sleep 0.5; kill "$hb_capture" 2>/dev/null; wait "$hb_capture" 2>/dev/null
guard_drops() { in_ns gB nft list table inet ted-guard | awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }'; }
at_hostb() { tcpdump -nn -r "$TOPO_DIR/hostB.pcap" "$1" 2>/dev/null | wc -l; }
check "injected cleartext that gwB protects (tcp/443) never reaches hostB" test "$(at_hostb tcp)" -eq 0
check "gwB's inbound guard counted the drops ($(guard_drops) packets)" test "$(guard_drops)" -ge 5

# 6b. What a peer may start over IKE: with per-peer keys, gwB protects 198.18.2.0/24 and
# gwC (here a branch) 198.18.3.0/24. gwC proposes gwB's prefix to gwA from a plain charon
# connection: gwA's responder children for gwC hold only 198.18.3.0/24, so nothing of
# gwB's is ever installed towards gwC; gwC's own prefix is (narrowed by gwA's deny).
ted_stop A
python3 - "$TOPO_DIR/gA.yaml" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read().splitlines()
text = [line for line in text if not line.startswith("peers:")] + [
    "peers:",
    "  - { identity: 198.51.100.2, protects: [198.18.2.0/24], psk: \"gwB's own key, not the group's\" }",
    "  - { identity: 198.51.100.3, protects: [198.18.3.0/24] }",
]
open(path, "w").write("\n".join(text) + "\n")
PY
ted_start A
child_towards_c_with() { sas A | awk '/198.51.100.3\[/ { c = 1 } /^[^ ]/ && !/198.51.100.3\[/ { c = 0 } c && $1 == "remote" { print $2 }' | grep -qx "$1"; }
plain_child steal C A 198.18.2.0/24 198.18.1.0/24
no_child_towards_c_with() { ! child_towards_c_with "$1"; }
check "a branch proposing gwB's prefix to gwA gets no child: gwA holds none towards gwC for 198.18.2.0/24" \
  no_child_towards_c_with 198.18.2.0/24
# Read from gwC's side: gwA's IKE_AUTH answer itself (gwC could not install such a child
# under libipsec anyway, without an address in 198.18.2.0/24).
check "gwA refuses the branch's proposal for gwB's prefix: its IKE_AUTH answer is TS_UNACCEPTABLE, no selectors" \
  bash -c "grep -q 'received TS_UNACCEPTABLE notify' '$TOPO_DIR/steal.initiate' && ! grep -q 'IKE_AUTH response .*TSi TSr' '$TOPO_DIR/steal.initiate'"
plain_child own C A 198.18.3.0/24 198.18.1.0/24
check "the branch's own prefix is accepted, less gwA's deny: gwA's child towards gwC is 198.18.3.0/25" retry 10 child_towards_c_with 198.18.3.0/25
for conn in steal own; do
  swanctl --terminate --ike "$conn" --uri "unix://$TOPO_DIR/gC.vici" >/dev/null 2>&1
  swanctl --unload-conn --name "$conn" --uri "unix://$TOPO_DIR/gC.vici" >/dev/null 2>&1
done

# 6c. Day 2 (issue 29): what an operator and other programs do to a running gateway.
repairs_of() { metric_of "$1" "ted_repairs_total{layer=\"$2\"}" | cut -d. -f1; }
ted_conns() { swanctl --list-conns --uri "unix://$TOPO_DIR/g$1.vici" 2>/dev/null | grep -c "^ted-"; }
# strongSwan's own configuration reloaded (what `systemctl reload strongswan` runs): a
# swanctl.conf naming none of ted's connections unloads them all.
printf 'connections {\n}\n' > "$TOPO_DIR/operator.swanctl.conf"
conns_before=$(ted_conns A)
swanctl --load-conns --file "$TOPO_DIR/operator.swanctl.conf" --uri "unix://$TOPO_DIR/gA.vici" > "$TOPO_DIR/operator.load" 2>&1
check "strongSwan's reload unloaded ted's $conns_before connections on gwA ($(grep -o 'unloaded [0-9]*' "$TOPO_DIR/operator.load" | head -1))" \
  grep -q "unloaded" "$TOPO_DIR/operator.load"
conns_back() { test "$(ted_conns A)" -ge "$conns_before"; }
check "ted's connections are back in gwA's charon within 2 s" retry 7 conns_back
check "gwA counted the repair (ted_repairs_total{layer=\"charon\"} $(repairs_of A charon))" test "$(repairs_of A charon)" -ge 1
# The firewall reloaded (what `systemctl restart nftables` does).
in_ns gA nft flush ruleset
tables_back() { for table in ted-guard ted ted-hold; do in_ns gA nft list table inet $table >/dev/null 2>&1 || return 1; done; }
check "nft flush ruleset: gwA's guard, interception and hold tables are back within 1 s" retry 4 tables_back
check "gwA counted the repair (ted_repairs_total{layer=\"nftables\"} $(repairs_of A nftables))" test "$(repairs_of A nftables)" -ge 1
# XFRM flushed while hostA sends what gwA protects and no tunnel carries (to 198.18.5.77,
# routed through gwB for this check, where nobody answers for it): ted's traps are gone
# until the repair, and the hold and the guard's outbound chain take what they would have caught.
in_ns gA ip route add 198.18.5.0/24 via 198.51.100.2
band_count() { in_ns gA ip xfrm policy | grep -c "priority 21275[0-9]\{5\}"; }
traps_before=$(band_count)
capture_start xfrmflush
bg hA bash -c 'for i in $(seq 1 40); do echo flushed > /dev/udp/198.18.5.77/9999; sleep 0.05; done' > /dev/null 2>&1
sleep 0.5
in_ns gA ip xfrm policy flush
traps_back() { test "$(band_count)" -ge "$traps_before"; }
check "ip xfrm policy flush: gwA's $traps_before traps are back within 1 s" retry 4 traps_back
sleep 2; capture_stop
check "gwA counted the repair (ted_repairs_total{layer=\"xfrm\"} $(repairs_of A xfrm))" test "$(repairs_of A xfrm)" -ge 1
check "nothing of the flow crossed in clear meanwhile" test "$(captured xfrmflush 'udp and dst host 198.18.5.77 and dst port 9999')" -eq 0
outbound_drops() { in_ns gA nft list chain inet ted-guard outbound | awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }'; }
# hostA's packets meet the hold first (prerouting), so the guard's outbound chain seldom
# sees one here; DataplaneNamespaceTests proves it drops what no trap catches.
echo "e2e: XFRM flush: the guard's outbound chain dropped $(outbound_drops) packets"
in_ns gA ip route del 198.18.5.0/24 via 198.51.100.2
# A reload (SIGHUP, `systemctl reload ted`): a policy refused by `ted check` is refused with
# one line and changes nothing; an edited one takes effect in the same process, and the
# tunnel it still permits keeps its SA.
pid_before=${TED_PID[A]}
cp "$TOPO_DIR/gA.yaml" "$TOPO_DIR/gA.yaml.good"
sed -i 's|^policy:|policy:\n  - permit tcp 198.18.1.0/33 any|' "$TOPO_DIR/gA.yaml"
kill -HUP "$pid_before"
refused() { test "$(grep -c 'reload refused' "$TOPO_DIR/gA.ted.log")" -eq 1; }
refused_alive() { refused && grep 'reload refused' "$TOPO_DIR/gA.ted.log" | grep -q 'gA.yaml:' && kill -0 "$pid_before"; }
check "SIGHUP with a bad policy: one 'reload refused' line naming the file, and ted runs on" retry 10 refused_alive
child_spi() { sas A | awk '/198.51.100.2\[/ { c = 1 } c && $1 == "in" { sub(/,$/, "", $2); print $2; exit }'; }
retry 30 ping_to 198.18.2.20
spi_before=$(child_spi)
cp "$TOPO_DIR/gA.yaml.good" "$TOPO_DIR/gA.yaml"
sed -i 's|^policy:|policy:\n  - deny udp 198.18.1.0/24 198.18.6.0/24 eq 4789|' "$TOPO_DIR/gA.yaml"
kill -HUP "$pid_before"
new_entry_trapped() { in_ns gA ip xfrm policy | grep -q "dst 198.18.6.0/24 proto udp dport 4789" && kill -0 "$pid_before"; }
check "SIGHUP with an edited policy: the new entry is in the kernel within 5 s, same process" retry 17 new_entry_trapped
same_spi() { test -n "$spi_before" && test "$(child_spi)" = "$spi_before"; }
check "the tunnel the new policy still permits kept its SA (${spi_before:-none})" retry 10 same_spi
check "hostA still reaches hostB after the reload" retry 30 ping_to 198.18.2.20

# 7. Stop and uninstall: a stopped ted leaves its traps (fail closed); ted cleanup removes
# everything of ted's from the kernel and from charon.
for site in A B C; do check "g$site's ted exits 0 on SIGTERM" ted_stop $site; done
traps_left() {
  local policies tables
  policies=$(in_ns g$1 ip xfrm policy) && tables=$(in_ns g$1 nft list tables) || return 1
  grep -q "priority 21275[0-9]\{5\}" <<< "$policies" && grep -q "inet ted-guard" <<< "$tables"
}
for site in A B C; do check "after SIGTERM g$site keeps its traps and inbound guard" traps_left $site; done
for site in A B C; do
  in_ns g$site "$TED" cleanup --config "$TOPO_DIR/g$site.yaml" > "$TOPO_DIR/g$site.cleanup.txt" 2>&1
  check "ted cleanup: nothing of ted's left in g$site's kernel" no_ted_objects $site
  check "ted cleanup: no ted-* connection left in g$site's charon" test "$(ted_conns $site)" -eq 0
done

sas A > "$TOPO_DIR/gA.sas.txt"
if [ $failed -gt 0 ]; then
  cat "$TOPO_DIR/gA.sas.txt"
  for site in A B C; do echo "--- g$site ted log"; tail -20 "$TOPO_DIR/g$site.ted.log"; echo "--- g$site charon log"; tail -15 "$TOPO_DIR/g$site.charon.log" 2>/dev/null; done
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
