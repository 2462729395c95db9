//! How fast a peer that waited for the stream finds its neighbours: at
//! the descriptor, not at its next tick, and a candidate as soon as the
//! relay names it.

use super::tests::accept;
use super::*;
use crate::integrity::PublisherKey;
use crate::publisher::{Publisher, PublisherConfig};
use crate::testutil::{SESSION, addr, emit, sent, sent_to, t};
use crate::wire::{Codec, MessageType, Peers};

const RELAY: &str = "127.0.0.1:7421";
const CANDIDATE: &str = "198.51.100.7:4000";

/// Runs every timer due up to `until`; returns what the peer sent.
fn run_until(p: &mut Peer, until: Time) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(now) = p.poll_timeout().filter(|&at| at <= until) {
        p.handle_timeout(now);
        out.extend(sent(p));
    }
    out
}

#[test]
fn a_peer_that_waited_for_the_stream_asks_at_the_descriptor_and_tries_a_candidate_at_once() {
    let config = PublisherConfig {
        codec: Codec::Opaque,
        ..PublisherConfig::default()
    };
    let key = PublisherKey::from_seed([6; 32]);
    let publisher = Publisher::new(key, config, vec![addr(RELAY)], t(0)).expect("publisher");
    let stream = publisher.stream_id();
    let mut p = Peer::new(PeerConfig::new(addr(RELAY), stream), t(0)).expect("peer");
    let out = sent(&mut p);
    accept(&mut p, t(0), addr(RELAY), &out);
    // Subscribed to a stream not yet live: nothing to join or ask.
    let waiting = run_until(&mut p, t(440));
    assert!(sent_to(&waiting, MessageType::Peers).is_empty());

    // The stream goes live between two ticks: upkeep is due at once.
    p.handle_datagram(t(450), addr(RELAY), publisher.descriptor());
    assert_eq!(p.poll_timeout(), Some(t(450)), "upkeep at the descriptor");
    let asked = run_until(&mut p, t(450));
    assert_eq!(sent_to(&asked, MessageType::Member), [addr(RELAY)]);
    assert!(!sent_to(&asked, MessageType::Peers).is_empty());

    // The relay names a candidate for club 0: tried now, not at the tick.
    let mut peers = Peers::new(stream, SESSION, 0);
    peers.push(addr(CANDIDATE));
    p.handle_datagram(t(470), addr(RELAY), &emit(&Message::Peers(peers)));
    assert_eq!(
        p.poll_timeout(),
        Some(t(470)),
        "upkeep at the new candidate"
    );
    let tried = run_until(&mut p, t(470));
    assert_eq!(sent_to(&tried, MessageType::Introduce), [addr(RELAY)]);
    assert_eq!(sent_to(&tried, MessageType::Punch), [addr(CANDIDATE)]);
}
