#!/usr/bin/env bash
# How this kernel's nftables masquerade picks ports (the cone NAT of the NAT
# lab): one inside host A (10.9.0.2) behind NAT N (198.18.0.200, masquerade),
# two outside addresses on B (198.18.0.201 and .202). Prints N's connection
# table after each step. Run as root; namespaces shoalnat-remap-<pid>-* are
# removed on exit.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "remap: run as root" >&2; exit 2; }
P="shoalnat-remap-$$-"
A=${P}a N=${P}n B=${P}b
cleanup() {
    trap - EXIT INT TERM
    for ns in "$A" "$N" "$B"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for ns in "$A" "$N" "$B"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$N" link add eth0 type veth peer name eth0 netns "$B"
ip -n "$N" addr add 198.18.0.200/24 dev eth0
ip -n "$N" link set eth0 up
ip -n "$B" addr add 198.18.0.201/24 dev eth0
ip -n "$B" addr add 198.18.0.202/24 dev eth0
ip -n "$B" link set eth0 up
ip -n "$N" link add lan type veth peer name eth0 netns "$A"
ip -n "$N" addr add 10.9.0.1/24 dev lan
ip -n "$N" link set lan up
ip -n "$A" addr add 10.9.0.2/24 dev eth0
ip -n "$A" link set eth0 up
ip -n "$A" route add default via 10.9.0.1
ip netns exec "$N" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$N" nft -f - <<'EOF'
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "eth0" masquerade
  }
}
EOF

# send NS SPORT DST DPORT: one datagram.
send() {
    ip netns exec "$1" python3 -c "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', $2)); s.sendto(b'x', ('$3', $4))"
}
table() {
    ip netns exec "$N" cat /proc/net/nf_conntrack | awk '{
        for (i = 1; i <= NF; i++) if ($i ~ /^(src|dst|sport|dport)=|UNREPLIED|ASSURED/) printf "%s ", $i
        print "" }' | sed 's/^/    /'
    echo
}

echo "1. A:5000 -> 198.18.0.202:7000; nothing came in first: the port is kept (reply dport 5000)"
send "$A" 5000 198.18.0.202 7000; table
echo "2. 198.18.0.201:6001 -> N:5000 arrives first (no mapping: dropped, but it makes an entry)"
send "$B" 6001 198.18.0.200 5000; table
echo "3. A:5000 -> 198.18.0.201:6002 (same host, another port): kept"
send "$A" 5000 198.18.0.201 6002; table
echo "4. A:5000 -> 198.18.0.201:6001, the tuple step 2 holds: remapped"
send "$A" 5000 198.18.0.201 6001; table
echo "5. A:5000 -> 198.18.0.202:7001, nothing in the way: does it keep 5000 or take step 4's port?"
send "$A" 5000 198.18.0.202 7001; table
