//! IP TTL: a datagram sent with TTL 2 passes its sender's NAT, opening it,
//! and dies on the path, so it reaches no node and no other NAT.

use super::*;

#[test]
fn ttl_2_is_never_delivered_but_opens_the_senders_cone() {
    let mut net = Network::new(30);
    net.set_default_link(LinkConfig::with_latency(ms(10)));
    let public = add(&mut net, addr(1), Nat::Open, Peer::default());
    let cone = add(&mut net, addr(2), Nat::Cone, Peer::default());
    let other = add(&mut net, addr(3), Nat::Open, Peer::default());
    let far_cone = add(&mut net, addr(4), Nat::Cone, Peer::default());

    // From the cone host: its NAT makes the flow, the path kills it.
    send_ttl(&mut net, cone, addr(1), b"ttl 2", Some(2));
    net.run_for(ms(20));
    assert!(net.node(public).received.is_empty());
    assert_eq!(net.link_stats(addr(2), addr(1)).dropped_ttl, 1);
    assert_eq!(net.link_stats(addr(2), addr(1)).arrived_datagrams, 0);
    assert_eq!(net.nat_mapping(addr(2), addr(1)), Some(addr(2)));
    // ... which the public host can use at once.
    send(&mut net, public, addr(2), b"reply");
    net.run_for(ms(20));
    assert_eq!(net.node(cone).sources(), [addr(1)]);

    // From the public host: to another public host, and to a cone host
    // whose NAT it must not reach (no inbound-first entry there).
    send_ttl(&mut net, public, addr(3), b"ttl 2", Some(2));
    send_ttl(&mut net, public, addr(4), b"ttl 2", Some(2));
    net.run_for(ms(20));
    assert!(net.node(other).received.is_empty());
    assert!(net.node(far_cone).received.is_empty());
    assert_eq!(net.node_stats(far_cone).nat_filtered, 0);
    assert!(!net.has_inbound_entry(addr(4), addr(1), 4433));
    send(&mut net, far_cone, addr(1), b"port kept");
    net.run_for(ms(20));
    assert_eq!(net.node(public).sources(), [addr(4)]);

    assert_eq!(net.stats().dropped, 3);
    assert_eq!(net.link_stats(addr(1), addr(4)).dropped_ttl, 1);
    assert_eq!(net.addr_stats(addr(3)).sent_datagrams, 1);
}

#[test]
fn the_path_takes_two_and_a_nat_one() {
    let mut net = Network::new(31);
    let public = add(&mut net, addr(1), Nat::Open, Peer::default());
    let cone = add(&mut net, addr(2), Nat::Cone, Peer::default());
    let sym = add(&mut net, addr(3), Nat::Symmetric, Peer::default());
    let sink = add(&mut net, addr(9), Nat::Open, Peer::default());
    for (ttl, from) in [(3, public), (4, cone), (4, sym)] {
        send_ttl(&mut net, from, addr(9), &[ttl], Some(ttl - 1));
        send_ttl(&mut net, from, addr(9), &[ttl], Some(ttl));
    }
    send_ttl(&mut net, cone, addr(9), b"default", None);
    net.run_for(ms(1));
    let got: Vec<&[u8]> = net.node(sink).received.iter().map(|r| &r.2[..]).collect();
    // All arrive at one instant: in the order of their senders (public,
    // cone, symmetric), then of each sender's own.
    assert_eq!(got, [&[3][..], &[4], b"default", &[4]]);
    assert_eq!(net.stats().dropped, 3);
}

#[test]
fn ttl_1_dies_in_the_senders_nat_before_translation() {
    let mut net = Network::new(32);
    let cone = add(&mut net, addr(1), Nat::Cone, Peer::default());
    let sym = add(&mut net, addr(2), Nat::Symmetric, Peer::default());
    let public = add(&mut net, addr(3), Nat::Open, Peer::default());
    send_ttl(&mut net, cone, addr(3), b"x", Some(1));
    send_ttl(&mut net, sym, addr(3), b"x", Some(1));
    net.run_for(ms(1));
    assert!(net.node(public).received.is_empty());
    assert_eq!(net.nat_mapping(addr(1), addr(3)), None);
    assert_eq!(net.nat_mapping(addr(2), addr(3)), None);
    // Counted on the link from the bound address: no mapping was made.
    assert_eq!(net.link_stats(addr(1), addr(3)).dropped_ttl, 1);
    assert_eq!(net.link_stats(addr(2), addr(3)).dropped_ttl, 1);
    // So the cone host's flow is not open for an answer.
    send(&mut net, public, addr(1), b"in");
    net.run_for(ms(1));
    assert_eq!(net.node_stats(cone).nat_filtered, 1);
}
