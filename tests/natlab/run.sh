#!/usr/bin/env bash
# The NAT lab (issue 17, item 1): a relay, a publisher and peers that are
# public, behind cone-like NATs (nftables masquerade) or behind symmetric
# NATs (masquerade fully-random), each in its own network namespace; one
# live stream; a report of who played what, from whom, and what the relay
# carried. Run as root; see tests/natlab/README.md.
#
#   tests/natlab/run.sh [--public N] [--cone N] [--symmetric N] [--seconds S]
#                       [--bitrate 2Mbit] [--loss PCT] [--keep-logs DIR] [--hop]
#                       [--report FILE]
#
# --report FILE also writes the results as lines of words for programs
# (relay/tests/natlab.rs; the format is in tests/natlab/README.md).
# --hop puts a router between every NAT and the rest (the wan namespace
# routes; NAT K sits on its own 198.18.(K+1).0/24), so no two NATs share a
# link and NAT-to-NAT traffic crosses one TTL-decrementing hop; the core
# drops what it would forward with a TTL of 2 or less, as the second
# router of any real path would.
# Every namespace it makes is named shoalnat-<pid>-* and removed on exit,
# on Ctrl-C and on failure; traffic stays inside them.

set -euo pipefail

PUBLIC=2
CONE=4
SYMMETRIC=2
SECS=16
BITRATE=2Mbit
LOSS=0
KEEP=""
HOP=0
REPORT=""
# A download link: at least this many bytes received from one other peer
# (HAVE beacons, keepalives and punches stay far below it; one club of 8 of
# a 2 Mbit/s stream is about 30 kB/s).
LINK_BYTES=${LINK_BYTES:-100000}

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --public) PUBLIC=$2; shift 2 ;;
        --cone) CONE=$2; shift 2 ;;
        --symmetric) SYMMETRIC=$2; shift 2 ;;
        --seconds) SECS=$2; shift 2 ;;
        --bitrate) BITRATE=$2; shift 2 ;;
        --loss) LOSS=$2; shift 2 ;;
        --keep-logs) KEEP=$2; shift 2 ;;
        --hop) HOP=1; shift ;;
        --report) REPORT=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "natlab: unknown argument $1" >&2; usage 2 >&2 ;;
    esac
done

for n in "$PUBLIC" "$CONE" "$SYMMETRIC" "$SECS" "$LOSS"; do
    case "$n" in
        ''|*[!0-9]*) echo "natlab: counts, --seconds and --loss take whole numbers" >&2; exit 2 ;;
    esac
done
NPEERS=$((PUBLIC + CONE + SYMMETRIC))
if [ "$NPEERS" -lt 1 ] || [ "$PUBLIC" -gt 80 ] || [ $((CONE + SYMMETRIC)) -gt 150 ]; then
    echo "natlab: 1 to 80 public and up to 150 NATed peers" >&2
    exit 2
fi
if [ "$LOSS" -gt 100 ]; then
    echo "natlab: --loss is a percentage" >&2
    exit 2
fi
# ffmpeg's rate: 2Mbit -> 2M, 500kbit -> 500k.
FFRATE=${BITRATE%bit}
case "$FFRATE" in
    *[0-9]M|*[0-9]k|*[0-9]) ;;
    *) echo "natlab: --bitrate such as 2Mbit or 800kbit" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${SHOAL_BIN:-$ROOT/target/release/shoal}
if [ "$(id -u)" -ne 0 ]; then
    echo "natlab: run as root (it makes network namespaces)" >&2
    exit 2
fi
for tool in ip nft ffmpeg curl; do
    command -v "$tool" >/dev/null || { echo "natlab: needs $tool" >&2; exit 2; }
done
# Written at the end; made now so that a bad path fails before the run.
if [ -n "$REPORT" ]; then
    : >"$REPORT" || { echo "natlab: cannot write --report $REPORT" >&2; exit 2; }
fi
[ -x "$BIN" ] || { echo "natlab: no $BIN; cargo build --release -p shoal-relay (or set SHOAL_BIN)" >&2; exit 2; }

P="shoalnat-$$-"
if [ -n "$KEEP" ]; then
    if [ -d "$KEEP" ] && [ -n "$(ls -A "$KEEP")" ]; then
        echo "natlab: --keep-logs $KEEP is not empty; give a new or empty directory" >&2
        exit 2
    fi
    mkdir -p "$KEEP"
    LOG=$(cd "$KEEP" && pwd)
else
    LOG=$(mktemp -d /tmp/shoalnat.XXXXXX)
fi
NSES=()
JOBS=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    for pid in "${JOBS[@]}"; do kill "$pid" 2>/dev/null; done
    for ns in "${NSES[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    done
    for ns in "${NSES[@]}"; do ip netns del "$ns" 2>/dev/null; done
    # Anything of ours that a half-made namespace left behind.
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P"); do
        ip netns del "$ns" 2>/dev/null
    done
    wait 2>/dev/null
    if [ -z "$KEEP" ]; then
        rm -rf "$LOG"
    else
        echo "natlab: logs in $LOG"
    fi
    if ip netns list 2>/dev/null | grep -q "^$P"; then
        echo "natlab: could not remove namespaces $P*" >&2
        rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "natlab: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

now() { printf '%s\n' "$EPOCHREALTIME"; }
# Each stderr line with the wall clock in front.
stamp() { while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

mkns() {
    ip netns add "$1"
    NSES+=("$1")
    ip -n "$1" link set lo up
}

# The "wan": a bridge in its own namespace, 198.18.0.0/24 (RFC 2544's
# benchmarking range); the relay listens on the bridge's own address.
WAN=${P}wan
NET=198.18.0
RELAY_IP=$NET.1
PUB_IP=$NET.2
mkns "$WAN"
ip -n "$WAN" link add br0 type bridge
ip -n "$WAN" addr add "$RELAY_IP/24" dev br0
ip -n "$WAN" link set br0 up
# With --hop the wan namespace is also the router between the bridge and
# every NAT's own link. It also stands for the rest of the internet's
# routers: a datagram it would forward that arrives with a TTL of 2 or
# less is dropped, as the second router on any real path between two
# hosts would (so a public peer's short-lived first PUNCH dies before the
# NAT it is meant for, as it would between two homes).
if [ "$HOP" -eq 1 ]; then
    in_ns "$WAN" sysctl -qw net.ipv4.ip_forward=1
    in_ns "$WAN" nft -f - <<NFT
table ip natlab_core {
  chain pre {
    type filter hook prerouting priority raw;
    ip daddr != $RELAY_IP ip ttl <= 2 counter drop
  }
}
NFT
fi

# attach NS IFNAME ADDR: a veth from the bridge to eth0 in NS, at ADDR.
attach() {
    local ns=$1 name=$2 addr=$3
    ip -n "$WAN" link add "$name" type veth peer name eth0 netns "$ns"
    ip -n "$WAN" link set "$name" master br0 up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    # With --hop, everything off the bridge (the NATs' links) is routed by
    # the wan namespace.
    if [ "$HOP" -eq 1 ]; then
        ip -n "$ns" route add default via "$RELAY_IP"
    fi
}

# hop_link NS IFNAME K: with --hop, a point-to-point veth from the wan
# namespace (198.18.(K+1).1) to eth0 in NS (198.18.(K+1).2), NS's default
# route via the wan side; prints NS's address.
hop_link() {
    local ns=$1 name=$2 k=$3
    local sub=198.18.$((k + 1))
    ip -n "$WAN" link add "$name" type veth peer name eth0 netns "$ns"
    ip -n "$WAN" addr add "$sub.1/24" dev "$name"
    ip -n "$WAN" link set "$name" up
    ip -n "$ns" addr add "$sub.2/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$sub.1"
}

# Loss on a namespace's bridge leg (eth0), both ways.
loss_rules() {
    [ "$LOSS" -gt 0 ] || return 0
    in_ns "$1" nft -f - <<EOF
table ip loss {
  chain pre {
    type filter hook prerouting priority -300;
    iifname "eth0" numgen random mod 100 < $LOSS counter drop
  }
  chain post {
    type filter hook postrouting priority 300;
    oifname "eth0" numgen random mod 100 < $LOSS counter drop
  }
}
EOF
}

# Per-address UDP counters in a peer's namespace: bytes from and to each
# address (another peer's public or NAT address, or the relay's).
counter_rules() {
    in_ns "$1" nft -f - <<'EOF'
table inet lab {
  set rx {
    type ipv4_addr
    size 4096
    flags dynamic
    counter
  }
  set tx {
    type ipv4_addr
    size 4096
    flags dynamic
    counter
  }
  chain in {
    type filter hook input priority 0;
    meta l4proto udp add @rx { ip saddr }
  }
  chain out {
    type filter hook output priority 0;
    meta l4proto udp add @tx { ip daddr }
  }
}
EOF
}

mkns "${P}pub"
attach "${P}pub" vpub "$PUB_IP"

# What the relay sends to everyone but the publisher, on the wire.
in_ns "$WAN" nft -f - <<EOF
table inet lab {
  counter relay_tx {
  }
  chain out {
    type filter hook output priority 0;
    ip daddr != $PUB_IP udp sport 7400 counter name "relay_tx"
  }
}
EOF

# Peers 1..NPEERS, numbered in the order they join, the kinds interleaved
# (2 public, 4 cone, 2 symmetric join as public cone symmetric cone public
# cone symmetric cone): a club member downloads only from members that
# joined before it, so all publics first would decide by join order which
# kind pairs can link. Each slot goes to the kind that has placed the
# smallest share of its peers so far (ties: public, cone, symmetric).
declare -A WANT=([public]=$PUBLIC [cone]=$CONE [symmetric]=$SYMMETRIC)
declare -A PLACED=([public]=0 [cone]=0 [symmetric]=0)
next_kind() {
    local best="" c
    for c in public cone symmetric; do
        [ "${PLACED[$c]}" -lt "${WANT[$c]}" ] || continue
        # placed/want < best's placed/want, without division.
        if [ -z "$best" ] || [ $((PLACED[$c] * WANT[$best])) -lt $((PLACED[$best] * WANT[$c])) ]; then
            best=$c
        fi
    done
    PLACED[$best]=$((PLACED[$best] + 1))
    kind=$best
}
KIND=()
PEERNS=()
NATNS=()
EXT=()
for ((k = 1; k <= NPEERS; k++)); do
    next_kind
    KIND[k]=$kind
    PEERNS[k]=${P}peer$k
    mkns "${PEERNS[k]}"
    if [ "$kind" = public ]; then
        EXT[k]=$NET.$((10 + k))
        NATNS[k]=""
        attach "${PEERNS[k]}" "vp$k" "${EXT[k]}"
        loss_rules "${PEERNS[k]}"
    else
        NATNS[k]=${P}nat$k
        mkns "${NATNS[k]}"
        if [ "$HOP" -eq 1 ]; then
            EXT[k]=198.18.$((k + 1)).2
            hop_link "${NATNS[k]}" "vn$k" "$k"
        else
            EXT[k]=$NET.$((100 + k))
            attach "${NATNS[k]}" "vn$k" "${EXT[k]}"
        fi
        ip -n "${NATNS[k]}" link add lan type veth peer name eth0 netns "${PEERNS[k]}"
        ip -n "${NATNS[k]}" addr add "10.$k.0.1/24" dev lan
        ip -n "${NATNS[k]}" link set lan up
        ip -n "${PEERNS[k]}" addr add "10.$k.0.2/24" dev eth0
        ip -n "${PEERNS[k]}" link set eth0 up
        ip -n "${PEERNS[k]}" route add default via "10.$k.0.1"
        in_ns "${NATNS[k]}" sysctl -qw net.ipv4.ip_forward=1
        random=""
        [ "$kind" = symmetric ] && random="fully-random"
        in_ns "${NATNS[k]}" nft -f - <<EOF
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "eth0" masquerade $random
  }
}
EOF
        # Packet and byte counts in the connection table.
        in_ns "${NATNS[k]}" sysctl -qw net.netfilter.nf_conntrack_acct=1 2>/dev/null || true
        loss_rules "${NATNS[k]}"
    fi
    counter_rules "${PEERNS[k]}"
done

if [ "$HOP" -eq 1 ]; then
    TOPO="each NAT one router hop away (--hop)"
else
    TOPO="NATs on the bridge"
fi
echo "natlab: $PUBLIC public, $CONE cone, $SYMMETRIC symmetric peers; $TOPO; ${SECS} s at $BITRATE; loss ${LOSS}% on each wan leg; namespaces ${P}*"

"$BIN" keygen --out "$LOG/stream.key" >"$LOG/stream.id"
ID=$(tr -d '[:space:]' <"$LOG/stream.id")

in_ns "$WAN" "$BIN" relay --listen "$RELAY_IP:7400" --metrics 127.0.0.1:9464 \
    --workers 1 --no-pin --publisher "$ID" >"$LOG/relay.log" 2>&1 &
JOBS+=($!)
RELAY_PID=$!
metrics() { in_ns "$WAN" curl -sf --max-time 2 http://127.0.0.1:9464/metrics; }
for _ in $(seq 50); do
    metrics >/dev/null 2>&1 && break
    kill -0 "$RELAY_PID" 2>/dev/null || { echo "natlab: the relay did not start:" >&2; cat "$LOG/relay.log" >&2; exit 1; }
    sleep 0.1
done

# Peers join before the stream starts, a fifth of a second apart, so that
# each plays it from its first chunk.
T_PEERS=$(now)
for ((k = 1; k <= NPEERS; k++)); do
    (
        now >"$LOG/peer$k.start"
        set +e
        in_ns "${PEERNS[k]}" "$BIN" peer --stream "$ID" --relay "$RELAY_IP:7400" --no-dht \
            --upload-limit 10Mbit --wait 30s --output "$LOG/peer$k.ts" 2>&1 >/dev/null | stamp >"$LOG/peer$k.err"
        echo "${PIPESTATUS[0]}" >"$LOG/peer$k.rc"
    ) &
    JOBS+=($!)
    PEERJOB[k]=$!
    sleep 0.2
done
sleep 1

T_PUB=$(now)
(
    set +e
    in_ns "${P}pub" bash -c '
        set -o pipefail
        ffmpeg -nostdin -loglevel error -re -f lavfi -i "testsrc=size=1280x720:rate=30:duration=$1" \
            -c:v libx264 -preset ultrafast -tune zerolatency -g 30 -b:v "$2" -f mpegts - 2>"$3/ffmpeg.log" \
        | tee "$3/input.ts" \
        | "$4" publish --key "$3/stream.key" --relay "$5:7400" --no-dht --quiet
    ' natlab "$SECS" "$FFRATE" "$LOG" "$BIN" "$RELAY_IP" 2>"$LOG/publish.log"
    echo $? >"$LOG/publish.rc"
) &
JOBS+=($!)
PUBJOB=$!

# The NATs' connection tables once a second while the stream runs
# (conntrack/natK.SS, SS seconds after the publisher started), to see
# entries that are gone by the end.
if [ $((CONE + SYMMETRIC)) -gt 0 ]; then
    (
        mkdir -p "$LOG/conntrack"
        for ((t = 0; t <= SECS + 2; t++)); do
            for ((k = 1; k <= NPEERS; k++)); do
                [ -n "${NATNS[k]}" ] || continue
                in_ns "${NATNS[k]}" cat /proc/net/nf_conntrack >"$LOG/conntrack/nat$k.$(printf %02d "$t")" 2>/dev/null || true
            done
            sleep 1
        done
    ) &
    JOBS+=($!)
fi

# The stream, then the peers' linger (2 s) and a margin.
deadline=$(( ${T_PUB%.*} + SECS + 20 ))
wait "$PUBJOB" || true
for ((k = 1; k <= NPEERS; k++)); do
    while kill -0 "${PEERJOB[k]}" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
done
T_END=$(now)

# Counters before anything is stopped.
metrics >"$LOG/relay.metrics" 2>/dev/null || true
in_ns "$WAN" nft list counter inet lab relay_tx >"$LOG/relay_tx.nft"
for ((k = 1; k <= NPEERS; k++)); do
    in_ns "${PEERNS[k]}" nft list set inet lab rx >"$LOG/peer$k.rx.nft"
    in_ns "${PEERNS[k]}" nft list set inet lab tx >"$LOG/peer$k.tx.nft"
    if [ -n "${NATNS[k]}" ]; then
        if command -v conntrack >/dev/null; then
            in_ns "${NATNS[k]}" conntrack -L >"$LOG/nat$k.conntrack" 2>/dev/null || true
        elif in_ns "${NATNS[k]}" test -r /proc/net/nf_conntrack; then
            in_ns "${NATNS[k]}" cat /proc/net/nf_conntrack >"$LOG/nat$k.conntrack"
        fi
        in_ns "${NATNS[k]}" nft list ruleset >"$LOG/nat$k.nft"
    fi
done
for ((k = 1; k <= NPEERS; k++)); do
    if kill -0 "${PEERJOB[k]}" 2>/dev/null; then
        for pid in $(ip netns pids "${PEERNS[k]}"); do kill "$pid" 2>/dev/null || true; done
        echo "timeout" >"$LOG/peer$k.rc"
    fi
done
kill "$RELAY_PID" 2>/dev/null || true

# ---- the report ----------------------------------------------------------

# bytes_from FILE ADDR: bytes in an nft set listing for ADDR (0 if none).
# Elements read "198.18.0.1 counter packets 12 bytes 3456".
nft_bytes() {
    tr ',{}' '\n\n\n' <"$1" | awk -v a="$2" '$1 == a && $2 == "counter" { print $6; f = 1 } END { if (!f) print 0 }'
}
nft_total_except() {
    tr ',{}' '\n\n\n' <"$1" | awk -v a="$2" '$2 == "counter" && $1 != a { s += $6 } END { print s + 0 }'
}
mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e6 }'; }

IN_BYTES=$(stat -c %s "$LOG/input.ts" 2>/dev/null || echo 0)
PUB_RC=$(cat "$LOG/publish.rc" 2>/dev/null || echo '?')
echo
echo "natlab: stream $ID, $(mb "$IN_BYTES") MB of MPEG-TS in ${SECS} s (publisher exit $PUB_RC); run took $(awk -v a="$T_PEERS" -v b="$T_END" 'BEGIN { printf "%.0f", b - a }') s after the first peer"

# working_lines ERR: "STAMP IP MS HOW" for every line in which the peer
# reports a download neighbour working,
#   shoal: neighbour 198.18.4.2:40123 working after 612 ms (punched)
# (MS from choosing the candidate to its accepting the subscription; HOW is
# direct, punched or remapped). Any other line is ignored.
working_lines() {
    awk 'NF == 9 && $2 == "shoal:" && $3 == "neighbour" && $5 == "working" && $6 == "after" && $8 == "ms" \
        && $1 ~ /^[0-9]+(\.[0-9]+)?$/ && $7 ~ /^[0-9]+$/ && $4 ~ /:[0-9]+$/ \
        && $9 ~ /^\((direct|punched|remapped)\)$/ {
            ip = $4; sub(/:[0-9]+$/, "", ip); gsub(/[][]/, "", ip)
            how = $9; gsub(/[()]/, "", how)
            print $1, ip, $7, how
        }' "$1"
}
# Which peer an address belongs to: every NAT has its own outside address.
declare -A PEER_AT
for ((k = 1; k <= NPEERS; k++)); do PEER_AT[${EXT[k]}]=$k; done
# Punch times (ms) per kind pair "A B" (A's log, B the neighbour), as a list.
declare -A PUNCH
# The lines of the --report file.
REPORT_PEERS=()
REPORT_PAIRS=()

echo
printf '%-5s %-9s %-13s %-22s %-5s %-5s %-8s %-8s %-8s %-11s %-s\n' \
    peer kind address played neigh max from_peer from_rly uploaded first exit
printf '%-5s %-9s %-13s %-22s %-5s %-5s %-8s %-8s %-8s %-11s %-s\n' \
    "" "" "(seen)" "" "last" "" "MB" "MB" "MB" "nbr s (how)" ""
EXACT=0
for ((k = 1; k <= NPEERS; k++)); do
    out=$LOG/peer$k.ts
    size=$(stat -c %s "$out" 2>/dev/null || echo 0)
    at="-"
    if [ "$size" -eq "$IN_BYTES" ] && cmp -s "$out" "$LOG/input.ts"; then
        played=exact
        EXACT=$((EXACT + 1))
    elif [ "$size" -eq 0 ]; then
        played=nothing
    else
        # cmp exits 1 when the files differ: not a failure of the lab.
        at=$({ cmp "$out" "$LOG/input.ts" 2>/dev/null || true; } | awk '{ print $5 }' | tr -d ,)
        if [ -z "$at" ]; then
            played=prefix
            at=$(awk -v a="$size" -v b="$IN_BYTES" 'BEGIN { printf "%.1f%%", 100 * a / b }')
        else
            played=differs
        fi
    fi
    err=$LOG/peer$k.err
    start=$(cat "$LOG/peer$k.start")
    neigh=$(grep -o '[0-9]* neighbours' "$err" | tail -1 | awk '{ print $1 }')
    maxn=$(grep -o '[0-9]* neighbours' "$err" | awk '$1 > m { m = $1 } END { print m + 0 }')
    # The first working neighbour, from the peer's own start: its own line
    # when it prints one, else the first status line (once a second)
    # counting at least one neighbour.
    working_lines "$err" >"$LOG/peer$k.working"
    first=$(awk -v t0="$start" 'NR == 1 { printf "%.2f", $1 - t0 }' "$LOG/peer$k.working")
    if [ -n "$first" ]; then
        how=log
    else
        first=$(awk -v t0="$start" '/ [1-9][0-9]* neighbours/ { printf "%.2f", $1 - t0; exit }' "$err")
        how=status
        [ -n "$first" ] || { first=-; how=never; }
    fi
    while read -r _ ip ms _; do
        b=${PEER_AT[$ip]:-}
        [ -n "$b" ] || continue
        key="${KIND[k]} ${KIND[b]}"
        PUNCH[$key]="${PUNCH[$key]:-} $ms"
    done <"$LOG/peer$k.working"
    from_relay=$(nft_bytes "$LOG/peer$k.rx.nft" "$RELAY_IP")
    from_peers=$(nft_total_except "$LOG/peer$k.rx.nft" "$RELAY_IP")
    up=$(nft_total_except "$LOG/peer$k.tx.nft" "$RELAY_IP")
    rc=$(cat "$LOG/peer$k.rc" 2>/dev/null || echo '?')
    case "$played" in
        prefix) shown="prefix $at" ;;
        differs) shown="differs@$at" ;;
        *) shown=$played ;;
    esac
    printf '%-5s %-9s %-13s %-22s %-5s %-5s %-8s %-8s %-8s %-11s %-s\n' \
        "$k" "${KIND[k]}" "${EXT[k]}" "$shown" "${neigh:--}" "$maxn" \
        "$(mb "$from_peers")" "$(mb "$from_relay")" "$(mb "$up")" "$first ($how)" "$rc"
    REPORT_PEERS+=("peer $k ${KIND[k]} ${EXT[k]} $played $at $rc $first $how $maxn $(awk -v a="$from_peers" -v b="$from_relay" -v c="$up" 'BEGIN { printf "%.3f %.3f %.3f", a / 1e6, b / 1e6, c / 1e6 }') $(awk -v a="$start" -v b="$T_PUB" 'BEGIN { printf "%.2f", a - b }')")
done
echo "exact: $EXACT of $NPEERS peers wrote byte for byte what ffmpeg gave the publisher"
echo "first nbr: seconds from the peer's own start to its first working neighbour, from its own 'neighbour ... working' line (log) or, without one, its first status line counting a neighbour (status, good to about 1 s)"

# Per kind pair: A downloads from B when A received at least LINK_BYTES
# from B's address; contacted when either sent the other anything.
echo
echo "download links, A <- B: ordered pairs; contacted = A sent to B's address or heard from it; heard = A received anything from B; links = A received >= $LINK_BYTES bytes from B; punch = ms from A choosing B to B accepting, per working neighbour A's log reports"
printf '%-11s %-11s %-7s %-10s %-6s %-6s %-6s %-7s %-7s\n' A B pairs contacted heard links punch median max
printf '%-11s %-11s %-7s %-10s %-6s %-6s %-6s %-7s %-7s\n' "" "" "" "" "" "" n ms ms
declare -A PAIRS CONTACT HEARD LINKS
for ((a = 1; a <= NPEERS; a++)); do
    for ((b = 1; b <= NPEERS; b++)); do
        [ "$a" -eq "$b" ] && continue
        key="${KIND[a]} ${KIND[b]}"
        PAIRS[$key]=$(( ${PAIRS[$key]:-0} + 1 ))
        rx=$(nft_bytes "$LOG/peer$a.rx.nft" "${EXT[b]}")
        tx=$(nft_bytes "$LOG/peer$a.tx.nft" "${EXT[b]}")
        if [ "$rx" -gt 0 ] || [ "$tx" -gt 0 ]; then
            CONTACT[$key]=$(( ${CONTACT[$key]:-0} + 1 ))
        fi
        if [ "$rx" -gt 0 ]; then
            HEARD[$key]=$(( ${HEARD[$key]:-0} + 1 ))
        fi
        if [ "$rx" -ge "$LINK_BYTES" ]; then
            LINKS[$key]=$(( ${LINKS[$key]:-0} + 1 ))
        fi
    done
done
for ka in public cone symmetric; do
    for kb in public cone symmetric; do
        key="$ka $kb"
        [ -n "${PAIRS[$key]:-}" ] || continue
        # n, median (the lower middle of an even count) and max, or "0 - -".
        punch=$(printf '%s\n' ${PUNCH[$key]:-} | sort -n | awk 'NF { v[++n] = $1 } END {
            if (n == 0) print "0 - -"; else print n, v[int((n + 1) / 2)], v[n] }')
        read -r pn pmed pmax <<<"$punch"
        printf '%-11s %-11s %-7s %-10s %-6s %-6s %-6s %-7s %-7s\n' "$ka" "$kb" "${PAIRS[$key]}" \
            "${CONTACT[$key]:-0}" "${HEARD[$key]:-0}" "${LINKS[$key]:-0}" "$pn" "$pmed" "$pmax"
        REPORT_PAIRS+=("pair $ka $kb ${PAIRS[$key]} ${CONTACT[$key]:-0} ${HEARD[$key]:-0} ${LINKS[$key]:-0} $pn $pmed $pmax")
    done
done

# The relay's share: what it sent, over what the peers needed.
fwd=$(awk '/^shoal_relay_forwarded_bytes_total / { s += $NF } END { printf "%.0f", s }' "$LOG/relay.metrics" 2>/dev/null || echo 0)
wire=$(tr ' ' '\n' <"$LOG/relay_tx.nft" | awk 'p { print; exit } $1 == "bytes" { p = 1 }')
wire=${wire:-0}
share() { awk -v x="$1" -v n="$NPEERS" -v s="$IN_BYTES" 'BEGIN { if (s > 0) printf "%.3f", x / (n * s); else print "-" }'; }
echo
if [ "$IN_BYTES" -gt 0 ]; then
    awk -v f="$fwd" -v w="$wire" -v n="$NPEERS" -v s="$IN_BYTES" 'BEGIN {
        printf "relay share: forwarded_bytes_total %.2f MB = %.2f x peers x stream; all UDP the relay sent to peers (headers, parity, NACK answers, control) %.2f MB = %.2f x\n",
            f / 1e6, f / (n * s), w / 1e6, w / (n * s) }'
fi

# The same for programs (format: tests/natlab/README.md).
if [ -n "$REPORT" ]; then
    {
        echo "# shoal natlab report 1; format in tests/natlab/README.md"
        echo "namespaces $P"
        echo "hop $HOP"
        echo "counts $PUBLIC $CONE $SYMMETRIC"
        echo "seconds $SECS"
        echo "bitrate $BITRATE"
        echo "loss $LOSS"
        echo "link_bytes $LINK_BYTES"
        echo "stream_bytes $IN_BYTES"
        echo "publisher_exit $PUB_RC"
        echo "exact $EXACT $NPEERS"
        echo "# peer index kind address played played_at exit first_s first_how neigh_max from_peers_mb from_relay_mb uploaded_mb start_s"
        printf '%s\n' "${REPORT_PEERS[@]}"
        echo "# pair A B pairs contacted heard links punch_n punch_median_ms punch_max_ms"
        printf '%s\n' "${REPORT_PAIRS[@]}"
        echo "relay_forwarded_bytes $fwd $(share "$fwd")"
        echo "relay_udp_bytes $wire $(share "$wire")"
        echo "end"
    } >"$REPORT"
fi

# The NATs' connection tables: flows between a NATed peer and other peers.
# remapped = the NAT did not keep the peer's source port (reply dport !=
# original sport); unreplied inbound = a datagram from another peer that
# arrived before any mapping let it through (it created an entry of its own,
# which may hold the very tuple the peer's own mapping needed).
summarise_conntrack() {
    awk -v relay="$RELAY_IP" -v ext="$2" '
    / udp / {
        n = 0; delete o; delete r
        for (i = 1; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "src") n++
            if (kv[1] ~ /^(src|dst|sport|dport)$/) { if (n == 1) o[kv[1]] = kv[2]; else r[kv[1]] = kv[2] }
        }
        unrep = ($0 ~ /UNREPLIED/)
        if (o["src"] ~ /^10\./) {
            if (o["dst"] == relay) { relay_port = r["dport"]; local_port = o["sport"]; next }
            out++
            if (r["dport"] != o["sport"]) { remapped++; rm[o["dst"] ":" o["dport"] ">" o["sport"]] = 1 }
            if (unrep) out_unrep++
        } else if (o["dst"] == ext && o["src"] != relay) {
            inb++
            if (unrep) in_unrep++
            held[o["src"] ":" o["sport"] ">" o["dport"]] = 1
        }
    }
    END {
        for (t in rm) if (t in held) blocked++
        printf "%s: peer port %s, relay sees :%s; flows to peers %d: %d remapped (%d of them because an inbound entry from that peer holds the tuple), %d unreplied; inbound-first flows from peers %d, %d unreplied\n",
            FILENAME, local_port, relay_port, out, remapped, blocked + 0, out_unrep, inb, in_unrep
    }' "$1"
}
echo
echo "NAT connection tables at the end (also in the log dir):"
for ((k = 1; k <= NPEERS; k++)); do
    f=$LOG/nat$k.conntrack
    [ -s "$f" ] || continue
    printf '%-9s ' "${KIND[k]}"
    summarise_conntrack "$f" "${EXT[k]}" | sed "s|$LOG/||"
done
