//! A peer believes its relay's INTRODUCE and PEERS, and its neighbours'
//! beacons, only with the session id of its subscription there.

use super::*;
use crate::testutil::{addr, emit, t};
use crate::wire::{Accept, Challenge, Cookie, Introduce, Peers};

const RELAY: &str = "127.0.0.1:7411";
const ID: u64 = 0xabcd;

fn subscribed_peer() -> Peer {
    let stream = crate::integrity::PublisherKey::from_seed([5; 32]).stream_id();
    let mut p = Peer::new(PeerConfig::new(addr(RELAY), stream), t(0)).expect("peer");
    let nonce = std::iter::from_fn(|| p.poll_transmit().map(|t| t.payload.to_vec()))
        .find_map(|b| match Message::parse(&b) {
            Ok(Message::Hello(h)) => Some(h.nonce),
            _ => None,
        })
        .expect("a HELLO");
    let cookie = Cookie {
        issued_at_us: 0,
        tag: [0; 16],
    };
    let challenge = Message::Challenge(Challenge { nonce, cookie });
    p.handle_datagram(t(1), addr(RELAY), &emit(&challenge));
    let accept = Accept {
        keepalive_ms: 1000,
        stream,
        session: ID,
        start_seq: 0,
        observed: addr("192.0.2.9:4000"),
    };
    p.handle_datagram(t(2), addr(RELAY), &emit(&Message::Accept(accept)));
    while p.poll_transmit().is_some() {}
    p
}

fn punches(p: &mut Peer) -> usize {
    std::iter::from_fn(|| p.poll_transmit().map(|t| t.payload.to_vec()))
        .filter(|b| matches!(Message::parse(b), Ok(Message::Punch(_))))
        .count()
}

#[test]
fn an_introduce_or_peers_without_the_relay_session_id_is_ignored() {
    let mut p = subscribed_peer();
    let stream = p.config.stream;
    let target: SocketAddr = "198.51.100.9:4000".parse().expect("addr");
    let intro = |session| {
        emit(&Message::Introduce(Introduce {
            stream,
            session,
            addr: target,
        }))
    };
    p.handle_datagram(t(3), addr(RELAY), &intro(ID ^ 1));
    assert_eq!(punches(&mut p), 0, "a spoofed INTRODUCE steers no PUNCH");
    let mut peers = Peers::new(stream, ID ^ 1, 0);
    peers.push(target);
    p.handle_datagram(t(3), addr(RELAY), &emit(&Message::Peers(peers)));
    assert!(
        p.neighbours.candidates[0].is_empty(),
        "a spoofed PEERS lists nobody"
    );
    p.handle_datagram(t(4), addr(RELAY), &intro(ID));
    assert_eq!(punches(&mut p), 1);
    let mut peers = Peers::new(stream, ID, 0);
    peers.push(target);
    p.handle_datagram(t(4), addr(RELAY), &emit(&Message::Peers(peers)));
    assert_eq!(p.neighbours.candidates[0], [target]);
}
