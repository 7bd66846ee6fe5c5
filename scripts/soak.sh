#!/usr/bin/env bash
# Soak: a ted responder in a network namespace under N hostile datagrams (default 100000)
# while a legitimate initiator probes it every 10 ms; then the forged flood of issue 21
# (valid probes naming the initiator's identity from its own site, sent by a third host off
# every probe's path, at 10x every default bucket) while a real ted initiator discovers
# through it. Prints what it measured and "N passed, N failed" last; exits 1 on any
# failure. Root; Debian 12. SOAK_FLOOD_SECONDS (8) and SOAK_FLOOD_RATE (0: as fast as the
# flooder sends) size the flood.
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
TED=${TED:-$PWD/.build/debug/ted}
if [ "$(id -u)" -ne 0 ] || [ ! -x "$TED" ]; then
  echo "soak: needs root and $TED"
  if [ -n "${CI:-}" ]; then echo "0 passed, 1 failed"; exit 1; fi
  echo "soak: skipped (set CI to make this a failure)"; exit 0
fi

source scripts/lib/reap.sh
run_mark tedsoak   # what killed soak runs left
tag=tedsoak$$
R=$tag-r; A=$tag-a; F=$tag-f
dir=$(mktemp -d /tmp/ted-soak.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 0.3
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  ip netns del "$R" 2>/dev/null; ip netns del "$A" 2>/dev/null; ip netns del "$F" 2>/dev/null
}
trap cleanup EXIT
passed=0; failed=0
check() { local what=$1; shift; if "$@"; then echo "PASS: $what"; passed=$((passed + 1)); else echo "FAIL: $what"; failed=$((failed + 1)); fi; }

ip netns add "$R"; ip netns add "$A"; ip netns add "$F"
for ns in "$R" "$A" "$F"; do
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
ip link add "${tag}r" type veth peer name "${tag}a"
ip link set "${tag}r" netns "$R" mtu 9000; ip link set "${tag}a" netns "$A" mtu 9000
ip netns exec "$R" ip addr add 198.51.100.1/24 dev "${tag}r"; ip netns exec "$R" ip link set "${tag}r" up
ip netns exec "$A" ip addr add 198.51.100.2/24 dev "${tag}a"; ip netns exec "$A" ip link set "${tag}a" up
ip netns exec "$R" ip route add default via 198.51.100.2
ip netns exec "$R" ip addr add 198.18.96.1/24 dev "${tag}r"    # on-link, but nobody answers ARP there
# The flooder: a link of its own to the responder, so it sees nothing sent towards A.
ip link add "${tag}g" type veth peer name "${tag}f"
ip link set "${tag}g" netns "$R"; ip link set "${tag}f" netns "$F"
ip netns exec "$R" ip addr add 203.0.113.1/30 dev "${tag}g"; ip netns exec "$R" ip link set "${tag}g" up
ip netns exec "$F" ip addr add 203.0.113.2/30 dev "${tag}f"; ip netns exec "$F" ip link set "${tag}f" up
ip netns exec "$F" ip route add default via 203.0.113.1
# Destinations whose sends fail, one errno class each.
ip netns exec "$R" ip route add unreachable 198.18.99.0/24      # EHOSTUNREACH
ip netns exec "$R" ip route add prohibit 198.18.98.0/24         # EACCES
ip netns exec "$R" nft -f - <<NFT
table inet soak {
  counter to_victim {}
  chain out {
    type filter hook output priority 0; policy accept;
    ip daddr 198.51.100.2 udp sport 500 counter name to_victim
    ip daddr 198.18.97.0/24 drop
  }
}
NFT

{
  echo "identity: 198.51.100.1"
  echo "listen: 0.0.0.0:500"
  echo "policy:"
  echo "  - permit ip 198.18.2.0/24 198.18.0.0/15"
  for i in $(seq 10 30); do echo "  - permit udp 198.18.$i.0/24 198.18.0.0/15"; done
  echo "responder: { offer-all: true }"
  echo "control-socket: $dir/ted.sock"
  echo "metrics: 127.0.0.1:9500"
} > "$dir/ted.yaml"
( umask 000; exec "${OWNED[@]}" ip netns exec "$R" "$TED" daemon --config "$dir/ted.yaml" ) > "$dir/ted.log" 2>&1 &
ted_pid=$!; pids+=($ted_pid)
for _ in $(seq 1 100); do [ -S "$dir/ted.sock" ] && break; sleep 0.1; done
rss() { awk '/VmRSS/ { print $2 }' "/proc/$ted_pid/status" 2>/dev/null || echo 0; }
metric() { ip netns exec "$R" python3 -c "
import urllib.request, sys
text = urllib.request.urlopen('http://127.0.0.1:9500/metrics', timeout=3).read().decode()
print(sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(sys.argv[1])))" "$1"; }

# Local surfaces.
mode=$(stat -c %a "$dir/ted.sock" 2>/dev/null)
check "control socket is 0600 though ted started under umask 000 (got $mode)" test "$mode" = 600
nobody_status() { ip netns exec "$R" setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2)
try:
    s.connect(sys.argv[1]); s.sendall(b'status\n'); print(len(s.recv(100)))
except OSError:
    print(0)" "$dir/ted.sock"; }
check "control socket refuses another user" test "$(nobody_status)" = 0
root_status() { "$TED" status --socket "$dir/ted.sock" --json | grep -q identity; }
check "control socket answers root" root_status
reuse_bind() { ip netns exec "$R" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(('127.0.0.1', 500)); print('bound')
except OSError as e:
    print('refused')"; }
check "no other socket can bind ted's port beside it (SO_REUSEADDR)" test "$(reuse_bind)" = refused
idle_metrics() { ip netns exec "$R" python3 -c "
import socket, time, urllib.request
conns = []
for _ in range(40):
    s = socket.socket(); s.settimeout(8)
    try:
        s.connect(('127.0.0.1', 9500)); conns.append(s)
    except OSError:
        pass
time.sleep(6.5)
closed = 0
for s in conns:
    try:
        closed += s.recv(1) == b''
    except OSError:
        closed += 1
ok = urllib.request.urlopen('http://127.0.0.1:9500/metrics', timeout=3).status == 200
print('ok' if closed == len(conns) and ok else 'held %d of %d' % (len(conns) - closed, len(conns)))"; }
check "metrics endpoint closes idle connections and still serves" test "$(idle_metrics)" = ok

rss_before=$(rss)
"${OWNED[@]}" ip netns exec "$A" python3 scripts/lib/soak.py legit 198.51.100.1 198.51.100.2 "$dir/stop" > "$dir/legit.json" &
legit_pid=$!; pids+=($legit_pid)
sleep 0.5
bad="0.0.0.0,127.0.0.1,224.0.0.5,255.255.255.255,198.51.100.255,169.254.9.9,198.51.100.1,198.18.99.9,198.18.98.9,198.18.97.9,198.18.96.77"
ip netns exec "$A" python3 scripts/lib/soak.py 198.51.100.1 "$N" "$bad" 198.51.100.2 "${tag}a" > "$dir/soak.json"
touch "$dir/stop"; wait "$legit_pid"
rss_after=$(rss)
cat "$dir/soak.json" "$dir/legit.json"
field() { python3 -c "
import json, sys
merged = {**json.load(open(sys.argv[1])), **json.load(open(sys.argv[2]))}
print(merged[sys.argv[3]])" "$dir/soak.json" "$dir/legit.json" "$1"; }
echo "rss_kib_before=$rss_before rss_kib_after=$rss_after"
ip netns exec "$R" python3 -c "
import urllib.request
for line in urllib.request.urlopen('http://127.0.0.1:9500/metrics', timeout=3).read().decode().splitlines():
    if line.startswith(('ted_responder_drops_total', 'ted_send_errors_total', 'ted_responder_replies_total')): print(line)"

check "ted is alive after $N hostile datagrams" kill -0 "$ted_pid"
answered_after() { ip netns exec "$A" python3 -c "
import socket, sys
sys.path.insert(0, 'scripts/lib'); import soak
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('198.51.100.2', 0)); s.settimeout(2)
s.sendto(soak.probe(77, '198.51.100.2', s.getsockname()[1]), ('198.51.100.1', 500))
print(len(s.recv(4096)) > 0)"; }
check "the TED socket is intact: a probe after the soak is answered" test "$(answered_after)" = True
for errno in EHOSTUNREACH EACCES EPERM; do
  check "send errors counted, socket kept: $errno" test "$(metric "ted_send_errors_total{errno=\"$errno\"}" | cut -d. -f1)" -gt 0
done
for why in unspecified loopback multicast broadcast linkLocal ownAddress; do
  check "identities never answered: $why refused and counted" \
    test "$(metric "ted_responder_drops_total{reason=\"identity_$why\"}" | cut -d. -f1)" -gt 0
done
check "RSS growth under 5 MiB ($rss_before -> $rss_after KiB)" test $((rss_after - rss_before)) -lt 5120
sent=$(field legit_sent); answered=$(field legit_answered)
check "legitimate probes answered: $answered of $sent" test "$answered" -ge $((sent - 2))
check "legitimate p99 under 5 ms ($(field legit_p99_ms) ms)" python3 -c "import sys; sys.exit(not float('$(field legit_p99_ms)') < 5)"
check "no response larger than 3x its probe (largest ratio $(field largest_ratio))" python3 -c "import sys; sys.exit(not 0 < float('$(field largest_ratio)') <= 3)"
check "challenges seen ($(field challenges_seen)), none larger than its probe (largest ratio $(field largest_challenge_ratio))" \
  python3 -c "import sys; sys.exit(not ($(field challenges_seen) > 0 and 0 < float('$(field largest_challenge_ratio)') <= 1))"
check "no identity got more than its target burst + rate in one second ($(field max_per_identity_per_second))" \
  test "$(field max_per_identity_per_second)" -le 300

# Issues 21 and 28: forged probes naming A's identity, from sources forged in A's site
# (198.18.0.0/16: half from its /24 198.18.1.0, half from the rest), from F (off every
# path), as fast as F sends them (SOAK_FLOOD_RATE 0; the achieved rate is printed and
# checked against 10x the global bucket and the challenge budget), while a real ted
# initiator on A (a daemon on port 500, as a gateway runs it) discovers through the
# responder (its control socket's `discover`, every destination in 198.18.2.0/24 local
# to R, nothing cached). A's target bucket is spent at once; its last half goes to
# challenges, which reach A's ted; it learns the cookie from them (the cookie names A's
# identity) and each discovery is answered from A's proven bucket without a retransmission. What the responder sends towards A (nft counts it as it leaves) stays
# within A's per-target bound: target burst + rate x t, plus the proven burst + rate x t.
flood_seconds=${SOAK_FLOOD_SECONDS:-8}; flood_rate=${SOAK_FLOOD_RATE:-0}; phase_started=$SECONDS
challenge_budget=200000; target_burst=200; target_rate=100; proven_burst=100; proven_rate=50
cat > "$dir/victim.yaml" <<YAML
identity: 198.51.100.2
listen: 0.0.0.0:500
policy:
  - permit ip 198.18.0.0/16 198.18.2.0/24
discovery: { cache-ttl: 0 }
control-socket: $dir/victim.sock
YAML
ip netns exec "$A" ip route add 198.18.2.0/24 via 198.51.100.1
ip netns exec "$R" ip route add local 198.18.2.0/24 dev lo
"${OWNED[@]}" ip netns exec "$A" "$TED" daemon --config "$dir/victim.yaml" > "$dir/victim.log" 2>&1 &
victim_pid=$!; pids+=($victim_pid)
for _ in $(seq 1 100); do [ -S "$dir/victim.sock" ] && break; sleep 0.1; done
discover() { ip netns exec "$A" timeout 8 python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b'\\n')
print(b''.join(iter(lambda: s.recv(65536), b'')).decode().strip())" "$dir/victim.sock" "discover $1"; }
challenges_before=$(metric ted_responder_challenges_total); cookies_before=$(metric ted_responder_cookies_accepted_total)
ip netns exec "$R" nft reset counter inet soak to_victim > /dev/null
counted_from=$(date +%s.%N)
"${OWNED[@]}" ip netns exec "$F" python3 scripts/lib/soak.py flood 198.51.100.1 198.51.100.2 198.18.1.0/24,198.18.0.0/16 "$flood_seconds" "$flood_rate" \
  > "$dir/flood.json" &
flood_pid=$!; pids+=($flood_pid)
sleep 1   # every bucket spent
: > "$dir/discoveries.json"
for n in $(seq 1 12); do
  kill -0 "$flood_pid" 2>/dev/null || break
  run=$(discover "tcp 198.18.1.10:40000 198.18.2.$((20 + n)):443" 2>> "$dir/probe.log")
  [ -n "$run" ] || run='{"discovered": false, "reason": "no output"}'
  echo "$run" | tr -d '\n' >> "$dir/discoveries.json"; echo >> "$dir/discoveries.json"
  sleep 0.2
done
flood_ended=$(kill -0 "$flood_pid" 2>/dev/null && echo no || echo yes)
wait "$flood_pid"
sleep 0.5
read -r to_victim_packets to_victim < <(ip netns exec "$R" nft list counter inet soak to_victim |
  awk '/packets/ { for (i = 1; i < NF; i++) { if ($i == "packets") p = $(i + 1); if ($i == "bytes") b = $(i + 1) } } END { print p, b }')
counted_seconds=$(python3 -c "import time; print(round(time.time() - $counted_from, 2))")
bound=$(python3 -c "import math; t = math.ceil($counted_seconds); print($target_burst + $target_rate * t + $proven_burst + $proven_rate * t)")
challenges=$(( $(metric ted_responder_challenges_total | cut -d. -f1) - ${challenges_before%.*} ))
cookies=$(( $(metric ted_responder_cookies_accepted_total | cut -d. -f1) - ${cookies_before%.*} ))
flood_field() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$dir/flood.json" "$1"; }
read -r tries answered first_try worst < <(python3 -c "
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = [r for r in runs if r.get('discovered')]
print(len(runs), len(ok), sum(1 for r in ok if r.get('attempts') == 1), max((r['rtt_ms'] for r in ok), default=-1))" "$dir/discoveries.json")
cat "$dir/flood.json"
achieved=$(flood_field flood_rate)
echo "flood: $achieved probes/s ($(python3 -c "print(round($achieved / $challenge_budget, 2))")x the challenge budget)" \
  "to_victim=$to_victim_packets packets ($to_victim bytes) bound=$bound in ${counted_seconds}s challenges=$challenges" \
  "cookies_accepted=$cookies discoveries=$answered/$tries first_try=$first_try slowest_ms=$worst phase_seconds=$((SECONDS - phase_started))"
check "forged flood at 10x the global bucket at least: $(flood_field flood_sent) probes, $achieved/s" \
  test "$achieved" -ge 10000
# The budget is twice what one core reads: the flood's limit is its sender, one Python raw
# socket on one core, about what the responder reads on the other (docs/RELIABILITY.md).
echo "soak: the flood's limit is its sender: $achieved/s from one Python raw socket (ended before the discoveries did: $flood_ended)"
check "the legitimate discoveries ran under the flood ($tries, each started while it was on)" test "$tries" -ge 5
check "the responder challenged the flood ($challenges) and took the initiator's cookies ($cookies)" \
  test "$challenges" -gt 0 -a "$cookies" -gt 0
check "legitimate discoveries under the flood all answered: $answered of $tries" test "$answered" -eq "$tries"
check "each without a retransmission, within one extra round trip ($first_try of $answered; slowest $worst ms)" \
  test "$first_try" -eq "$answered"
check "datagrams towards the victim within its per-target bound ($to_victim_packets <= $bound in ${counted_seconds}s)" \
  test "${to_victim_packets:-0}" -gt 0 -a "${to_victim_packets:-0}" -le "$bound"
check "ted is alive after the flood" kill -0 "$ted_pid"
if [ $failed -gt 0 ]; then tail -20 "$dir/ted.log"; tail -5 "$dir/probe.log" "$dir/victim.log" 2>/dev/null; fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
