//! A peer following its download side to another relay.

use super::*;
use crate::integrity::PublisherKey;
use crate::publisher::{Publisher, PublisherConfig};
use crate::testutil::{addr, emit, handshake_answers, hello_nonce, sent, sent_to, t};
use crate::wire::{Codec, Leave, LeaveReason, MessageType};

const A: &str = "127.0.0.1:7401";
const B: &str = "127.0.0.1:7402";

/// Answers the HELLO to `relay` among `out` and the SUBSCRIBE that
/// follows; returns what the peer sent after the ACCEPT.
pub(super) fn accept(
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
