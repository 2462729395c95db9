#!/usr/bin/env bash
# Reproduces, with two Linux NATs (nftables masquerade, port-preserving)
# and plain UDP sockets, why cone-to-cone hole punching fails when one
# side's first datagram reaches the other NAT before that NAT's own host
# has sent anything, and shows the fix this project will build on: a
# first datagram with a TTL too small to reach the other NAT.
#
#   tests/natlab/punch_repro.sh          (root; about 10 s)
#
# Topology (namespaces, all removed on exit):
#   hostA 10.0.1.2 -- natA 198.18.1.2 -- router -- 198.18.2.2 natB -- 10.0.2.2 hostB
# The router hop matters: with the NATs on one bridge (no hop between
# them) no TTL can open one NAT without reaching the other.
#
# Each case prints what each host heard; the case "sequential" also dumps
# natB's connection table, where A's early datagram sits [UNREPLIED] on
# the tuple B's mapping needs, so B's punch leaves from another port.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "punch_repro.sh: run as root (it makes network namespaces)" >&2; exit 2; }
P="punch$$"
NS=(R NA NB HA HB)
cleanup() { for n in "${NS[@]}"; do ip netns del "$P$n" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

setup() {
  cleanup
  for n in "${NS[@]}"; do ip netns add "$P$n"; ip -n "$P$n" link set lo up; done
  ip netns exec "${P}R" sysctl -qw net.ipv4.ip_forward=1
  local i=1 x
  for x in A B; do
    ip link add "r$x" netns "${P}R" type veth peer name wan netns "${P}N$x"
    ip -n "${P}R" addr add "198.18.$i.1/24" dev "r$x"; ip -n "${P}R" link set "r$x" up
    ip -n "${P}N$x" addr add "198.18.$i.2/24" dev wan; ip -n "${P}N$x" link set wan up
    ip -n "${P}N$x" route add default via "198.18.$i.1"
    ip link add lan netns "${P}N$x" type veth peer name eth0 netns "${P}H$x"
    ip -n "${P}N$x" addr add "10.0.$i.1/24" dev lan; ip -n "${P}N$x" link set lan up
    ip -n "${P}H$x" addr add "10.0.$i.2/24" dev eth0; ip -n "${P}H$x" link set eth0 up
    ip -n "${P}H$x" route add default via "10.0.$i.1"
    ip netns exec "${P}N$x" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "${P}N$x" nft -f - <<'NFT'
table ip nat {
  chain post {
    type nat hook postrouting priority 100;
    oifname "wan" masquerade
  }
}
NFT
    i=$((i + 1))
  done
}

# peer PORT REMOTE_IP START_AT [FIRST_TTL]: from START_AT (Unix seconds),
# optionally one datagram with FIRST_TTL, then one every 100 ms for 2 s;
# prints the sources heard from.
PEER='
import socket, sys, time
port, rip, start = 5000, sys.argv[1], float(sys.argv[2])
ttl = int(sys.argv[3]) if len(sys.argv) > 3 else 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port)); s.settimeout(0.02)
while time.time() < start: time.sleep(0.0005)
if ttl:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    s.sendto(b"first", (rip, port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
    time.sleep(0.2)
end, heard = time.time() + 2.0, set()
while time.time() < end:
    s.sendto(b"punch", (rip, port))
    try: heard.add(s.recvfrom(64)[1])
    except socket.timeout: pass
    time.sleep(0.1)
print(sorted(heard) or "nobody")
'

run() { # run NAME A_DELAY B_DELAY [A_FIRST_TTL]
  setup
  local t0; t0=$(python3 -c 'import time; print(time.time() + 1.0)')
  local ta tb
  ta=$(python3 -c "print($t0 + $2)"); tb=$(python3 -c "print($t0 + $3)")
  ip netns exec "${P}HA" python3 -c "$PEER" 198.18.2.2 "$ta" ${4:-} >"/tmp/$P.a" &
  local b; b=$(ip netns exec "${P}HB" python3 -c "$PEER" 198.18.1.2 "$tb")
  wait
  printf '%-44s A heard %s; B heard %s\n' "$1" "$(cat "/tmp/$P.a")" "$b"
  rm -f "/tmp/$P.a"
}

run "sequential (A first, B 0.5 s later)" 0 0.5
echo "  natB's table:"; ip netns exec "${P}NB" cat /proc/net/nf_conntrack | sed 's/^/    /'
run "simultaneous (same instant)" 0 0
run "A first with TTL 2 (dies at the router)" 0 0.1 2
