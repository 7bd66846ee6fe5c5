#!/bin/bash
# Runs INSIDE the systemd guest of scripts/e2e-system.sh, started by e2e-driver.service once
# the Debian root has booted: gwA is this system (ted.service from the package, charon-systemd's
# strongswan.service), e2e-topology.service built its neighbours at boot (hostA, gwB and
# hostB as network namespaces; a capture on the transit bridge from before the first
# packet). gwB runs its own charon and ted (the package's binary) here. Every check reads
# systemctl, journalctl, tcpdump captures, `ip -s xfrm state`, nft or swanctl.
#   system-guest.sh OUT-DIR BUDGET-S
# Writes PASS/FAIL lines to OUT-DIR/checks.txt.
set -u
OUT=$1 BUDGET=${2:-600}
W=/var/tmp/e2e
mkdir -p "$W"
exec >> "$OUT/checks.txt" 2>&1   # the host follows this file
start=$(date +%s)
passed=0 failed=0
t() { echo "  [guest +$(( $(date +%s) - start )) s] $*"; }
check() {   # check NAME COMMAND...
  local name=$1; shift
  if "$@" > "$W/check.out" 2>&1; then passed=$((passed + 1)); echo "PASS: $name"
  else failed=$((failed + 1)); echo "FAIL: $name"; tail -8 "$W/check.out" | sed 's/^/      /'; fi
}
# retry N CMD...: CMD until it succeeds, at most N times, 0.5 s apart.
retry() { local n=$1 i; shift; for i in $(seq 1 "$n"); do "$@" && return 0; sleep 0.5; done; return 1; }
budget_left() { [ $(( $(date +%s) - start )) -le "$BUDGET" ]; }
in_ns() { local n=$1; shift; ip netns exec "$n" "$@"; }
PSK=$(cat "$OUT/psk")

save() {
  mkdir -p "$OUT/logs"
  { systemctl --no-pager status ted strongswan ted-boot-guard nftables; } > "$OUT/logs/systemctl.txt" 2>&1
  journalctl --no-pager -b -u ted -u ted-boot-guard -u strongswan -o short-monotonic > "$OUT/logs/journal.txt" 2>&1
  journalctl --no-pager -b -p warning -o short-monotonic > "$OUT/logs/journal-warnings.txt" 2>&1
  { ip -s xfrm state; ip xfrm policy; nft list ruleset; ip rule; swanctl --list-sas; swanctl --list-conns; } > "$OUT/logs/gwA.txt" 2>&1
  cp -r "$W"/. "$OUT/logs/" 2>/dev/null
}
finish() {
  save
  [ -n "${GB_TED:-}" ] && kill "$GB_TED" 2>/dev/null
  [ -n "${GB_CHARON:-}" ] && kill "$GB_CHARON" 2>/dev/null
  echo "guest: $passed passed, $failed failed"
  sync
}
trap finish EXIT

t "waiting for the boot to finish"
timeout 240 systemctl is-system-running --wait > "$W/running.txt" 2>&1
t "system: $(cat "$W/running.txt")"

# --- boot ----------------------------------------------------------------------------------
check "boot: ted.service is active (started by systemd from the shipped unit)" systemctl is-active --quiet ted.service
check "boot: ted-boot-guard.service ran before the network (active)" systemctl is-active --quiet ted-boot-guard.service
check "boot: strongswan.service (charon-systemd) is active" systemctl is-active --quiet strongswan.service
check "boot: the boot guard is lifted once ted is up (no table inet ted-boot-guard)" bash -c '! nft list table inet ted-boot-guard'
ted_traps() { ip xfrm policy | grep -c "priority 21275[0-9]\{5\}"; }
check "boot: ted's XFRM traps are in the kernel ($(ted_traps) policies in ted's band)" test "$(ted_traps)" -gt 0
check "boot: ted set net.core.xfrm_acq_expires to 3 under ProtectKernelTunables ($(sysctl -n net.core.xfrm_acq_expires))" \
  test "$(sysctl -n net.core.xfrm_acq_expires)" = 3
ted_conns() { swanctl --list-conns 2>/dev/null | grep -c "^ted-"; }
check "boot: ted loaded its connections into charon ($(ted_conns) ted-* in swanctl --list-conns)" test "$(ted_conns)" -gt 0
check "boot: ted's log has no warning or error (journalctl -u ted -p warning)" \
  bash -c '! journalctl -b -u ted -p warning --no-pager -q | grep .'

# The unit's exposure as systemd rates it (docs/OPERATOR.md states the score).
systemd-analyze security ted.service > "$OUT/security.txt" 2>&1
echo "  systemd-analyze security ted: $(grep -o 'Overall exposure level for ted.service: .*' "$OUT/security.txt")"

# --- gwB: its own charon and ted in its namespace --------------------------------------------
cat > "$W/gB.strongswan.conf" <<EOF
charon {
  load_modular = yes
  install_routes = no
  filelog { gB { path = $W/gB.charon.log
    default = 1
    ike = 2 } }
  plugins {
    include /etc/strongswan.d/charon/*.conf
    vici { socket = unix://$W/gB.vici }
    stroke { load = no }
    kernel-libipsec { load = no }
  }
}
EOF
cat > "$W/gB.yaml" <<EOF
identity: 198.51.100.2
listen: 0.0.0.0:1500
policy:
  - permit ip 198.18.2.0/24 198.18.0.0/15
peers: [198.51.100.0/24]
dataplane: { traps: true, intercept: true, intercept-port: 1501 }
ike: { vici: $W/gB.vici, psk: "$PSK" }
control-socket: $W/gB.sock
EOF
in_ns gB unshare -m sh -c "mount -t tmpfs tmpfs /run && STRONGSWAN_CONF=$W/gB.strongswan.conf exec /usr/lib/ipsec/charon" > "$W/gB.charon.out" 2>&1 &
GB_CHARON=$!
retry 120 test -S "$W/gB.vici"
in_ns gB /usr/bin/ted daemon --config "$W/gB.yaml" >> "$W/gB.ted.log" 2>&1 &
GB_TED=$!
retry 240 test -S "$W/gB.sock" || echo "gwB's ted did not start: $(tail -3 "$W/gB.ted.log")"
t "gwB up"

# --- a tunnel forms ----------------------------------------------------------------------------
esp_out() { ip -s xfrm state | awk '/^src 198.51.100.1 dst 198.51.100.2/ { m = 1; next } /^src / { m = 0 }
  m && /^[ \t]+[0-9]+\(bytes\), [0-9]+\(packets\)/ { sub(/.*\), /, ""); n += $0 + 0 } END { print n + 0 }'; }
ping_b() { in_ns hA ping -c 1 -W 2 198.18.2.20 >/dev/null; }
check "tunnel: hostA reaches hostB through gwA (ping answered)" retry 40 ping_b
before=$(esp_out); in_ns hA ping -c 5 -i 0.3 -W 2 198.18.2.20 > "$W/ping5.txt" 2>&1; after=$(esp_out)
check "tunnel: gwA's kernel ESP SA to gwB counted hostA's 5 pings ($before, then $after packets; ip -s xfrm state)" test "$after" -ge $((before + 5))
check "tunnel: swanctl --list-sas on gwA: an IKE SA with 198.51.100.2, a child INSTALLED" \
  bash -c "swanctl --list-sas | grep -q '198.51.100.2\[' && swanctl --list-sas | grep -q INSTALLED"
# The capture on the transit bridge ran from before gwA forwarded anything (e2e-topology.service).
cleartext() { tcpdump -nn -r "$W/transit.pcap" "$1" 2>/dev/null | wc -l; }
check "boot: hostA's flow to hostB udp/7000, sent from the moment its link was up, never crossed in clear ($(cleartext 'udp port 7000') packets on the transit)" \
  test "$(cleartext 'udp port 7000')" -eq 0
check "boot: that flow crossed as ESP once the tunnel was up ($(cleartext esp) ESP packets on the transit)" test "$(cleartext esp)" -gt 0

# The negative control (E2E_SYSTEM_NO_GUARD=1): the boot checks only.
[ -e "$OUT/boot-only" ] && { t "boot checks only"; exit 0; }

# --- ted started while charon is down --------------------------------------------------------
budget_left || { echo "FAIL: guest budget spent"; failed=$((failed + 1)); exit 1; }
t "charon down, ted restarted"
systemctl mask --runtime --now strongswan.service > "$W/mask.txt" 2>&1
systemctl restart ted.service > "$W/restart-nocharon.txt" 2>&1
sleep 5
check "charon late: ted.service active 5 s after starting with charon down ($(systemctl is-active ted))" systemctl is-active --quiet ted.service
check "charon late: ted's traps are in place with charon down ($(ted_traps))" test "$(ted_traps)" -gt 0
systemctl unmask --runtime strongswan.service > /dev/null 2>&1
systemctl start strongswan.service
conns_back() { [ "$(ted_conns)" -gt 0 ]; }
check "charon late: ted hands off once charon is up: ted-* connections in charon within 30 s" retry 60 conns_back
check "charon late: a tunnel forms (hostA reaches hostB)" retry 60 ping_b

# --- systemctl reload ted --------------------------------------------------------------------
budget_left || { echo "FAIL: guest budget spent"; failed=$((failed + 1)); exit 1; }
t "reload"
pid_before=$(systemctl show -p MainPID --value ted)
trap_count=$(ted_traps)
cp /etc/ted/ted.yaml "$W/ted.yaml.orig"
# An operator adds an entry: 198.18.1.0/24 to 203.0.113.0/24 protected too.
sed -i 's|^  - permit ip 198.18.1.0/24 198.18.0.0/15$|&\n  - permit ip 198.18.1.0/24 203.0.113.0/24|' /etc/ted/ted.yaml
systemctl reload ted.service > "$W/reload.txt" 2>&1
new_trap() { ip xfrm policy | grep -A2 "^src 198.18.1.0/24 dst 203.0.113.0/24" | grep -q "priority 21275"; }
check "reload: a changed policy is applied (a trap for 203.0.113.0/24 within 10 s)" retry 20 new_trap
check "reload: same process (MainPID $pid_before, then $(systemctl show -p MainPID --value ted))" \
  test "$(systemctl show -p MainPID --value ted)" = "$pid_before"
printf 'identity: 198.51.100.1\npolicy: [permit ip 198.18.1.0/24 nonsense]\n' > /etc/ted/ted.yaml
systemctl reload ted.service > "$W/reload-bad.txt" 2>&1
sleep 3
check "reload of an invalid file: ted keeps running on the old policy (active, same MainPID, the new trap kept)" \
  bash -c "systemctl is-active --quiet ted && [ \"\$(systemctl show -p MainPID --value ted)\" = $pid_before ] && ip xfrm policy | grep -q '^src 198.18.1.0/24 dst 203.0.113.0/24'"
check "reload of an invalid file: the error is in ted's journal with its file:line:col" \
  bash -c "journalctl -b -u ted --no-pager -q | grep -q '/etc/ted/ted.yaml:2:'"
cp "$W/ted.yaml.orig" /etc/ted/ted.yaml
systemctl reload ted.service > /dev/null 2>&1
sleep 2

# --- strongSwan reloaded and restarted ----------------------------------------------------------
budget_left || { echo "FAIL: guest budget spent"; failed=$((failed + 1)); exit 1; }
t "strongswan reload/restart"
terminate_ted_sas() { local ike; for ike in $(swanctl --list-sas 2>/dev/null | grep -o '^ted-[0-9a-f-]*' | sort -u); do
  swanctl --terminate --ike "$ike" --timeout 10 > /dev/null 2>&1; done; }
conns_within() {   # conns_within SECONDS: ted-* connections present within that time
  local n=$(( $1 * 10 )) i; for i in $(seq 1 "$n"); do [ "$(ted_conns)" -gt 0 ] && return 0; sleep 0.1; done; return 1; }
# From a settled ted (the reload checks may have restarted it): its connections in charon,
# and the same process before and after, so a restart cannot pass for a repair.
settled() { systemctl is-active --quiet ted && [ "$(ted_conns)" -gt 0 ]; }
retry 60 settled
ted_pid=$(systemctl show -p MainPID --value ted)
same_ted() { [ "$(systemctl show -p MainPID --value ted)" = "$ted_pid" ]; }
systemctl reload strongswan.service > "$W/ss-reload.txt" 2>&1
check "systemctl reload strongswan: ted's connections back in charon within 2 s, by the same ted" \
  bash -c "$(declare -f ted_conns conns_within same_ted); ted_pid=$ted_pid; conns_within 2 && same_ted"
terminate_ted_sas
check "after the strongswan reload a new tunnel forms (hostA reaches hostB)" retry 16 ping_b
systemctl restart strongswan.service > "$W/ss-restart.txt" 2>&1
check "systemctl restart strongswan: ted's connections back in charon within 2 s, by the same ted" \
  bash -c "$(declare -f ted_conns conns_within same_ted); ted_pid=$ted_pid; conns_within 2 && same_ted"
check "after the strongswan restart a new tunnel forms (hostA reaches hostB)" retry 16 ping_b

# --- nftables restarted, XFRM policies flushed ---------------------------------------------------
budget_left || { echo "FAIL: guest budget spent"; failed=$((failed + 1)); exit 1; }
t "nftables restart, xfrm flush"
ted_tables() { nft list tables 2>/dev/null | grep -cE " (ted|ted-guard|ted-hold)$"; }
tables_before=$(ted_tables)
# A protected flow nobody tunnels (198.18.3.0/24 is routed via gwB): on the transit it can
# only be cleartext, i.e. a leak. Sent all through both episodes.
in_ns tr tcpdump -Z root -i br0 -nn -U -w "$W/heal.pcap" "host 198.18.3.30" > /dev/null 2> "$W/heal.tcpdump.log" &
heal_cap=$!
retry 40 grep -q "listening on" "$W/heal.tcpdump.log"
in_ns hA bash -c 'for i in $(seq 1 60); do echo x > /dev/udp/198.18.3.30/9999; sleep 0.1; done' 2>/dev/null &
flow=$!
systemctl restart nftables.service > "$W/nft-restart.txt" 2>&1
tables_within() { local i; for i in $(seq 1 10); do [ "$(ted_tables)" -ge "$tables_before" ] && return 0; sleep 0.1; done; return 1; }
check "systemctl restart nftables: ted's nftables tables ($tables_before) back within 1 s" tables_within
ip xfrm policy flush
traps_within() { local i; for i in $(seq 1 10); do [ "$(ted_traps)" -ge "$trap_count" ] && return 0; sleep 0.1; done; return 1; }
check "ip xfrm policy flush: ted's traps ($trap_count) back within 1 s" traps_within
wait "$flow"; sleep 0.5; kill "$heal_cap"; wait "$heal_cap" 2>/dev/null
# The flow's own datagrams (udp/9999); ted's probes for it (udp/500, exchange 240) carry its
# addresses in clear by design and are not the flow.
check "meanwhile no packet of a protected flow crossed in clear ($(tcpdump -nn -r "$W/heal.pcap" 'udp dst port 9999' 2>/dev/null | wc -l) to 198.18.3.30:9999 on the transit)" \
  test "$(tcpdump -nn -r "$W/heal.pcap" 'udp dst port 9999' 2>/dev/null | wc -l)" -eq 0
check "after the flush hostA reaches hostB again" retry 16 ping_b

# --- upgrade -------------------------------------------------------------------------------------
budget_left || { echo "FAIL: guest budget spent"; failed=$((failed + 1)); exit 1; }
t "upgrade"
# The checks above may have left gwA without its layer (until self-healing lands): start
# from a clean state, as an operator would, so the upgrade is judged on its own.
if ! ping_b; then
  terminate_ted_sas
  systemctl restart ted.service > /dev/null 2>&1
  retry 16 ping_b || echo "  (no tunnel before the upgrade, even after a restart of ted)"
fi
new_version=$(dpkg-deb -f "$OUT/ted-upgrade.deb" Version)
pid_before=$(systemctl show -p MainPID --value ted)
ike_before=$(swanctl --list-sas 2>/dev/null | grep -o '^ted-[^:]*: #[0-9]*' | sort | head -1)
in_ns hA ping -c 50 -i 0.2 -W 2 198.18.2.20 > "$W/upgrade.ping" 2>&1 &
ping_pid=$!
sleep 1
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$OUT/ted-upgrade.deb" > "$W/upgrade.txt" 2>&1
upgrade_status=$?
wait "$ping_pid"
check "upgrade: apt-get install of $new_version exits 0" test $upgrade_status -eq 0
check "upgrade: dpkg says $new_version is installed" bash -c "dpkg-query -W -f='\${Version}' ted | grep -qx '$new_version'"
check "upgrade: ted restarted on the new binary (MainPID $pid_before, then $(systemctl show -p MainPID --value ted); active)" \
  bash -c "systemctl is-active --quiet ted && [ \"\$(systemctl show -p MainPID --value ted)\" != $pid_before ] && ! ls -l /proc/\$(systemctl show -p MainPID --value ted)/exe | grep -q deleted"
check "upgrade: ted --version prints $new_version" bash -c "ted --version | grep -q '^$new_version '"
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$W/upgrade.ping")
check "upgrade: the tunnel was kept (IKE SA '$ike_before' still there; ${received:-0} of 50 pings answered, at most 2 lost)" \
  bash -c "[ -n '$ike_before' ] && swanctl --list-sas | grep -q '^$ike_before' && [ ${received:-0} -ge 48 ]"

# --- apt purge ----------------------------------------------------------------------------------
budget_left || { echo "FAIL: guest budget spent"; failed=$((failed + 1)); exit 1; }
t "purge"
dpkg -L ted > "$W/ted.files" 2>/dev/null
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q ted > "$W/purge.txt" 2>&1
check "purge: apt-get purge ted exits 0" test $? -eq 0
check "purge: no ted process left" bash -c '! pgrep -x -f "/usr/bin/ted daemon --config /etc/ted/ted.yaml"'
check "purge: nothing of ted's in gwA's kernel XFRM ($(ted_traps) policies in ted's band)" test "$(ted_traps)" -eq 0
check "purge: no ted nftables table (nor the boot guard) left" bash -c '! nft list tables | grep -q " ted"'
check "purge: no ted ip rule or iptables rule left" \
  bash -c '! ip rule | grep -qE "fwmark 0x7ed|lookup 2029" && ! iptables-save 2>/dev/null | grep -v "^#" | grep -qi ted'
check "purge: no ted-* connection or SA left in charon" bash -c '! swanctl --list-conns | grep -q "^ted-" && ! swanctl --list-sas | grep -q "^ted-"'
check "purge: net.core.xfrm_acq_expires restored to $(cat "$OUT/acq_expires_before") ($(sysctl -n net.core.xfrm_acq_expires))" \
  test "$(sysctl -n net.core.xfrm_acq_expires)" = "$(cat "$OUT/acq_expires_before")"
check "purge: no file of ted's left (dpkg -L before, /etc/ted, /var/lib/ted, /var/log/ted, /run/ted, unit links)" \
  bash -c 'left=0; while read -r f; do [ -d "$f" ] && continue; [ -e "$f" ] || [ -L "$f" ] && { echo "left: $f"; left=1; }; done < '"$W/ted.files"'
    for d in /etc/ted /var/lib/ted /var/log/ted /run/ted; do [ -e "$d" ] && { echo "left: $d"; left=1; }; done
    find /etc/systemd /run/systemd/system -name "ted*" 2>/dev/null | grep . && left=1
    systemctl list-unit-files "ted*" --no-legend | grep . && left=1
    [ $left = 0 ]'
t "done"
[ $failed -eq 0 ]
