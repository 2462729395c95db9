//! The cone NAT against what Linux `masquerade` did in the NAT lab:
//! `tests/natlab/remap.sh` (port choice, step by step) and
//! `tests/natlab/punch_repro.sh` (two cone hosts punching in three orders).

use super::*;

fn at(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

/// `remap.sh`'s NAT N: one inside host A seen at 198.18.0.200:5000.
const N: [u8; 4] = [198, 18, 0, 200];

#[test]
fn remap_sh_five_steps() {
    let mut net = Network::new(20);
    net.set_default_link(LinkConfig::with_latency(ms(5)));
    let a_addr = at(N, 5000);
    let a = add(&mut net, a_addr, Nat::Cone, Peer::default());
    let [b7000, b6001, b6002, b7001] = [
        at([198, 18, 0, 202], 7000),
        at([198, 18, 0, 201], 6001),
        at([198, 18, 0, 201], 6002),
        at([198, 18, 0, 202], 7001),
    ]
    .map(|to| (to, add(&mut net, to, Nat::Open, Peer::default())));

    // 1. A:5000 -> .202:7000, nothing came in first: kept.
    send(&mut net, a, b7000.0, b"1");
    net.run_for(ms(20));
    assert_eq!(net.node(b7000.1).sources(), [a_addr]);

    // 2. .201:6001 -> N:5000 arrives first: dropped, and an entry.
    send(&mut net, b6001.1, a_addr, b"2");
    net.run_for(ms(20));
    assert!(net.node(a).received.is_empty());
    assert_eq!(net.node_stats(a).nat_filtered, 1);
    assert!(net.has_inbound_entry(a_addr, b6001.0, 5000));

    // 3. A:5000 -> .201:6002, the same host but another port: kept.
    send(&mut net, a, b6002.0, b"3");
    net.run_for(ms(20));
    assert_eq!(net.node(b6002.1).sources(), [a_addr]);

    // 4. A:5000 -> .201:6001, the tuple step 2 holds: remapped.
    send(&mut net, a, b6001.0, b"4");
    net.run_for(ms(20));
    let remapped = at(N, 40_000);
    assert_eq!(net.node(b6001.1).sources(), [remapped]);
    assert_eq!(net.nat_mapping(a_addr, b6001.0), Some(remapped));

    // 5. A:5000 -> .202:7001, nothing in the way: step 4's port, not 5000.
    send(&mut net, a, b7001.0, b"5");
    net.run_for(ms(20));
    assert_eq!(net.node(b7001.1).sources(), [remapped]);

    // Flows made before the remap keep their port.
    send(&mut net, a, b7000.0, b"again");
    send(&mut net, a, b6002.0, b"again");
    net.run_for(ms(20));
    assert_eq!(net.node(b7000.1).sources(), [a_addr, a_addr]);
    assert_eq!(net.node(b6002.1).sources(), [a_addr, a_addr]);

    // Everyone who answers the address it saw gets through; 6001 answering
    // 5000 still finds only its own entry.
    for (_, from) in [b7000, b6002] {
        send(&mut net, from, a_addr, b"reply");
    }
    for (_, from) in [b6001, b7001] {
        send(&mut net, from, remapped, b"reply");
    }
    send(&mut net, b6001.1, a_addr, b"wrong port");
    net.run_for(ms(20));
    let mut heard = net.node(a).sources();
    heard.sort();
    let mut expected = [b7000.0, b6002.0, b6001.0, b7001.0];
    expected.sort();
    assert_eq!(heard, expected);
    assert_eq!(net.node_stats(a).nat_filtered, 2);
}

/// Two hosts behind cone NATs, a router path between them, sending to each
/// other as `punch_repro.sh`'s do: from its start, a host sends one
/// datagram at `first_ttl` (if given) and waits 200 ms, then sends one
/// datagram every 100 ms for 2 s.
struct Punch {
    net: Network,
    a: NodeId<Peer>,
    b: NodeId<Peer>,
}

const A: [u8; 4] = [198, 18, 1, 2];
const B: [u8; 4] = [198, 18, 2, 2];

impl Punch {
    fn run(a_start: Duration, b_start: Duration, a_first_ttl: Option<u8>) -> Self {
        let mut net = Network::new(21);
        net.set_default_link(LinkConfig::with_latency(ms(10)));
        let a = add(&mut net, at(A, 5000), Nat::Cone, Peer::default());
        let b = add(&mut net, at(B, 5000), Nat::Cone, Peer::default());
        let schedule = |start: Duration, first_ttl: Option<u8>| {
            let first = first_ttl.map(|ttl| (start, Some(ttl)));
            let punch_from = start + first.map_or(Duration::ZERO, |_| ms(200));
            let punches = (0..20).map(move |k| (punch_from + ms(100) * k, None));
            first.into_iter().chain(punches)
        };
        let mut sends: Vec<(Duration, NodeId<Peer>, SocketAddr, Option<u8>)> =
            schedule(a_start, a_first_ttl)
                .map(|(t, ttl)| (t, a, at(B, 5000), ttl))
                .chain(schedule(b_start, None).map(|(t, ttl)| (t, b, at(A, 5000), ttl)))
                .collect();
        // Stable: at the same instant A sends first, as its NAT would not
        // see B's datagram before 10 ms anyway.
        sends.sort_by_key(|&(t, ..)| t);
        for (t, from, to, ttl) in sends {
            net.run_until(T0 + t);
            send_ttl(&mut net, from, to, b"punch", ttl);
        }
        net.run_for(secs(1));
        Self { net, a, b }
    }

    fn a_heard_b(&self) -> bool {
        self.net.node(self.a).heard(at(B, 5000))
    }

    fn b_heard_a(&self) -> bool {
        self.net.node(self.b).heard(at(A, 5000))
    }
}

#[test]
fn punch_repro_sequential_neither_hears() {
    let punch = Punch::run(Duration::ZERO, ms(500), None);
    assert!(!punch.a_heard_b());
    assert!(!punch.b_heard_a());
    assert!(punch.net.node(punch.a).received.is_empty());
    assert!(punch.net.node(punch.b).received.is_empty());
    // A's first datagram left an entry at B's NAT, so B's flow to A was
    // pushed to another port, which A's NAT in turn does not know.
    let b_to_a = punch.net.nat_mapping(at(B, 5000), at(A, 5000));
    assert_eq!(b_to_a, Some(at(B, 40_000)));
    assert!(
        punch
            .net
            .has_inbound_entry(at(A, 5000), at(B, 40_000), 5000)
    );
}

#[test]
fn punch_repro_simultaneous_both_hear() {
    let punch = Punch::run(Duration::ZERO, Duration::ZERO, None);
    assert!(punch.a_heard_b());
    assert!(punch.b_heard_a());
    assert_eq!(punch.net.stats().nat_filtered, 0);
}

#[test]
fn punch_repro_ttl_2_first_both_hear() {
    let punch = Punch::run(Duration::ZERO, ms(100), Some(FIRST_TTL));
    assert!(punch.a_heard_b());
    assert!(punch.b_heard_a());
    // A's first datagram died on the path, leaving nothing at B's NAT.
    assert_eq!(
        punch.net.link_stats(at(A, 5000), at(B, 5000)).dropped_ttl,
        1
    );
    assert_eq!(punch.net.stats().nat_filtered, 0);
    assert_eq!(punch.net.node(punch.a).received.len(), 20);
    assert_eq!(punch.net.node(punch.b).received.len(), 20);
}

/// What the peer protocol uses, `shoal_proto::peer::FIRST_PUNCH_TTL`.
const FIRST_TTL: u8 = shoal_proto::peer::FIRST_PUNCH_TTL;

/// The port a cone host at N:5000 leaves from toward 198.18.0.201:6001 when
/// it first sends there at `send_at`, after datagrams from there at
/// `inbound` (all offsets from the start; the links are instant).
fn port_after(inbound: &[Duration], send_at: Duration) -> u16 {
    let mut net = Network::new(22);
    let a_addr = at(N, 5000);
    let b_addr = at([198, 18, 0, 201], 6001);
    let a = add(&mut net, a_addr, Nat::Cone, Peer::default());
    let b = add(&mut net, b_addr, Nat::Open, Peer::default());
    for &t in inbound {
        net.run_until(T0 + t);
        send(&mut net, b, a_addr, b"early");
    }
    net.run_until(T0 + send_at);
    send(&mut net, a, b_addr, b"out");
    net.run_for(ms(1));
    assert_eq!(net.node_stats(a).nat_filtered, inbound.len() as u64);
    net.node(b).sources()[0].port()
}

#[test]
fn inbound_first_entries_expire_30_s_after_their_last_datagram() {
    let just_before = |s| secs(s) - Duration::from_micros(1);
    assert_eq!(port_after(&[], Duration::ZERO), 5000);
    assert_eq!(port_after(&[Duration::ZERO], just_before(30)), 40_000);
    assert_eq!(port_after(&[Duration::ZERO], secs(30)), 5000);
    // Each datagram refreshes the entry.
    let refreshed = [Duration::ZERO, secs(20)];
    assert_eq!(port_after(&refreshed, secs(30)), 40_000);
    assert_eq!(port_after(&refreshed, just_before(50)), 40_000);
    assert_eq!(port_after(&refreshed, secs(50)), 5000);
}

#[test]
fn flows_live_30_s_unanswered_and_180_s_once_answered() {
    let mut net = Network::new(23);
    let cone = add(&mut net, addr(1), Nat::Cone, Peer::default());
    let answered = add(&mut net, addr(2), Nat::Open, Peer::default());
    let silent = add(&mut net, addr(3), Nat::Open, Peer::default());
    send(&mut net, cone, addr(2), b"out");
    send(&mut net, cone, addr(3), b"out");

    let mut t = secs(30) - ms(1);
    net.run_until(T0 + t);
    send(&mut net, answered, addr(1), b"just in time");
    net.run_until(T0 + secs(30));
    send(&mut net, silent, addr(1), b"too late");
    net.run_for(ms(1));
    assert_eq!(net.node(cone).sources(), [addr(2)]);
    assert_eq!(net.nat_mapping(addr(1), addr(3)), None);

    // Answered, the flow lives 180 s past its last datagram.
    t += secs(180) - ms(1);
    net.run_until(T0 + t);
    send(&mut net, answered, addr(1), b"still open");
    t += secs(180);
    net.run_until(T0 + t);
    send(&mut net, answered, addr(1), b"closed");
    net.run_for(ms(1));
    assert_eq!(net.node(cone).sources(), [addr(2), addr(2)]);
    assert_eq!(net.node_stats(cone).nat_filtered, 2);
    // The flow is gone: a new one is made, and the datagram that found it
    // gone left an inbound-first entry on the very tuple, so it is remapped.
    assert!(net.has_inbound_entry(addr(1), addr(2), 4433));
    send(&mut net, cone, addr(2), b"again");
    net.run_for(ms(1));
    let seen = net.node(answered).sources();
    assert_eq!(seen, [addr(1), at([10, 0, 0, 1], 40_000)]);
}
