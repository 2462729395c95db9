//! A peer following its download side to another relay.

use super::*;
use crate::integrity::PublisherKey;
use crate::publisher::{Publisher, PublisherConfig};
use crate::testutil::{addr, emit, handshake_answers, hello_nonce, sent, sent_to, t};
use crate::wire::{Codec, Leave, LeaveReason, MessageType, Peers, Punch, peek_type};

const A: &str = "127.0.0.1:7401";
const B: &str = "127.0.0.1:7402";

/// Answers the HELLO to `relay` among `out` and the SUBSCRIBE that
/// follows; returns what the peer sent after the ACCEPT.
fn accept(
    p: &mut Peer,
    now: Time,
    relay: SocketAddr,
    out: &[(SocketAddr, Vec<u8>)],
) -> Vec<(SocketAddr, Vec<u8>)> {
    let nonce = hello_nonce(out, relay);
    let [challenge, accept] = handshake_answers(p.config.stream, nonce, 0);
    p.handle_datagram(now, relay, &emit(&challenge));
    sent(p);
    p.handle_datagram(now, relay, &emit(&accept));
    sent(p)
}

#[test]
fn a_peer_sends_its_member_to_the_relay_its_viewer_moved_to() {
    let config = PublisherConfig {
        codec: Codec::Opaque,
        ..PublisherConfig::default()
    };
    let key = PublisherKey::from_seed([5; 32]);
    let publisher = Publisher::new(key, config, vec![addr(A)], t(0)).expect("publisher");
    let mut config = PeerConfig::new(addr(A), publisher.stream_id());
    config.fallbacks = vec![addr(B)];
    let mut p = Peer::new(config, t(0)).expect("peer");
    let out = sent(&mut p);
    accept(&mut p, t(0), addr(A), &out);
    p.handle_datagram(t(10), addr(A), publisher.descriptor());
    // Upkeep picks clubs and tells A.
    let mut out = Vec::new();
    while let Some(now) = p.poll_timeout().filter(|&at| at <= t(200)) {
        p.handle_timeout(now);
        out.extend(sent(&mut p));
    }
    assert_eq!(sent_to(&out, MessageType::Member), [addr(A)]);
    // A shuts down: the viewer moves to B, which gets the MEMBER as
    // soon as it accepts, not at the next repeat.
    let bye = Leave {
        reason: LeaveReason::ShuttingDown,
        stream: p.config.stream,
        session: 42,
    };
    p.handle_datagram(t(300), addr(A), &emit(&Message::Leave(bye)));
    assert_eq!(p.relay(), addr(B));
    let out = sent(&mut p);
    assert!(sent_to(&out, MessageType::Member).is_empty());
    let after = accept(&mut p, t(310), addr(B), &out);
    assert_eq!(sent_to(&after, MessageType::Member), [addr(B)]);
    assert_eq!(p.stats().viewer.relay_changes, 1);
}

/// A new neighbour's first datagram is a PUNCH at [`FIRST_PUNCH_TTL`],
/// before the INTRODUCE; its HELLO waits for the candidate's PUNCH, or for
/// [`PUNCH_WAIT`] (SPEC §11.9).
#[test]
fn a_new_neighbour_is_punched_short_first_and_greeted_after_its_punch() {
    let config = PublisherConfig {
        codec: Codec::Opaque,
        ..PublisherConfig::default()
    };
    let key = PublisherKey::from_seed([5; 32]);
    let publisher = Publisher::new(key, config, vec![addr(A)], t(0)).expect("publisher");
    let stream = publisher.stream_id();
    let mut p = Peer::new(PeerConfig::new(addr(A), stream), t(0)).expect("peer");
    let out = sent(&mut p);
    accept(&mut p, t(0), addr(A), &out);
    p.handle_datagram(t(10), addr(A), publisher.descriptor());
    let (c, d) = (addr("192.0.2.7:9000"), addr("192.0.2.8:9000"));
    for club in 0..8 {
        let mut peers = Peers::new(stream, 42, club);
        peers.push(c);
        peers.push(d);
        p.handle_datagram(t(20), addr(A), &emit(&Message::Peers(peers)));
    }
    sent(&mut p);
    // Upkeep picks neighbours among C and D.
    p.handle_timeout(t(100));
    let mut first = Vec::new();
    let mut out = Vec::new();
    while let Some(tx) = p.poll_transmit() {
        if tx.dst == c || tx.dst == d {
            first.push((tx.dst, peek_type(tx.payload), tx.ttl));
        }
        out.push((tx.dst, tx.payload.to_vec()));
    }
    assert!(!first.is_empty(), "no neighbour picked");
    for (to, ty, ttl) in &first {
        assert_eq!(
            (*ty, *ttl),
            (Ok(MessageType::Punch), Some(FIRST_PUNCH_TTL)),
            "to {to}"
        );
    }
    assert!(!sent_to(&out, MessageType::Introduce).is_empty());
    assert!(
        sent_to(&out, MessageType::Hello)
            .iter()
            .all(|to| *to == addr(A))
    );
    // C punches back: C gets its HELLO at once; D, silent, after the wait.
    let punch = emit(&Message::Punch(Punch { stream }));
    p.handle_datagram(t(150), c, &punch);
    let hellos = sent_to(&sent(&mut p), MessageType::Hello);
    assert!(hellos.contains(&c) && !hellos.contains(&d), "{hellos:?}");
    p.handle_timeout(t(100) + PUNCH_WAIT);
    assert!(sent_to(&sent(&mut p), MessageType::Hello).contains(&d));
}
