#!/bin/bash
# Runs INSIDE the systemd guest of scripts/e2e-system.sh as e2e-topology.service, at boot
# after network-pre.target (where an operator's network configuration runs): this system is
# gwA; hostA, gwB and hostB are network namespaces, the link between the gateways a bridge in
# a fourth one (tr), where neither gateway decrypts (a capture inside gwB's namespace would
# also see what gwB decrypted, re-injected on its link). A capture on that bridge starts
# before any link is up, then hostA sends a protected flow (udp/7000 to hostB) from the
# moment its link is up: every packet gwA would forward in clear before ted's traps is on it.
#   system-topology.sh   (work files in /var/tmp/e2e)
set -eu
W=/var/tmp/e2e
mkdir -p "$W"
modprobe -a -q esp4 xfrm_user veth nf_tables nft_queue nft_tproxy nft_socket nf_tproxy_ipv4 nf_tproxy_ipv6 \
  nft_reject_inet nft_compat nfnetlink_queue xt_NFQUEUE xt_comment xt_mark iptable_mangle ip6table_mangle \
  authenc echainiv seqiv gcm ctr ghash_generic || true
for n in hA gB hB tr; do ip netns add "$n"; done
for n in hA gB hB tr; do ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done
ip link add inside type veth peer name eth0 netns hA
ip link add outside type veth peer name tA netns tr
ip -n gB link add outside type veth peer name tB netns tr
ip -n tr link add br0 type bridge
ip -n tr link set tA master br0; ip -n tr link set tB master br0
ip -n tr link set lo up; ip -n tr link set br0 up; ip -n tr link set tB up
ip -n gB link add inside type veth peer name eth0 netns hB
sysctl -qw net.ipv6.conf.inside.disable_ipv6=1 net.ipv6.conf.outside.disable_ipv6=1
ip addr add 198.18.1.1/24 dev inside
ip addr add 198.51.100.1/24 dev outside
ip -n gB addr add 198.51.100.2/24 dev outside
ip -n gB addr add 198.18.2.1/24 dev inside
ip -n gB link set lo up; ip -n gB link set outside up; ip -n gB link set inside up
ip netns exec gB sysctl -qw net.ipv4.ip_forward=1
ip -n gB route add 198.18.1.0/24 via 198.51.100.1
ip -n hB addr add 198.18.2.20/24 dev eth0; ip -n hB link set lo up; ip -n hB link set eth0 up
ip -n hB route add default via 198.18.2.1
ip -n hA addr add 198.18.1.10/24 dev eth0; ip -n hA link set lo up
# The capture, ready before gwA's links come up.
ip netns exec tr tcpdump -Z root -i br0 -nn -U -w "$W/transit.pcap" > /dev/null 2> "$W/transit.tcpdump.log" &
echo $! > "$W/transit.pid"
for i in $(seq 1 100); do grep -q "listening on" "$W/transit.tcpdump.log" 2>/dev/null && break; sleep 0.1; done
ip link set inside up; ip link set outside up; ip -n tr link set tA up
ip route add 198.18.2.0/24 via 198.51.100.2
ip route add 198.18.3.0/24 via 198.51.100.2
ip -n hA link set eth0 up
ip -n hA route add default via 198.18.1.1
# The protected flow, from now on (at most 10 minutes).
ip netns exec hA bash -c 'for i in $(seq 1 6000); do echo boot > /dev/udp/198.18.2.20/7000; sleep 0.1; done' > /dev/null 2>&1 &
echo "topology up: gwA forwarding $(sysctl -n net.ipv4.ip_forward)" > "$W/topology.txt"
