# Network namespaces for ted's end-to-end tests (source this file; bash).
#
#   hostA - gwA --+                     +-- gwB - hostB
#                 +--- transit (bridge) +
#                 +-- gwC - hostC
#
# Inside networks 198.18.1.0/24 (A), 198.18.2.0/24 (B), 198.18.3.0/24 (C): host .10/.20/.30,
# gateway .1. Outside link 198.51.100.0/24 through a bridge in the transit namespace:
# gwA .1, gwB .2, gwC .3. IPv6 is off everywhere. Every name carries a per-run tag
# ($TOPO), every PID started is recorded, and topology_cleanup undoes it all. A run killed
# before its cleanup leaves its long-lived processes dead with it (started "${OWNED[@]}")
# and its namespaces to the next run of the same prefix (reap.sh).

source "$(dirname "${BASH_SOURCE[0]}")/reap.sh"
TOPO_PREFIX=${TOPO_PREFIX:-ted}
if [ -z "${TOPO:-}" ]; then
  TOPO=$TOPO_PREFIX$$
  [ "$(id -u)" = 0 ] && run_mark "$TOPO_PREFIX"
fi
TOPO_DIR=${TOPO_DIR:-$(mktemp -d /tmp/ted-e2e.XXXXXX)}
TOPO_PIDS=()
declare -A CHARON_PID

ns() { echo "$TOPO-$1"; }
in_ns() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

topology_up() {
  local n
  for n in tr hA gA hB gB hC gC; do
    ip netns add "$(ns $n)"
    in_ns $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    in_ns $n ip link set lo up
  done
  in_ns tr ip link add br0 type bridge
  in_ns tr ip link set br0 up
  local site host gw out_addr index=1
  for site in A B C; do
    gw=g$site; host=h$site
    local inside=$(( $(printf '%d' "'$site") - 64 ))   # A=1, B=2, C=3
    # inside link: host <-> gateway
    ip link add "${TOPO}h$site" type veth peer name "${TOPO}i$site"
    ip link set "${TOPO}h$site" netns "$(ns $host)"
    ip link set "${TOPO}i$site" netns "$(ns $gw)"
    in_ns $host ip link set "${TOPO}h$site" name eth0
    in_ns $gw ip link set "${TOPO}i$site" name inside
    in_ns $host ip addr add 198.18.$inside.$(( inside * 10 ))/24 dev eth0
    in_ns $host ip link set eth0 up
    in_ns $host ip route add default via 198.18.$inside.1
    in_ns $gw ip addr add 198.18.$inside.1/24 dev inside
    in_ns $gw ip link set inside up
    # outside link: gateway <-> transit bridge
    ip link add "${TOPO}o$site" type veth peer name "${TOPO}t$site"
    ip link set "${TOPO}o$site" netns "$(ns $gw)"
    ip link set "${TOPO}t$site" netns "$(ns tr)"
    in_ns $gw ip link set "${TOPO}o$site" name outside
    in_ns $gw ip addr add 198.51.100.$inside/24 dev outside
    in_ns $gw ip link set outside up
    in_ns tr ip link set "${TOPO}t$site" master br0
    in_ns tr ip link set "${TOPO}t$site" up
    in_ns $gw sysctl -qw net.ipv4.ip_forward=1
  done
  # Each gateway routes the other inside networks over the transit link; ted's traps
  # catch what policy says must be protected before it could leave in clear.
  for site in A B C; do
    local me=$(( $(printf '%d' "'$site") - 64 )) other
    for other in 1 2 3; do
      [ $other -eq $me ] && continue
      in_ns g$site ip route add 198.18.$other.0/24 via 198.51.100.$other
    done
  done
}

# charon_start SITE: one charon per gateway, its own /run and VICI socket, with
# kernel-libipsec (userspace ESP: this machine's kernel has none) or, with CHARON_ESP=kernel,
# the kernel's ESP (kernel-netlink, loaded when libipsec is not). $CHARON_PLUGINS, when set,
# is more plugin configuration (strongswan.conf syntax). Waits CHARON_WAIT seconds (10) for
# its VICI socket.
charon_start() {
  local site=$1 conf="$TOPO_DIR/g$1.strongswan.conf" libipsec=yes
  [ "${CHARON_ESP:-libipsec}" = kernel ] && libipsec=no
  cat > "$conf" <<CONF
charon {
  load_modular = yes
  install_routes = yes
  retransmit_tries = 3
  plugins {
    include /etc/strongswan.d/charon/*.conf
    vici {
      socket = unix://$TOPO_DIR/g$site.vici
    }
    stroke {
      load = no
    }
    kernel-libipsec {
      load = $libipsec
    }
${CHARON_PLUGINS:-}
  }
  filelog {
    charon {
      path = $TOPO_DIR/g$site.charon.log
      flush_line = yes
      default = 1
      ike = 2
      cfg = 2
      knl = 2
      time_format = %T
      time_precision = ms
    }
  }
}
CONF
  rm -f "$TOPO_DIR/g$site.vici"
  "${OWNED[@]}" ip netns exec "$(ns g$site)" unshare -m sh -c "mount -t tmpfs tmpfs /run && STRONGSWAN_CONF=$conf exec /usr/lib/ipsec/charon" \
    > "$TOPO_DIR/g$site.charon.out" 2>&1 &
  TOPO_PIDS+=($!); CHARON_PID[$site]=$!
  local i
  for i in $(seq 1 $(( ${CHARON_WAIT:-10} * 10 ))); do [ -S "$TOPO_DIR/g$site.vici" ] && return 0; sleep 0.1; done
  echo "charon on g$site did not open its VICI socket" >&2
  return 1
}

# transit_host NAME ADDRESS MAC: one more host on the transit link (namespace $TOPO-NAME,
# ADDRESS/24 on its eth0 with that MAC), undone by topology_cleanup.
TOPO_EXTRA=()
transit_host() {
  ip netns add "$(ns $1)"; TOPO_EXTRA+=("$1")
  in_ns $1 sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  in_ns $1 ip link set lo up
  ip link add "${TOPO}x$1" type veth peer name "${TOPO}y$1"
  ip link set "${TOPO}x$1" netns "$(ns $1)"
  ip link set "${TOPO}y$1" netns "$(ns tr)"
  in_ns $1 ip link set "${TOPO}x$1" name eth0 address "$3"
  in_ns $1 ip addr add "$2/24" dev eth0
  in_ns $1 ip link set eth0 up
  in_ns tr ip link set "${TOPO}y$1" master br0
  in_ns tr ip link set "${TOPO}y$1" up
}

# bg NS CMD...: run a command in a namespace in the background, remember its PID
# (setpriv and ip netns exec exec the command, so the PID is the command's own).
bg() { local n=$1; shift; "${OWNED[@]}" ip netns exec "$(ns "$n")" "$@" & TOPO_PIDS+=($!); }

topology_cleanup() {
  local pid n
  for pid in "${TOPO_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in "${TOPO_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  # Anything still running inside our namespaces (children of the commands above).
  for n in tr hA gA hB gB hC gC "${TOPO_EXTRA[@]}"; do
    ip netns pids "$(ns $n)" 2>/dev/null | xargs -r kill -9 2>/dev/null
  done
  for n in tr hA gA hB gB hC gC "${TOPO_EXTRA[@]}"; do ip netns del "$(ns $n)" 2>/dev/null; done
  TOPO_PIDS=(); TOPO_EXTRA=()
}
