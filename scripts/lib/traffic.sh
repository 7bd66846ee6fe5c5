# Traffic from hostA and captures on the transit bridge (namespace tr, br0), as the
# end-to-end suites read them (source after topology.sh and checks.sh; bash). A slower
# machine (the kernel-ESP guest) sets WAIT_SCALE to stretch every wait.
WAIT_SCALE=${WAIT_SCALE:-1}
scaled() { awk -v s="$WAIT_SCALE" -v t="$1" 'BEGIN { printf "%g", s * t }'; }

# capture_ready LOG: wait (at most 5 s, scaled) until tcpdump says it is capturing.
capture_ready() {
  local i; for i in $(seq 1 $(( 50 * WAIT_SCALE ))); do grep -q "listening on" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1
}
# capture_start NAME [FILTER] / capture_stop: everything crossing the transit bridge (or what
# FILTER keeps), into NAME.pcap.
capture_start() {
  bg tr tcpdump -Z root --immediate-mode -i br0 -U -w "$TOPO_DIR/$1.pcap" ${2:+"$2"} >/dev/null 2>"$TOPO_DIR/$1.tcpdump.log"; CAPTURE_PID=$!
  capture_ready "$TOPO_DIR/$1.tcpdump.log"
}
capture_stop() { sleep "$(scaled 0.3)"; kill "$CAPTURE_PID" 2>/dev/null; wait "$CAPTURE_PID" 2>/dev/null; }
# captured NAME FILTER: packets of NAME.pcap that FILTER matches.
captured() { tcpdump -nn -r "$TOPO_DIR/$1.pcap" "$2" 2>/dev/null | wc -l; }

tcp_to() { in_ns hA nc -z -w "$WAIT_SCALE" "$1" "$2"; }
no_tcp_to() { ! tcp_to "$@"; }
ping_to() { in_ns hA ping -c 1 -W "$WAIT_SCALE" "$1"; }
received() { awk '/packets transmitted/ { print $4 }' "$1"; }
# ike_sa_with SITE PEER: an established IKE SA on gwSITE with PEER.
ike_sa_with() { sas "$1" | grep -E "ESTABLISHED" -B1 -A1 | grep -q "$2"; }
# child_ts SITE PEER LOCAL REMOTE: gwSITE's child SA towards PEER has exactly these selectors.
# (Local and remote of one child together: swapped or mixed children do not pass.)
child_ts() { sas "$1" | awk -v peer="ted-${2//./-}-" '/^[^ ]/ { in_peer = index($0, peer) == 1 }
    in_peer && $1 == "local" { local_ts = $2 } in_peer && $1 == "remote" && local_ts != "" { print local_ts " === " $2; local_ts = "" }' \
    > "$TOPO_DIR/sas.txt"
  grep -qE "^$3 === $4\$" "$TOPO_DIR/sas.txt"; }

# first_connect NAME HOST PORT [FILTER]: a TCP connect() from hostA, its SYNs captured on
# hostA's link and on the transit (what FILTER keeps of it); connect_ms NAME gives the
# milliseconds to connected (or "failed"), hostA_syns NAME the SYNs hostA sent.
first_connect() {
  capture_start "$1" "${4:-}"
  bg hA tcpdump -Z root --immediate-mode -i eth0 -U -w "$TOPO_DIR/$1.hostA.pcap" "tcp[tcpflags] & tcp-syn != 0 and dst host $2" \
    >/dev/null 2>"$TOPO_DIR/$1.hostA.tcpdump.log"
  local hostA_capture=$!
  capture_ready "$TOPO_DIR/$1.hostA.tcpdump.log"
  in_ns hA /usr/bin/python3 -c "
import socket, sys, time
start = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print(round((time.monotonic() - start) * 1000))
except OSError:
    print('failed')" "$2" "$3" "$(scaled 5)" > "$TOPO_DIR/$1.ms"
  sleep "$(scaled 0.3)"; kill "$hostA_capture" 2>/dev/null; wait "$hostA_capture" 2>/dev/null
  capture_stop
}
hostA_syns() { tcpdump -nn -r "$TOPO_DIR/$1.hostA.pcap" 2>/dev/null | wc -l; }
connect_ms() { cat "$TOPO_DIR/$1.ms"; }
