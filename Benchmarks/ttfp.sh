#!/usr/bin/env bash
# Time to first packet, ted against strongSwan with a static peer, in the same topology
# and run, with 0 and 20 ms of one-way delay between gwA and gwB (a layer-2 delay relay:
# this kernel has no netem). Prints a markdown table. Root; installs the python vici client.
set -uo pipefail
cd "$(dirname "$0")/.."
TED=${TED:-$PWD/.build/release/ted}
RUNS=${RUNS:-5}
python3 -c "import vici" 2>/dev/null || pip install -q vici
source scripts/lib/topology.sh
trap topology_cleanup EXIT
topology_up
charon_start A && charon_start B || exit 1
for site in A B; do in_ns g$site ethtool -K outside tx off >/dev/null 2>&1; done

PSK="ted time-to-first-packet key"
ted_config() {  # SITE N POLICY [HOLD]
  cat > "$TOPO_DIR/g$1.yaml" <<CONF
identity: 198.51.100.$2
listen: 0.0.0.0:1500
advertise-port: 1500
policy: ["$3"]
peers: [198.51.100.0/24]
discovery: { retries: 3, timeout: 200ms, negative-ttl: 1s }
dataplane: { traps: true, intercept: true, intercept-port: 1501, acquire-expires: 1, trap-interface: outside }
ike: { vici: $TOPO_DIR/g$1.vici, psk: "$PSK", proposals: [aes128-sha256-modp2048], esp-proposals: [aes128-sha256] }
control-socket: $TOPO_DIR/g$1.sock
hold: ${4:-on}
CONF
}
ted_config A 1 "permit ip 198.18.1.0/24 198.18.2.0/24"
ted_config B 2 "permit ip 198.18.2.0/24 198.18.1.0/24"

static_conf() {  # SITE LOCAL REMOTE-ADDR LOCAL-TS REMOTE-TS
  cat > "$TOPO_DIR/g$1.swanctl.conf" <<CONF
connections { static { version = 2
  local_addrs = $2
  remote_addrs = $3
  proposals = aes128-sha256-modp2048
  local { auth = psk
    id = $2 }
  remote { auth = psk }
  children { static { local_ts = $4
    remote_ts = $5
    esp_proposals = aes128-sha256
    start_action = none } } } }
secrets { ike-any { secret = "$PSK" } }
CONF
}
static_conf A 198.51.100.1 198.51.100.2 198.18.1.0/24 198.18.2.0/24
static_conf B 198.51.100.2 %any 198.18.2.0/24 198.18.1.0/24

declare -A PIDS
teds_start() {
  for site in A B; do
    ip netns exec "$(ns g$site)" "$TED" daemon --config "$TOPO_DIR/g$site.yaml" >> "$TOPO_DIR/g$site.ted.log" 2>&1 &
    PIDS[$site]=$!; TOPO_PIDS+=($!)
  done
  for site in A B; do for i in $(seq 1 100); do [ -S "$TOPO_DIR/g$site.sock" ] && break; sleep 0.1; done; done
}
# A stopped ted leaves its traps and hold table (fail closed): they would block the static
# baseline's traffic, so each ted run ends with `ted cleanup`, as an uninstall would.
teds_stop() {
  for site in A B; do
    kill -TERM "${PIDS[$site]}"; wait "${PIDS[$site]}" 2>/dev/null
    ip netns exec "$(ns g$site)" "$TED" cleanup --config "$TOPO_DIR/g$site.yaml" >/dev/null 2>&1
  done
}
static_load() {
  for site in A B; do swanctl --load-all --file "$TOPO_DIR/g$site.swanctl.conf" --uri "unix://$TOPO_DIR/g$site.vici" >/dev/null 2>&1; done
  # Like ted's traps, nothing leaves in clear before the tunnel exists.
  in_ns gA nft -f - <<NFT
table inet ttfp {
  chain forward {
    type filter hook forward priority 0; policy accept;
    oifname "outside" ip saddr 198.18.1.0/24 ip daddr 198.18.2.0/24 drop
  }
}
NFT
}
static_unload() {
  in_ns gA nft delete table inet ttfp
  for site in A B; do python3 -c "
import socket, vici
s = socket.socket(socket.AF_UNIX); s.connect('$TOPO_DIR/g$site.vici'); v = vici.Session(s)
v.unload_conn({'name': 'static'})"; done
}
measure() {  # MODE [KIND] -> median ms
  python3 Benchmarks/ttfp.py "$1" "$TOPO" "$TOPO_DIR/gA.vici" "$RUNS" "${2:-udp}"
}
delay_on() {  # insert the relay between the bridge and gwB with $1 ms each way
  in_ns tr ip link set "${TOPO}tB" nomaster
  in_ns tr ip link add rl0 type veth peer name rl1
  in_ns tr ip link set rl0 master br0
  for dev in rl0 rl1 "${TOPO}tB"; do in_ns tr ip link set "$dev" up; in_ns tr ethtool -K "$dev" tx off >/dev/null 2>&1; done
  ip netns exec "$(ns tr)" python3 Benchmarks/delay_relay.py rl1 "${TOPO}tB" "$1" & TOPO_PIDS+=($!)
  sleep 0.5
}

# TCP: connect() on hostA to the first byte echoed by hostB, over a tunnel that does not
# exist yet, without delay. The SYN retransmission timeout (1 s) is what dropping costs.
echo "| TCP connect() to first echoed byte | median ms | runs (ms) |"
echo "|---|---:|---|"
tcp_row() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.loads(sys.argv[2])
print(f"| {sys.argv[1]} | {r['median_ms']} | {r['runs_ms']} |")
PY
}
static_load
tcp_row "strongSwan, static peer, tunnel already up (the floor)" "$(measure static-up tcp)"
tcp_row "strongSwan, static peer, initiated at connect(), SYN dropped until up" "$(measure static tcp)"
static_unload
teds_start; tcp_row "ted, peer discovered, first packets held (hold: on)" "$(measure ted tcp)"; teds_stop
ted_config A 1 "permit ip 198.18.1.0/24 198.18.2.0/24" off
teds_start; tcp_row "ted, peer discovered, first packets dropped (hold: off)" "$(measure ted tcp)"; teds_stop
ted_config A 1 "permit ip 198.18.1.0/24 198.18.2.0/24"
echo

echo "| one-way delay gwA-gwB | strongSwan, static peer, initiated at the first packet (median ms) | ted, peer discovered (median ms) | ted - static | one transit RTT + 5 ms |"
echo "|---:|---:|---:|---:|---:|"
for delay in 0 20; do
  [ "$delay" -gt 0 ] && delay_on "$delay"
  static_load; static=$(measure static); static_unload
  teds_start; ted=$(measure ted); teds_stop
  python3 - "$delay" "$static" "$ted" <<'PY'
import json, sys
delay, static, ted = float(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
s, t = static["median_ms"], ted["median_ms"]
print(f"| {delay:.0f} ms | {s} (runs {static['runs_ms']}) | {t} (runs {ted['runs_ms']}) | {round(t - s, 1) if s and t else 'n/a'} | {2 * delay + 5:.0f} |")
PY
done
