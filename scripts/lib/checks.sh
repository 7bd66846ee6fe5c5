# What both end-to-end suites share (source after topology.sh; bash): prerequisites, counted checks, a
# ted per gateway started and stopped by PID, retries, charon's SAs.

# require NAME TOOL...: root, the tools and $TED, or stop: a failure in CI, a skip elsewhere.
require() {
  local name=$1 missing=() tool; shift
  [ "$(id -u)" -eq 0 ] || missing+=("root")
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ -x "$TED" ] || missing+=("$TED (run swift build)")
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "$name: missing prerequisites: ${missing[*]}"
  if [ -n "${CI:-}" ]; then echo "0 passed, 1 failed"; exit 1; fi
  echo "$name: skipped (set CI to make this a failure)"; exit 0
}

# Capture filters for ISAKMP, written from the wire format (docs/WIRE-FORMAT.md), not read
# from ted's code, so a check stays an independent witness: port 500, and the exchange type
# at byte 18 of the ISAKMP header (26 of the UDP datagram).
ISAKMP_PORT=500
# exchange TYPE: matches ISAKMP messages of exchange TYPE (a number, or one of the names below).
exchange() { echo "udp[26] = $1"; }
TED_PROBE=0xf0 TED_RESPONSE=0xf1 TED_CHALLENGE=0xf2 IKE_SA_INIT=34
# TED probes on their way to port 500.
PROBES="udp dst port $ISAKMP_PORT and $(exchange $TED_PROBE)"

passed=0; failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

declare -A TED_PID
# ted_start SITE: ted on gwSITE with $TOPO_DIR/gSITE.yaml, until its control socket is there.
ted_start() {
  local site=$1
  "${OWNED[@]}" ip netns exec "$(ns g$site)" "$TED" daemon --config "$TOPO_DIR/g$site.yaml" >> "$TOPO_DIR/g$site.ted.log" 2>&1 &
  TED_PID[$site]=$!; TOPO_PIDS+=($!)
  local i
  for i in $(seq 1 100); do [ -S "$TOPO_DIR/g$site.sock" ] && return 0; sleep 0.1; done
  echo "ted on g$site did not start:"; tail -5 "$TOPO_DIR/g$site.ted.log"; return 1
}
# ted_stop SITE: SIGTERM, and ted must exit 0.
ted_stop() {
  local site=$1 pid=${TED_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  local i; for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  wait "$pid"; local status=$?
  TED_PID[$site]=""
  [ "$status" -eq 0 ] || { echo "ted on g$site exited with $status on SIGTERM"; return 1; }
}

# retry N CMD...: run until it succeeds, at most N times, 0.3 s apart.
# ted_yaml SITE POLICY-LINES...: gwSITE's ted configuration in the suites' shape, on stdout.
# What differs between suites comes in variables: TED_DISCOVERY (the discovery section's
# body), TED_ACQUIRE_EXPIRES, TED_PEERS (a YAML list, or empty for none), TED_IKE (ike
# lines after vici: credentials, timeouts) and TED_PROPOSAL.
ted_yaml() {
  local site=$1 line; shift
  echo "identity: 198.51.100.$(( $(printf '%d' "'$site") - 64 ))"
  echo "listen: 0.0.0.0:1500"
  echo "advertise-port: 1500"
  echo "policy:"
  for line in "$@"; do echo "  - $line"; done
  echo "discovery: { $TED_DISCOVERY }"
  echo "responder: { rate: 1000, burst: 1000 }"
  echo "dataplane: { traps: true, intercept: true, intercept-port: 1501, acquire-expires: $TED_ACQUIRE_EXPIRES }"
  [ -z "${TED_PEERS:-}" ] || echo "peers: $TED_PEERS"
  echo "ike:"
  echo "  vici: $TOPO_DIR/g$site.vici"
  [ -z "${TED_IKE:-}" ] || printf '%s\n' "$TED_IKE"
  echo "  proposals: [$TED_PROPOSAL]"
  echo "  esp-proposals: [aes128-sha256]"
  echo "control-socket: $TOPO_DIR/g$site.sock"
}
retry() { local n=$1; shift; local i; for i in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.3; done; return 1; }
sas() { swanctl --list-sas --uri "unix://$TOPO_DIR/g$1.vici" 2>/dev/null; }
