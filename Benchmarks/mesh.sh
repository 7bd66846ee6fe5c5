#!/usr/bin/env bash
# A mesh of N sites on one machine (issue #24): each site a namespace pair (host, gateway)
# with its own charon (kernel-libipsec) and ted, no peer configured anywhere (a group key
# for 203.0.113.0/24), one routed core; every host pings every other host, one destination
# after the other (`ping -c1 -W1`, repeated until answered, at most TRIES times). Prints
# one table: per-pair time to first answer (p50, p99, max), completion, probes sent and
# answered, IKE SAs (both ends), ted's and charon's memory, and any pair never answered;
# then the checks "every pair answered" and "nothing in clear on the core", and
# "N passed, N failed" (exit 1 on a failure).
#
#   Benchmarks/mesh.sh 10           (CI: a correctness check, about a minute)
#   TED=.build/release/ted Benchmarks/mesh.sh 40
#
# Sites are 198.18.I.0/24 (host .10, gateway .1); gateways 203.0.113.I on the core
# (203.0.113.254). Every name carries a per-run tag; every process is killed by its PID.
set -u
cd "$(dirname "$0")/.."
SITES=${1:-10}
TED=${TED:-$PWD/.build/debug/ted}
TRIES=${TRIES:-30}
[ "$SITES" -ge 2 ] && [ "$SITES" -le 60 ] || { echo "mesh: 2 to 60 sites"; exit 2; }

TOPO_PREFIX=mesh
TOPO_DIR=$(mktemp -d /tmp/ted-mesh.XXXXXX)
TOPO_PIDS=()
declare -A CHARON_PID
source scripts/lib/topology.sh
source scripts/lib/checks.sh
require mesh ip tcpdump ping python3 /usr/lib/ipsec/charon swanctl
PSK="ted mesh group key, sites of 203.0.113.0/24"

names() { echo core; seq 1 "$SITES" | sed 's/^/g/'; seq 1 "$SITES" | sed 's/^/h/'; }
mesh_cleanup() {
  local pid n
  for pid in "${TOPO_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in "${TOPO_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  for n in $(names); do ip netns pids "$(ns $n)" 2>/dev/null | xargs -r kill -9 2>/dev/null; done
  for n in $(names); do ip netns del "$(ns $n)" 2>/dev/null; done
}
trap mesh_cleanup EXIT

echo "mesh: $SITES sites in namespaces $TOPO-* (work files in $TOPO_DIR)"
start_setup=$(date +%s.%N)
for n in $(names); do
  ip netns add "$(ns $n)"
  in_ns $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  in_ns $n ip link set lo up
done
in_ns core sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0
for i in $(seq 1 "$SITES"); do
  ip link add "${TOPO}h$i" type veth peer name "${TOPO}i$i"
  ip link set "${TOPO}h$i" netns "$(ns h$i)"; ip link set "${TOPO}i$i" netns "$(ns g$i)"
  in_ns h$i ip link set "${TOPO}h$i" name eth0
  in_ns g$i ip link set "${TOPO}i$i" name inside
  in_ns h$i ip addr add 198.18.$i.10/24 dev eth0; in_ns h$i ip link set eth0 up
  in_ns h$i ip route add default via 198.18.$i.1
  in_ns g$i ip addr add 198.18.$i.1/24 dev inside; in_ns g$i ip link set inside up
  ip link add "${TOPO}o$i" type veth peer name "${TOPO}c$i"
  ip link set "${TOPO}o$i" netns "$(ns g$i)"; ip link set "${TOPO}c$i" netns "$(ns core)"
  in_ns g$i ip link set "${TOPO}o$i" name outside
  in_ns g$i ip addr add 203.0.113.$i/32 dev outside; in_ns g$i ip link set outside up
  in_ns g$i ip route add 203.0.113.254/32 dev outside
  in_ns g$i ip route add default via 203.0.113.254
  in_ns g$i sysctl -qw net.ipv4.ip_forward=1
  in_ns core ip link set "${TOPO}c$i" up
  in_ns core ip addr add 203.0.113.254/32 dev "${TOPO}c$i"
  in_ns core ip route add 203.0.113.$i/32 dev "${TOPO}c$i"
  in_ns core ip route add 198.18.$i.0/24 via 203.0.113.$i
done

for i in $(seq 1 "$SITES"); do
  charon_start $i || { fail "charon on g$i"; echo "$passed passed, $failed failed"; exit 1; }
  {
    echo "identity: 203.0.113.$i"
    echo "listen: 0.0.0.0:1500"
    echo "advertise-port: 1500"
    echo "policy: [permit ip 198.18.$i.0/24 198.18.0.0/16]"
    echo "discovery: { retries: 3, timeout: 300ms, negative-ttl: 1s }"
    echo "responder: { rate: 1000, burst: 1000 }"
    echo "dataplane: { traps: true, intercept: true, intercept-port: 1501 }"
    echo "peers: [203.0.113.0/24]"
    echo "ike: { vici: $TOPO_DIR/g$i.vici, psk: \"$PSK\", proposals: [aes128-sha256-modp2048], esp-proposals: [aes128-sha256] }"
    echo "control-socket: $TOPO_DIR/g$i.sock"
  } > "$TOPO_DIR/g$i.yaml"
done
for i in $(seq 1 "$SITES"); do ted_start $i || { fail "ted on g$i"; echo "$passed passed, $failed failed"; exit 1; }; done
bg core tcpdump -Z root -i any -nn -U -w "$TOPO_DIR/core.pcap" 'icmp and net 198.18.0.0/16' >/dev/null 2>&1
sleep 1
elapsed() { awk -v now="$(date +%s.%N)" -v since="$1" 'BEGIN { printf "%.3f", now - since }'; }
setup_s=$(elapsed "$start_setup")

# Every host to every other host, one destination after the other; a line per pair:
# "SRC DST SECONDS" (or "SRC DST never").
start=$(date +%s.%N)
host_pids=()
for i in $(seq 1 "$SITES"); do
  in_ns h$i python3 - "$i" "$SITES" "$TRIES" > "$TOPO_DIR/pairs.$i" 2>&1 <<'PY' &
import subprocess, sys, time
me, sites, tries = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for other in range(1, sites + 1):
    if other == me:
        continue
    first = time.monotonic()
    for _ in range(tries):
        if subprocess.run(["ping", "-c1", "-W1", f"198.18.{other}.10"], stdout=subprocess.DEVNULL).returncode == 0:
            print(me, other, round(time.monotonic() - first, 3), flush=True)
            break
    else:
        print(me, other, "never", flush=True)
PY
  host_pids+=($!); TOPO_PIDS+=($!)
done
for pid in "${host_pids[@]}"; do wait "$pid"; done
complete_s=$(elapsed "$start")
sleep 0.5

cat "$TOPO_DIR"/pairs.* > "$TOPO_DIR/pairs.txt"
pairs=$(( SITES * (SITES - 1) ))
answered=$(awk '$3 != "never"' "$TOPO_DIR/pairs.txt" | wc -l)
read -r p50 p99 max <<< "$(awk '$3 != "never" { print $3 }' "$TOPO_DIR/pairs.txt" | sort -n | awk '
  { v[NR] = $1 } END { if (NR == 0) { print "- - -"; exit }
  i50 = int(NR * 0.50 + 0.5); i99 = int(NR * 0.99 + 0.5); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
  print v[i50], v[i99], v[NR] }')"
# The gateways' metrics summed: counters, and where a new tunnel's time went (means of
# ted_discovery_seconds and ted_tunnel_setup_seconds by how).
read -r probes retransmits discoveries replies discovery_mean initiated_mean initiated carried_mean carried held released held_dropped overflows send_errors ignored <<< "$(
  python3 - "$TOPO_DIR" "$SITES" <<'PY'
import socket, sys
from collections import defaultdict
total = defaultdict(float)
for i in range(1, int(sys.argv[2]) + 1):
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(f"{sys.argv[1]}/g{i}.sock"); s.sendall(b"metrics\n")
        text = b"".join(iter(lambda: s.recv(65536), b"")).decode()
    except OSError:
        continue
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            total[key] += float(value)
def mean(name, labels=""):
    count = total[f"{name}_count{labels}"]
    return (f"{total[f'{name}_sum{labels}'] / count:.3f}" if count else "-"), int(count)
prefix = 'ted_held_dropped_total{reason="'
held_dropped = ",".join(f"{k[len(prefix):-2]}:{int(v)}" for k, v in sorted(total.items()) if k.startswith(prefix) and v)
initiated, carried = mean("ted_tunnel_setup_seconds", '{how="initiated"}'), mean("ted_tunnel_setup_seconds", '{how="carried"}')
print(int(total["ted_probes_sent_total"]), int(total["ted_probes_retransmitted_total"]), int(total["ted_discoveries_total"]),
      int(total["ted_responder_replies_total"]), mean("ted_discovery_seconds")[0], *initiated, *carried,
      int(total["ted_held_packets_total"]), int(total["ted_held_released_total"]),
      held_dropped or "none", int(total["ted_receive_overflows_total"]),
      int(sum(v for k, v in total.items() if k.startswith("ted_send_errors_total"))),
      int(sum(v for k, v in total.items() if k.startswith("ted_responses_ignored_total"))))
PY
)"
ike_sas=0; child_sas=0
for i in $(seq 1 "$SITES"); do
  ike_sas=$(( ike_sas + $(sas $i | grep -c "ESTABLISHED") ))
  child_sas=$(( child_sas + $(sas $i | grep -c "INSTALLED") ))
done
rss() { ps -o rss= -p "$1" 2>/dev/null | tr -d ' '; }
ted_rss=$(for i in $(seq 1 "$SITES"); do rss "${TED_PID[$i]}"; done | sort -n | tail -1)
charon_rss=$(for i in $(seq 1 "$SITES"); do rss "${CHARON_PID[$i]}"; done | sort -n | tail -1)
cleartext=$(tcpdump -nn -r "$TOPO_DIR/core.pcap" 'icmp[icmptype] = icmp-echo or icmp[icmptype] = icmp-echoreply' 2>/dev/null | wc -l)

echo
echo "| sites | ordered pairs | answered | per-pair p50 | p99 | max | complete after | probes (retransmits) | discoveries | responder replies | IKE SAs (both ends) | child SAs | ted RSS max | charon RSS max | setup |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf "| %d | %d | %d | %s s | %s s | %s s | %.1f s | %d (%d) | %d | %d | %d | %d | %d KiB | %d KiB | %.0f s |\n" \
  "$SITES" "$pairs" "$answered" "$p50" "$p99" "$max" "$complete_s" "$probes" "$retransmits" "$discoveries" "$replies" \
  "$ike_sas" "$child_sas" "${ted_rss:-0}" "${charon_rss:-0}" "$setup_s"
echo
echo "Where a new tunnel's time went (means over all gateways): discovery (first probe to answer) $discovery_mean s;" \
  "hand-off to child SA up: $initiated_mean s for $initiated tunnels this gateway initiated," \
  "$carried_mean s for $carried carried by a child already there or the peer's." \
  "First packets: $held held, $released released into their tunnel, dropped by reason: $held_dropped." \
  "Where answers could die: $overflows dropped by the kernel on arrival (receive buffer full), $send_errors sends refused," \
  "$ignored set aside by the initiator."
awk '$3 == "never" { print "never answered: 198.18." $1 ".10 -> 198.18." $2 ".10" }' "$TOPO_DIR/pairs.txt" | head -20
echo
check "every ordered pair answered ($answered of $pairs)" test "$answered" -eq "$pairs"
check "nothing in clear on the core: no echo request or reply between the sites ($cleartext)" test "$cleartext" -eq 0
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
