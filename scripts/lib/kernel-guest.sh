#!/usr/bin/env bash
# Runs INSIDE the QEMU guest of scripts/e2e-kernel.sh (a Debian kernel with ESP): the ted
# topology of e2e.sh reduced to hostA - gwA - transit - gwB - hostB, charon with KERNEL ESP
# (kernel-netlink, not kernel-libipsec), ted on both gateways. Every check reads a capture
# on the transit bridge, `ip -s xfrm state` / `ip xfrm policy` or charon's
# `swanctl --list-sas`, never ted's own word.
#   kernel-guest.sh TED-BINARY OUT-DIR [BUDGET-S [STRICT-ONE-SYN [IKE-PROPOSAL [ACQUIRE-EXPIRES]]]]
# Writes PASS/FAIL lines to stdout and OUT-DIR/checks.txt, its work files to OUT-DIR/logs.
set -u
TED=$1 OUT=$2 BUDGET=${3:-330} STRICT_ONE_SYN=${4:-0} IKE_PROPOSAL=${5:-aes128-sha256-curve25519} ACQUIRE_EXPIRES=${6:-3}
cd "$(dirname "$0")/../.."
exec 3>&1 > >(tee -a "$OUT/checks.txt") 2>&1
TEE_PID=$!

guest_start=$(date +%s)
t() { echo "  [guest +$(( $(date +%s) - guest_start )) s] $*"; }
# section NAME: stop (a failure; logs are saved) when the guest's time budget is spent.
section() {
  t "$1"
  [ -n "${TOPO_DIR:-}" ] && { mkdir -p "$OUT/logs"; cp -r "$TOPO_DIR"/. "$OUT/logs/" 2>/dev/null; }
  [ $(( $(date +%s) - guest_start )) -le "$BUDGET" ] && return 0
  fail "guest time budget ($BUDGET s) spent before: $1"; exit 1
}

# The guest's modules come from the host's linux-image-cloud-amd64 through the root share.
modules="esp4 esp6 xfrm_user xfrm_algo ah4 veth bridge nf_tables nft_ct nft_chain_nat nft_queue
  nft_tproxy nft_socket nf_tproxy_ipv4 nf_tproxy_ipv6 nft_reject_inet nft_xfrm nft_compat nft_fib_inet
  nfnetlink_queue xt_NFQUEUE xt_comment xt_mark iptable_mangle ip6table_mangle
  authenc echainiv seqiv sha512_generic gcm ccm ctr ghash_generic"   # (cbc, hmac, sha256, aes: built in)
modprobe -a -q $modules
missing_modules=""
for m in $modules; do [ -d "/sys/module/$m" ] || missing_modules="$missing_modules $m"; done
[ -z "$missing_modules" ] || echo "  (modules not loaded:$missing_modules)"

TOPO=tk
TOPO_DIR=$(mktemp -d /tmp/ted-e2e-kernel.XXXXXX)
source scripts/lib/topology.sh
source scripts/lib/checks.sh
WAIT_SCALE=3
source scripts/lib/traffic.sh

save_logs() {
  mkdir -p "$OUT/logs"
  for site in A B; do sas $site > "$TOPO_DIR/g$site.sas.txt" 2>&1; in_ns g$site ip -s xfrm state > "$TOPO_DIR/g$site.xfrm-state.txt" 2>&1
    in_ns g$site ip xfrm policy > "$TOPO_DIR/g$site.xfrm-policy.txt" 2>&1
    { in_ns g$site ip rule; in_ns g$site ip -6 rule; in_ns g$site ip route show table all; in_ns g$site ip -6 route show table all
      in_ns g$site nft list ruleset; in_ns g$site ip6tables-save; } > "$TOPO_DIR/g$site.net.txt" 2>&1; done
  cp -r "$TOPO_DIR"/. "$OUT/logs/" 2>/dev/null
}
finish() {
  save_logs; topology_cleanup
  exec 1>&3 2>&3   # tee sees the end of its input: let it write its last lines out
  local i; for i in $(seq 1 50); do kill -0 "$TEE_PID" 2>/dev/null || break; sleep 0.1; done
}
trap finish EXIT

# charon with the kernel's ESP (topology.sh's charon_start), given the guest's time.
CHARON_ESP=kernel
CHARON_WAIT=30

# ted_start / ted_stop as checks.sh's, with the guest's slowness in their bounds (60 s).
ted_launch() {
  local site=$1
  rm -f "$TOPO_DIR/g$site.sock"
  ip netns exec "$(ns g$site)" "$TED" daemon --config "$TOPO_DIR/g$site.yaml" >> "$TOPO_DIR/g$site.ted.log" 2>&1 &
  TED_PID[$site]=$!; TOPO_PIDS+=($!)
}
ted_wait() {
  local site=$1 i
  for i in $(seq 1 600); do [ -S "$TOPO_DIR/g$site.sock" ] && return 0; kill -0 "${TED_PID[$site]}" 2>/dev/null || break; sleep 0.1; done
  echo "ted on g$site did not start:"; tail -5 "$TOPO_DIR/g$site.ted.log"; return 1
}
ted_start() { ted_launch "$1"; ted_wait "$1"; }
ted_stop() {
  local site=$1 pid=${TED_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  local i; for i in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { echo "ted on g$site still running 60 s after SIGTERM"; kill -KILL "$pid"; }
  wait "$pid"; local status=$?
  TED_PID[$site]=""
  [ "$status" -eq 0 ] || { echo "ted on g$site exited with $status on SIGTERM"; return 1; }
}
ted_kill() { kill -KILL "${TED_PID[$1]}"; wait "${TED_PID[$1]}" 2>/dev/null; TED_PID[$1]=""; }

PSK="ted end-to-end pre-shared key"
# ted_config SITE POLICY-LINES...: e2e.sh's shape, discovery timeouts for a TCG guest.
# acquire-expires (net.core.xfrm_acq_expires) is 3, not e2e.sh's 1: under kernel ESP it also
# bounds the life of the SPIs charon allocates (XFRM_MSG_ALLOCSPI makes a larval state with
# that lifetime), and a slower IKE_AUTH than that expires them (see the check after section 1).
ted_config() {
  TED_DISCOVERY="retries: 3, timeout: 1s, negative-ttl: 1s" TED_ACQUIRE_EXPIRES=$ACQUIRE_EXPIRES TED_PEERS="[198.51.100.0/24]" \
    TED_IKE="  psk: \"$PSK\"" TED_PROPOSAL=$IKE_PROPOSAL ted_yaml "$@" > "$TOPO_DIR/g$1.yaml"
}

# --- helpers (e2e.sh's, on this topology) -------------------------------------------------
# esp_packets SITE in|out: packets counted by gwSITE's kernel ESP SAs of that direction.
esp_packets() {
  local me="198.51.100.$(( $(printf '%d' "'$1") - 64 ))"
  in_ns g$1 ip -s xfrm state | awk -v me="$me" -v dir="$2" '
    /^src / { mine = (dir == "out" ? $2 == me : $4 == me) }
    mine && /^[ \t]+[0-9]+\(bytes\), [0-9]+\(packets\)/ { sub(/.*\), /, ""); n += $0 + 0 }
    END { print n + 0 }'
}
esp_states() { in_ns g$1 ip xfrm state | grep -c "proto esp"; }

# --- topology -----------------------------------------------------------------------------
# topology.sh's names and addresses (hostA - gwA - transit - gwB - hostB; no site C), built
# with few processes: every exec costs under TCG. Plus IPv6 inside (2001:db8:1::/64,
# 2001:db8:2::/64) and between the gateways (2001:db8:ff::/64), set before any charon runs
# (addresses appearing later would make MOBIKE updates).
topology_up_kernel() {
  local n site i
  {
    for n in tr hA gA hB gB; do echo "netns add $(ns $n)"; done
    for site in A B; do
      echo "link add eth0 netns $(ns h$site) type veth peer name inside netns $(ns g$site)"
      echo "link add outside netns $(ns g$site) type veth peer name t$site netns $(ns tr)"
    done
  } > "$TOPO_DIR/root.batch"
  ip -b "$TOPO_DIR/root.batch" || return 1
  # br0 holds gwC's address (there is no gwC): gwA's route to 198.18.3.0/24 resolves, so a
  # packet leaking there in clear would be on the wire, not stuck waiting for ARP.
  printf '%s\n' "link set lo up" "link add br0 type bridge" "link set br0 up" "addr add 198.51.100.3/24 dev br0" \
    "link set tA master br0" "link set tB master br0" "link set tA up" "link set tB up" > "$TOPO_DIR/tr.batch"
  ip -n "$(ns tr)" -b "$TOPO_DIR/tr.batch" || return 1
  for site in A B; do
    i=$(( $(printf '%d' "'$site") - 64 ))
    local o=$(( 3 - i ))   # the other site
    in_ns h$site sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
      net.ipv6.conf.lo.disable_ipv6=0 net.ipv6.conf.eth0.disable_ipv6=0 net.ipv6.conf.eth0.accept_dad=0
    in_ns g$site sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
      net.ipv6.conf.lo.disable_ipv6=0 net.ipv6.conf.inside.disable_ipv6=0 net.ipv6.conf.outside.disable_ipv6=0 \
      net.ipv6.conf.inside.accept_dad=0 net.ipv6.conf.outside.accept_dad=0 \
      net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    printf '%s\n' "link set lo up" "addr add 198.18.$i.$(( i * 10 ))/24 dev eth0" "link set eth0 up" \
      "route add default via 198.18.$i.1" "addr add 2001:db8:$i::$(( i * 10 ))/64 dev eth0 nodad" \
      "route add ::/0 via 2001:db8:$i::1" > "$TOPO_DIR/h$site.batch"
    ip -n "$(ns h$site)" -b "$TOPO_DIR/h$site.batch" || return 1
    printf '%s\n' "link set lo up" "addr add 198.18.$i.1/24 dev inside" "link set inside up" \
      "addr add 198.51.100.$i/24 dev outside" "link set outside up" \
      "route add 198.18.$o.0/24 via 198.51.100.$o" "route add 198.18.3.0/24 via 198.51.100.3" \
      "addr add 2001:db8:$i::1/64 dev inside nodad" "addr add 2001:db8:ff::$i/64 dev outside nodad" \
      "route add 2001:db8:$o::/64 via 2001:db8:ff::$o" > "$TOPO_DIR/g$site.batch"
    ip -n "$(ns g$site)" -b "$TOPO_DIR/g$site.batch" || return 1
  done
}
t "building the topology (work files in $TOPO_DIR)"
topology_up_kernel || { fail "the topology is built"; exit 1; }
t "topology up"

# One after the other, from this shell: charon dies with the shell that started it
# (`setpriv --pdeathsig`, scripts/lib/reap.sh), so never from a subshell that ends.
charon_start A || { fail "charon on gA"; exit 1; }
charon_start B || { fail "charon on gB"; exit 1; }
check "charon on gwA uses the kernel's ESP (kernel-netlink loaded, no kernel-libipsec)" \
  bash -c "grep -q 'kernel-netlink' '$TOPO_DIR/gA.charon.log' && ! grep -q 'kernel-libipsec' '$TOPO_DIR/gA.charon.log' && ! ip netns exec $(ns gA) ip link show ipsec0 >/dev/null 2>&1"
bg tr tcpdump -i br0 -U -w "$TOPO_DIR/transit.pcap" >/dev/null 2>"$TOPO_DIR/transit.tcpdump.log"
capture_ready "$TOPO_DIR/transit.tcpdump.log"
bg hB nc -lk 443
bg hB nc -6 -lk 8443

# gwA denies 198.18.2.128/25 above its permit (check 3: its child is cut to the rest);
# gwB permits all of it. Both protect IPv6 between their inside networks; gwA's remote
# half, 2001:db8::/32, holds its own inside /64: its Neighbor Advertisements to hostA
# (src 2001:db8:1::1 dst 2001:db8:1::10) must pass its traps, or hostA never resolves it.
ted_config A "deny ip 198.18.1.0/24 198.18.2.128/25" "permit ip 198.18.1.0/24 198.18.0.0/15" \
  "permit ip 2001:db8:1::/64 2001:db8::/32"
ted_config B "permit ip 198.18.2.0/24 198.18.0.0/15" "permit ip 2001:db8:2::/64 2001:db8:1::/64"
ted_launch A; ted_launch B
for site in A B; do ted_wait $site || { fail "ted on g$site"; exit 1; }; done
t "charons and teds up"
check "ted on gwA sees the kernel's ESP (ted.esp_in_kernel is not false in its log)" \
  bash -c "! grep -q 'esp_in_kernel=false' '$TOPO_DIR/gA.ted.log'"
check "no SA on gwA before any traffic" bash -c "! swanctl --list-sas --uri unix://$TOPO_DIR/gA.vici 2>/dev/null | grep -q ESTABLISHED"

# --- 2. the first packet of a new flow is held and released into the kernel SA ------------
section "2: first packet held"
bg hB tcpdump --immediate-mode -i eth0 -U -w "$TOPO_DIR/hold.hostB.pcap" "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack = 0 and src host 198.18.1.10" \
  >/dev/null 2>"$TOPO_DIR/hold.hostB.tcpdump.log"
hostB_capture=$!
capture_ready "$TOPO_DIR/hold.hostB.tcpdump.log"
first_connect "hold" 198.18.2.20 443
sleep 0.5; kill "$hostB_capture" 2>/dev/null; wait "$hostB_capture" 2>/dev/null
hostB_syns=$(tcpdump -nn -r "$TOPO_DIR/hold.hostB.pcap" 2>/dev/null | wc -l)
t "first connect: $(connect_ms hold) ms, $(hostA_syns hold) SYN(s) on hostA's link, $hostB_syns at hostB"
check "hold: connect() from hostA to hostB:443 through a new tunnel succeeds ($(connect_ms hold) ms)" \
  test "$(connect_ms hold)" != failed
# Under TCG discovery + IKE take longer than Linux's 1 s SYN retransmission timer, so
# hostA may send more than one SYN; each must have been held and released into the SA,
# the first one included (with the first packet dropped, hostB would see one SYN fewer).
check "hold: every SYN hostA sent ($(hostA_syns hold)) reached hostB through the tunnel ($hostB_syns): the first was held, not dropped" \
  test "$(hostA_syns hold)" -ge 1 -a "$hostB_syns" -eq "$(hostA_syns hold)"
if [ "$STRICT_ONE_SYN" = 1 ]; then
  check "hold: exactly one SYN on hostA's link ($(hostA_syns hold) seen)" test "$(hostA_syns hold)" -eq 1
fi
check "hold: the transit capture saw the new tunnel's ESP (IP protocol 50)" test "$(captured hold esp)" -gt 0
check "hold: no SYN in clear on the transit" test "$(captured hold 'tcp and host 198.18.2.20')" -eq 0
check "hold: gwA's kernel ESP SA carried the SYN(s) (outbound packets $(esp_packets A out))" test "$(esp_packets A out)" -ge "$(hostA_syns hold)"

section "1: discovery and kernel ESP"
check "hostA pings hostB" retry 20 ping_to 198.18.2.20
check "gwA has an IKE SA with gwB (198.51.100.2) in swanctl --list-sas" ike_sa_with A 198.51.100.2
check "gwA's child SA to gwB is INSTALLED in tunnel mode" bash -c "swanctl --list-sas --uri unix://$TOPO_DIR/gA.vici | grep -q 'INSTALLED, TUNNEL'"
check "gwA's kernel holds ESP SAs with gwB ($(esp_states A) in ip xfrm state)" test "$(esp_states A)" -ge 2
out_before=$(esp_packets A out) in_before=$(esp_packets A in)
in_ns hA ping -c 5 -i 0.3 -W 2 198.18.2.20 > "$TOPO_DIR/counters.ping" 2>&1
out_after=$(esp_packets A out) in_after=$(esp_packets A in)
check "hostA's 5 pings to hostB answered ($(received "$TOPO_DIR/counters.ping") of 5)" test "$(received "$TOPO_DIR/counters.ping")" -eq 5
check "gwA's outbound ESP SA counted the pings ($out_before, then $out_after packets)" test "$out_after" -ge $((out_before + 5))
check "gwA's inbound ESP SA counted the replies ($in_before, then $in_after packets)" test "$in_after" -ge $((in_before + 5))
check "hostA opens a TCP connection to hostB:443" retry 10 tcp_to 198.18.2.20 443
spi_expired() { grep -h "allocated SPI not found anymore" "$TOPO_DIR"/g[AB].charon.log | wc -l; }
check "no SPI charon allocated expired before its SA was added ($(spi_expired) 'allocated SPI not found anymore' in charon's logs; acquire-expires $ACQUIRE_EXPIRES)" \
  test "$(spi_expired)" -eq 0

# --- 3. a narrowed child -----------------------------------------------------------------
section "3: narrowed child"
check "gwA's child SA to gwB is exactly 198.18.1.0/24 === 198.18.2.0/25 (gwA's deny cut it)" \
  child_ts A 198.51.100.2 '198.18.1.0/24' '198.18.2.0/25'
check "gwB's child SA is the mirror: 198.18.2.0/25 === 198.18.1.0/24" \
  bash -c "swanctl --list-sas --uri unix://$TOPO_DIR/gB.vici | awk '\$1 == \"local\" { l = \$2 } \$1 == \"remote\" { print l \" === \" \$2 }' | grep -qx '198.18.2.0/25 === 198.18.1.0/24'"
check "gwA's kernel has charon's outbound policy for exactly 198.18.1.0/24 -> 198.18.2.0/25" \
  bash -c "ip netns exec $(ns gA) ip xfrm policy | grep -A1 '^src 198.18.1.0/24 dst 198.18.2.0/25' | grep -q 'dir out'"

# --- 3b. a narrowed child without an address of gwA in its local selector ---------------
# The flow of issue #20: gwB gives 198.18.1.0/26 to an entry above its udp/7101 one, so a
# flow from 198.18.1.100 gets the child 198.18.1.64/26[udp] === 198.18.2.0/24[udp/7101]
# at gwA, which holds no address there. kernel-libipsec 5.9.8 cannot route it (e2e.sh 4d);
# kernel ESP installs it and carries the flow.
section "3b: narrowed child without a gateway address"
ted_stop B
ted_config B "permit ip 198.18.2.0/24 198.18.1.0/26" "permit udp 198.18.2.0/24 eq 7101 198.18.1.0/24" \
  "permit ip 198.18.2.0/24 198.18.0.0/15" "permit ip 2001:db8:2::/64 2001:db8:1::/64"
ted_start B
# gwA's tunnel of section 1 (198.18.1.0/24 === 198.18.2.0/25) would carry the flow: it goes,
# so the flow is discovered anew against gwB's new policy.
for ike in $(sas A | grep -o '^ted-198-51-100-2-[0-9a-f]*' | sort -u); do
  swanctl --terminate --ike "$ike" --timeout 10 --uri "unix://$TOPO_DIR/gA.vici" >/dev/null 2>&1
done
no_sa_to_b() { ! sas A | grep -q "198.51.100.2\["; }
retry 30 no_sa_to_b
in_ns hA ip addr add 198.18.1.100/24 dev eth0
bg hB python3 -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 7101))
with open(sys.argv[1], 'a') as f:
    while True:
        data, peer = s.recvfrom(64); f.write(peer[0] + ' ' + data.decode(errors='replace') + '\\n'); f.flush()" "$TOPO_DIR/hostB.7101"
capture_start narrowed
udp_7101_arrived() {
  in_ns hA python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('198.18.1.100', 0)); s.sendto(b'narrowed', ('198.18.2.20', 7101))"
  sleep 1; grep -q '^198.18.1.100 narrowed' "$TOPO_DIR/hostB.7101"; }
check "a flow from 198.18.1.100 to hostB udp/7101 arrives over a tunnel" retry 20 udp_7101_arrived
capture_stop
check "gwA's child for it is exactly 198.18.1.64/26[udp] === 198.18.2.0/25[udp/7101] (no address of gwA inside; gwA's deny cut the rest)" \
  child_ts A 198.51.100.2 '198.18.1.64/26\[udp\]' '198.18.2.0/25\[udp/7101\]'
check "no udp/7101 in clear on the transit" test "$(captured narrowed 'udp port 7101')" -eq 0
check "the transit saw the tunnel's ESP" test "$(captured narrowed esp)" -gt 0
# Section 5 needs a live tunnel for hostA: discovered again (gwB's entry for 198.18.1.0/26).
check "hostA reaches hostB again over a new tunnel" retry 20 ping_to 198.18.2.20

# --- 4. IPv6 over kernel ESP ---------------------------------------------------------------
section "4: IPv6"
ping6_to() { in_ns hA ping -6 -c 1 -W 2 "$1"; }
check "hostA pings hostB over IPv6 (2001:db8:2::20)" retry 10 ping6_to 2001:db8:2::20
check "hostA opens a TCP connection to [2001:db8:2::20]:8443" retry 3 tcp_to 2001:db8:2::20 8443
check "gwA's IPv6 child SA to gwB is 2001:db8:1::/64 === 2001:db8:2::/64" \
  child_ts A 198.51.100.2 '2001:db8:1::/64' '2001:db8:2::/64'
v6_states() { in_ns gA ip xfrm state | grep -c "sel src 2001:db8:1::"; }
v6out_before=$(esp_packets A out)
in_ns hA ping -6 -c 5 -i 0.3 -W 2 2001:db8:2::20 > "$TOPO_DIR/v6.ping" 2>&1
check "hostA's 5 IPv6 pings answered ($(received "$TOPO_DIR/v6.ping") of 5) and counted by gwA's ESP SAs ($v6out_before, then $(esp_packets A out))" \
  test "$(received "$TOPO_DIR/v6.ping")" -eq 5 -a "$(esp_packets A out)" -ge $((v6out_before + 5))
t "IPv6 done"

# --- 5. fail closed through SIGTERM and SIGKILL; restart under a live tunnel --------------
section "5: SIGTERM, SIGKILL, restart"
# The new flow: UDP from hostA to 198.18.3.30:9999 (gwA protects it; no gateway answers for
# it, so it can never get a tunnel): any packet of it on the transit is a leak. Pings to
# hostB over the live tunnel meanwhile show the capture sees traffic and the tunnel flows.
new_flow() { in_ns hA bash -c 'for i in $(seq 1 20); do echo x > /dev/udp/198.18.3.30/9999; sleep 0.2; done' 2>/dev/null; }
fail_closed() {
  capture_start "$1"
  in_ns hA ping -c 20 -i 0.2 -W 2 198.18.2.20 > "$TOPO_DIR/$1.ping" 2>&1 &
  local ping_pid=$!
  new_flow
  wait "$ping_pid"
  capture_stop
  check "$1: the live tunnel kept carrying pings ($(received "$TOPO_DIR/$1.ping") of 20), ESP on the transit ($(captured "$1" esp) packets)" \
    test "$(received "$TOPO_DIR/$1.ping")" -ge 18 -a "$(captured "$1" esp)" -gt 0
  check "$1: 0 packets of a new protected flow in clear on the transit (next hop resolved: $(in_ns gA ip neigh show 198.51.100.3 | grep -c lladdr))" \
    test "$(captured "$1" "dst host 198.18.3.30 and not udp port $ISAKMP_PORT")" -eq 0 -a "$(in_ns gA ip neigh show 198.51.100.3 | grep -c lladdr)" -eq 1
}
in_ns gA ping -c 1 -W 2 198.51.100.3 >/dev/null 2>&1   # gwA knows the next hop's MAC (see topology_up_kernel)
check "gwA's ted exits 0 on SIGTERM" ted_stop A
fail_closed "after SIGTERM of gwA's ted"
ted_start A || fail "ted on gwA restarts"
ted_kill A
fail_closed "after SIGKILL of gwA's ted"
ted_start A || fail "ted on gwA restarts"
t "SIGTERM/SIGKILL done"

ike_sas_to_b() { sas A | grep -c "^ted-198-51-100-2-"; }
children() { sas A | grep -c "INSTALLED"; }
ike_before=$(ike_sas_to_b) children_before=$(children) spis_before=$(esp_states A)
b_children_before=$(sas B | grep -c INSTALLED) b_ike_before=$(sas B | grep -c ESTABLISHED)
in_ns hA ping -c 60 -i 0.2 -W 2 198.18.2.20 > "$TOPO_DIR/restart.ping" 2>&1 &
ping_pid=$!
sleep 2
ted_kill A
ted_start A || fail "ted on gwA restarts under a live tunnel"
wait "$ping_pid"
sleep 2
check "SIGKILL and restart of gwA's ted under a live tunnel: at most 2 of 60 pings lost ($(received "$TOPO_DIR/restart.ping") received)" \
  test "$(received "$TOPO_DIR/restart.ping")" -ge 58
check "the restart made no duplicate: IKE SAs to gwB $ike_before, then $(ike_sas_to_b); child SAs $children_before, then $(children); ESP states $spis_before, then $(esp_states A)" \
  test "$(ike_sas_to_b)" -eq "$ike_before" -a "$(children)" -eq "$children_before" -a "$(esp_states A)" -eq "$spis_before"
check "the restart made no duplicate on gwB either: IKE SAs $b_ike_before, then $(sas B | grep -c ESTABLISHED); child SAs $b_children_before, then $(sas B | grep -c INSTALLED)" \
  test "$(sas B | grep -c ESTABLISHED)" -eq "$b_ike_before" -a "$(sas B | grep -c INSTALLED)" -eq "$b_children_before"

# --- the whole transit capture --------------------------------------------------------------
section "transit capture"
cleartext_count() {
  tcpdump -nn -r "$TOPO_DIR/transit.pcap" "host $1 and not (udp port $ISAKMP_PORT) and not (icmp and icmp[0] = 3)" 2>/dev/null | wc -l
}
sleep 0.5
check "transit (whole run): ESP seen ($(captured transit esp) packets), no ESP-in-UDP needed ($(captured transit 'udp port 4500'))" \
  test "$(captured transit esp)" -gt 0
check "transit (whole run): no cleartext of hostB (198.18.2.20) besides TED probes" test "$(cleartext_count 198.18.2.20)" -eq 0
check "transit (whole run): no cleartext of hostB's IPv6 address besides TED probes" test "$(cleartext_count 2001:db8:2::20)" -eq 0
check "transit (whole run): no cleartext of hostA (198.18.1.10) towards gwB's side" \
  test "$(tcpdump -nn -r "$TOPO_DIR/transit.pcap" "src host 198.18.1.10 and dst net 198.18.2.0/24 and not udp port $ISAKMP_PORT" 2>/dev/null | wc -l)" -eq 0
check "transit (whole run): TED probes (exchange 240) were seen" \
  test "$(captured transit "$PROBES")" -gt 0

# --- 6. ted cleanup -------------------------------------------------------------------------
section "6: ted cleanup"
for site in A B; do check "g$site's ted exits 0 on SIGTERM" ted_stop $site; done
no_ted_objects() {
  local site=$1
  ! in_ns g$site ip xfrm policy | grep -q "priority 21275[0-9]\{5\}" \
    && ! in_ns g$site nft list tables 2>/dev/null | grep -q " ted" \
    && ! in_ns g$site ip rule | grep -qE "fwmark 0x7ed|lookup 2029|dport 500 lookup main" \
    && ! in_ns g$site ip -6 rule | grep -qE "fwmark 0x7ed|lookup 2029" \
    && ! in_ns g$site iptables-save 2>/dev/null | grep -v '^#' | grep -q ted \
    && ! in_ns g$site ip6tables-save 2>/dev/null | grep -v '^#' | grep -q ted
}
ted_conns() { swanctl --list-conns --uri "unix://$TOPO_DIR/g$1.vici" 2>/dev/null | grep -c "^ted-"; }
ted_sas() { sas $1 | grep -c "^ted-"; }
for site in A B; do
  in_ns g$site "$TED" cleanup --config "$TOPO_DIR/g$site.yaml" > "$TOPO_DIR/g$site.cleanup.txt" 2>&1 &
  eval "cleanup_$site=\$!"
done
for site in A B; do
  eval "pid=\$cleanup_$site"; wait "$pid"; status=$?
  check "ted cleanup on g$site exits 0 ($status)" test $status -eq 0
  check "ted cleanup: nothing of ted's left in g$site's kernel (xfrm band 0x7ed0xxxx, nft ted*, ip rules, iptables)" no_ted_objects $site
  check "ted cleanup: no ted-* connection left in g$site's charon ($(ted_conns $site))" test "$(ted_conns $site)" -eq 0
  check "ted cleanup: no ted-* SA left in g$site's charon ($(ted_sas $site))" test "$(ted_sas $site)" -eq 0
done

t "done"
echo "guest: $passed passed, $failed failed"
[ $failed -eq 0 ]
