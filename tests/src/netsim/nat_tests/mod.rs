//! NAT scenarios with a toy node that sends what the test tells it to.
//!
//! Here the rules every NAT kind shares; the cone NAT's Linux behaviour in
//! [`cone`], IP TTL in [`ttl`].

mod cone;
mod ttl;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use shoal_proto::Time;

use super::*;

const T0: Time = Network::START;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn addr(host: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], 4433))
}

/// Sends what the test queues, keeps what arrives, and with `echo` set
/// sends every datagram back where it came from.
#[derive(Default)]
struct Peer {
    echo: bool,
    outbox: VecDeque<Outgoing>,
    received: Vec<(Time, SocketAddr, Vec<u8>)>,
}

impl Peer {
    fn echo() -> Self {
        Self {
            echo: true,
            ..Self::default()
        }
    }

    /// Where the datagrams it received came from, in order.
    fn sources(&self) -> Vec<SocketAddr> {
        self.received.iter().map(|&(_, from, _)| from).collect()
    }

    /// Whether anything arrived from `from`.
    fn heard(&self, from: SocketAddr) -> bool {
        self.received.iter().any(|&(_, source, _)| source == from)
    }
}

impl Node for Peer {
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.received.push((now, from, bytes.to_vec()));
        if self.echo {
            self.outbox.push_back(Outgoing::new(from, bytes.to_vec()));
        }
    }

    fn handle_timeout(&mut self, _now: Time) {}

    fn poll_transmit(&mut self, _now: Time) -> Option<Outgoing> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        None
    }
}

/// Has `peer` send `bytes` to `to` now.
fn send(net: &mut Network, peer: NodeId<Peer>, to: SocketAddr, bytes: &[u8]) {
    send_ttl(net, peer, to, bytes, None);
}

/// Has `peer` send `bytes` to `to` now with IP TTL `ttl`.
fn send_ttl(net: &mut Network, peer: NodeId<Peer>, to: SocketAddr, bytes: &[u8], ttl: Option<u8>) {
    let outgoing = Outgoing {
        to,
        bytes: bytes.to_vec().into(),
        ttl,
    };
    net.with_node(peer, |peer, _now| peer.outbox.push_back(outgoing));
}

/// `peer` behind `nat` at `at`.
fn add(net: &mut Network, at: SocketAddr, nat: Nat, peer: Peer) -> NodeId<Peer> {
    net.set_nat(at, nat);
    net.add_node(at, peer)
}

#[test]
fn open_nodes_talk_both_ways() {
    let mut net = Network::new(1);
    let a = add(&mut net, addr(1), Nat::Open, Peer::default());
    let b = add(&mut net, addr(2), Nat::Open, Peer::echo());
    send(&mut net, a, addr(2), b"hi");
    net.run_for(ms(1));

    assert_eq!(net.node(b).sources(), [addr(1)]);
    assert_eq!(net.node(a).sources(), [addr(2)]);
    assert_eq!(net.stats().nat_filtered, 0);
    assert_eq!(net.stats().delivered, 2);
}

#[test]
fn cone_node_takes_only_from_sources_it_has_sent_to() {
    let mut net = Network::new(2);
    net.set_default_link(LinkConfig::with_latency(ms(10)));
    let cone = add(&mut net, addr(1), Nat::Cone, Peer::default());
    let open = add(&mut net, addr(2), Nat::Open, Peer::default());
    // Same host as `open`, another port: port-restricted, so no way in.
    let neighbour_addr = SocketAddr::from(([10, 0, 0, 2], 5000));
    let neighbour = add(&mut net, neighbour_addr, Nat::Open, Peer::default());

    send(&mut net, neighbour, addr(1), b"unsolicited");
    net.run_for(ms(20));
    assert!(net.node(cone).received.is_empty());
    assert_eq!(net.node_stats(cone).nat_filtered, 1);
    assert_eq!(net.stats().nat_filtered, 1);
    let to_cone = net.addr_stats(addr(1));
    assert_eq!(
        (to_cone.nat_filtered_datagrams, to_cone.nat_filtered_bytes),
        (1, 11)
    );
    assert_eq!(to_cone.delivered_datagrams, 0);
    // The link delivered it; the NAT dropped it.
    assert_eq!(net.link_stats(neighbour_addr, addr(1)).arrived_datagrams, 1);

    send(&mut net, cone, addr(2), b"out");
    net.run_for(ms(20));
    assert_eq!(net.node(open).sources(), [addr(1)], "the port is kept");
    assert_eq!(net.nat_mapping(addr(1), addr(2)), Some(addr(1)));

    send(&mut net, open, addr(1), b"reply");
    send(&mut net, neighbour, addr(1), b"stranger");
    net.run_for(ms(20));
    assert_eq!(net.node(cone).sources(), [addr(2)]);
    assert_eq!(net.node(cone).received[0].2, b"reply");
    assert_eq!(net.node_stats(cone).nat_filtered, 2);
}

#[test]
fn symmetric_node_is_seen_at_a_mapping_per_destination() {
    let mut net = Network::new(5);
    let sym = add(&mut net, addr(1), Nat::Symmetric, Peer::default());
    let open = add(&mut net, addr(2), Nat::Open, Peer::echo());
    let other = add(&mut net, addr(3), Nat::Open, Peer::default());

    send(&mut net, sym, addr(2), b"hello");
    net.run_for(ms(1));
    let mapped = net.node(open).sources()[0];
    assert_ne!(mapped, addr(1));
    assert_eq!(mapped, SocketAddr::from(([10, 0, 0, 1], 40_000)));
    assert_eq!(net.nat_mapping(addr(1), addr(2)), Some(mapped));
    // The echo came back through the mapping, seen from its real sender.
    assert_eq!(net.node(sym).sources(), [addr(2)]);
    assert_eq!(net.link_stats(mapped, addr(2)).sent_datagrams, 1);
    assert_eq!(net.link_stats(addr(2), mapped).arrived_datagrams, 1);
    assert_eq!(net.link_stats(addr(1), addr(2)).sent_datagrams, 0);
    assert_eq!(net.addr_stats(mapped).delivered_datagrams, 1);

    // The same destination keeps the same mapping; another gets its own.
    send(&mut net, sym, addr(2), b"again");
    send(&mut net, sym, addr(3), b"hi other");
    net.run_for(ms(1));
    assert_eq!(net.node(open).sources(), [mapped, mapped]);
    let mapped_other = net.node(other).sources()[0];
    assert_eq!(mapped_other, SocketAddr::from(([10, 0, 0, 1], 40_001)));
    assert_eq!(net.nat_mapping(addr(1), addr(3)), Some(mapped_other));

    // Nobody else gets in: not through a mapping made for another
    // destination, not at the bound address, not even its destination.
    let before = net.node(sym).received.len();
    send(&mut net, other, mapped, b"not for me");
    send(&mut net, other, addr(1), b"bound");
    send(&mut net, open, addr(1), b"bound too");
    net.run_for(ms(1));
    assert_eq!(net.node(sym).received.len(), before);
    assert_eq!(net.node_stats(sym).nat_filtered, 3);
    assert_eq!(net.addr_stats(mapped).nat_filtered_datagrams, 1);
    assert_eq!(net.addr_stats(addr(1)).nat_filtered_datagrams, 2);

    // `other` answering the mapping made for it gets through.
    send(&mut net, other, mapped_other, b"answer");
    net.run_for(ms(1));
    assert_eq!(net.node(sym).received.last().map(|r| r.1), Some(addr(3)));
}

#[test]
fn symmetric_and_cone_never_talk() {
    let mut net = Network::new(6);
    net.set_default_link(LinkConfig::with_latency(ms(10)));
    let sym = add(&mut net, addr(1), Nat::Symmetric, Peer::default());
    let cone = add(&mut net, addr(2), Nat::Cone, Peer::default());
    let rendezvous = add(&mut net, addr(3), Nat::Open, Peer::default());

    // Both register with the rendezvous, which learns their addresses.
    send(&mut net, sym, addr(3), b"sym here");
    send(&mut net, cone, addr(3), b"cone here");
    net.run_for(ms(20));
    let seen = net.node(rendezvous).sources();
    let (sym_seen, cone_seen) = (seen[0], seen[1]);
    assert_eq!(cone_seen, addr(2));
    assert_ne!(sym_seen, addr(1));

    // Each punches toward what the rendezvous saw, repeatedly.
    for _ in 0..5 {
        send(&mut net, sym, cone_seen, b"to cone");
        send(&mut net, cone, sym_seen, b"to sym");
        net.run_for(ms(20));
    }

    assert!(net.node(sym).received.is_empty());
    assert!(net.node(cone).received.is_empty());
    let sym_to_cone = net.nat_mapping(addr(1), addr(2)).expect("sym sent to cone");
    assert_ne!(sym_to_cone, sym_seen);
    assert_eq!(net.node_stats(sym).nat_filtered, 5);
    assert_eq!(net.node_stats(cone).nat_filtered, 5);
    assert_eq!(net.addr_stats(sym_seen).nat_filtered_datagrams, 5);
    assert_eq!(net.stats().nat_filtered, 10);
}

#[test]
fn symmetric_nodes_never_talk() {
    let mut net = Network::new(13);
    net.set_default_link(LinkConfig::with_latency(ms(10)));
    let a = add(&mut net, addr(1), Nat::Symmetric, Peer::default());
    let b = add(&mut net, addr(2), Nat::Symmetric, Peer::default());
    let rendezvous = add(&mut net, addr(3), Nat::Open, Peer::echo());

    send(&mut net, a, addr(3), b"a here");
    send(&mut net, b, addr(3), b"b here");
    net.run_for(ms(30));
    // Each talks with the open rendezvous, which answers the mapping it saw.
    assert_eq!(net.node(a).sources(), [addr(3)]);
    assert_eq!(net.node(b).sources(), [addr(3)]);
    let seen = net.node(rendezvous).sources();
    let (a_seen, b_seen) = (seen[0], seen[1]);

    // Both at once, over and over, toward what the rendezvous saw.
    for _ in 0..5 {
        send(&mut net, a, b_seen, b"to b");
        send(&mut net, b, a_seen, b"to a");
        net.run_for(ms(30));
    }
    assert_eq!(net.node(a).sources(), [addr(3)]);
    assert_eq!(net.node(b).sources(), [addr(3)]);
    assert_eq!(net.node_stats(a).nat_filtered, 5);
    assert_eq!(net.node_stats(b).nat_filtered, 5);
    // Each used a fresh mapping toward the other, not the one it was seen at.
    assert_ne!(net.nat_mapping(addr(1), b_seen), Some(a_seen));
    assert_ne!(net.nat_mapping(addr(2), a_seen), Some(b_seen));
}

#[test]
fn link_rules_of_the_bound_address_apply_to_mapped_traffic() {
    let mut net = Network::new(7);
    net.set_default_link(LinkConfig::with_latency(ms(100)));
    net.set_links_from(addr(1), LinkConfig::with_latency(ms(30)));
    net.set_links_to(addr(1), LinkConfig::with_latency(ms(7)));
    let sym = add(&mut net, addr(1), Nat::Symmetric, Peer::default());
    let echo = add(&mut net, addr(2), Nat::Open, Peer::echo());
    send(&mut net, sym, addr(2), b"ping");
    net.run_for(ms(200));

    assert_eq!(net.node(echo).received[0].0, T0 + ms(30));
    assert_eq!(net.node(sym).received[0].0, T0 + ms(37));

    // A pair rule on the bound addresses beats them, on new links too.
    net.set_link(addr(1), addr(3), LinkConfig::with_latency(ms(3)));
    let far = add(&mut net, addr(3), Nat::Open, Peer::default());
    send(&mut net, sym, addr(3), b"ping");
    net.run_for(ms(200));
    assert_eq!(net.node(far).received[0].0, T0 + ms(200) + ms(3));
}

#[test]
fn set_nat_applies_before_and_after_add_node() {
    let mut net = Network::new(8);
    net.set_nat(addr(1), Nat::Cone);
    let early = net.add_node(addr(1), Peer::default());
    let late = net.add_node(addr(2), Peer::default());
    let open = net.add_node(addr(3), Peer::default());
    send(&mut net, open, addr(1), b"x");
    send(&mut net, open, addr(2), b"x");
    net.run_for(ms(1));
    assert!(net.node(early).received.is_empty());
    assert_eq!(net.node(late).received.len(), 1);

    net.set_nat(addr(2), Nat::Cone);
    send(&mut net, open, addr(2), b"y");
    net.run_for(ms(1));
    assert_eq!(net.node(late).received.len(), 1);
    assert_eq!(net.node_stats(late).nat_filtered, 1);

    // The config belongs to the address: a new node there gets it, fresh.
    net.disconnect(early);
    let next = net.add_node(addr(1), Peer::default());
    send(&mut net, open, addr(1), b"z");
    net.run_for(ms(1));
    assert!(net.node(next).received.is_empty());
    assert_eq!(net.node_stats(next).nat_filtered, 1);
}

#[test]
fn mappings_skip_bound_addresses_and_cannot_be_bound() {
    let mut net = Network::new(9);
    let squatter = SocketAddr::from(([10, 0, 0, 1], 40_000));
    net.add_node(squatter, Peer::default());
    let sym = add(&mut net, addr(1), Nat::Symmetric, Peer::default());
    net.add_node(addr(2), Peer::default());
    send(&mut net, sym, addr(2), b"x");
    net.run_for(ms(1));

    let mapped = net.nat_mapping(addr(1), addr(2));
    assert_eq!(mapped, Some(SocketAddr::from(([10, 0, 0, 1], 40_001))));
}

#[test]
#[should_panic(expected = "is a NAT mapping")]
fn binding_a_mapped_address_panics() {
    let mut net = Network::new(10);
    let sym = add(&mut net, addr(1), Nat::Symmetric, Peer::default());
    send(&mut net, sym, addr(2), b"x");
    net.add_node(SocketAddr::from(([10, 0, 0, 1], 40_000)), Peer::default());
}

/// Three echoing nodes behind each kind of NAT, all sending to all through
/// lossy, jittery links (so echoes bounce until lost); the trace and stats.
fn mixed_run(seed: u64, threads: usize) -> ([u8; 32], NetStats) {
    let mut net = Network::with_threads(seed, threads);
    net.set_default_link(LinkConfig {
        latency: ms(20),
        jitter: ms(5),
        loss: 0.1,
        ..LinkConfig::default()
    });
    let nats = [Nat::Open, Nat::Cone, Nat::Symmetric];
    let peers: Vec<(SocketAddr, NodeId<Peer>)> = (1..=9u8)
        .map(|host| {
            let nat = nats[usize::from(host) % 3];
            (addr(host), add(&mut net, addr(host), nat, Peer::echo()))
        })
        .collect();
    for round in 0..20u8 {
        for &(own, from) in &peers {
            for &(to, _) in peers.iter().filter(|&&(to, _)| to != own) {
                send(&mut net, from, to, &[round]);
            }
        }
        net.run_for(ms(10));
    }
    net.run_for(ms(1_000));
    (net.trace_hash(), net.stats())
}

#[test]
fn runs_with_nat_are_deterministic() {
    let (hash, stats) = mixed_run(11, 1);
    assert_eq!(mixed_run(11, 1), (hash, stats));
    assert_ne!(mixed_run(12, 1).0, hash);
    // Each NAT's flows and mappings are its shard's: the same on two
    // threads.
    assert_eq!(mixed_run(11, 2), (hash, stats));
    assert!(
        stats.nat_filtered > 100 && stats.delivered > 1_000,
        "{stats:?}"
    );
}
