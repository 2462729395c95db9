//! Access tokens at the relay: who is let in, and why the others are not.

use std::net::SocketAddr;

use super::tests::{
    PUBLISHER, drain_to, kept, published_on, send, session, subscribe_with_token, t,
};
use super::*;
use crate::integrity::PublisherKey;
use crate::token::{Scope, Token};
use crate::wire::{Member, Peers};
use crate::{WallClock, WallTime};

/// Unix time the tests' relay believes it is at `t(0)`.
const NOW_UNIX: u64 = 1_800_000_000;

/// The key `published` signs with.
fn stream_key() -> PublisherKey {
    PublisherKey::from_seed([3; 32])
}

fn token(key: &PublisherKey, stream: StreamId, scope: Scope, expires: u64) -> Vec<u8> {
    Token {
        stream,
        scope,
        expires,
        id: 7,
    }
    .sign(key)
    .to_vec()
}

/// The wall clock of the relay and the publisher: `t(0)` is `NOW_UNIX`.
fn unix_clock() -> WallClock {
    WallClock::new(t(0), WallTime::from_micros(NOW_UNIX * 1_000_000))
}

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 11], 7000 + i))
}

/// A token-requiring relay carrying the test stream.
fn guarded_relay() -> (Relay, StreamId) {
    let (stream, datagrams) = published_on(200, unix_clock());
    let mut relay = Relay::new(RelayConfig {
        require_token: true,
        ..RelayConfig::default()
    });
    relay.set_wall_clock(unix_clock());
    for d in &datagrams {
        relay.handle_datagram(t(0), PUBLISHER, d);
    }
    while relay.poll_transmit().is_some() {}
    (relay, stream)
}

/// What the relay answered a SUBSCRIBE with: `Ok(())` for ACCEPT, else the
/// REJECT's reason.
fn answer(
    relay: &mut Relay,
    now: Time,
    from: SocketAddr,
    stream: StreamId,
    token: &[u8],
) -> Result<(), RejectReason> {
    subscribe_with_token(relay, now, from, stream, u64::MAX, token);
    let replies = drain_to(relay, from);
    for b in &replies {
        match Message::parse(b) {
            Ok(Message::Accept(_)) => return Ok(()),
            Ok(Message::Reject(r)) => return Err(r.reason),
            _ => {}
        }
    }
    panic!("neither ACCEPT nor REJECT among {} replies", replies.len());
}

#[test]
fn a_valid_token_is_let_in_and_every_bad_one_refused_with_its_reason() {
    let (mut relay, stream) = guarded_relay();
    let key = stream_key();
    let hour = NOW_UNIX + 3600;
    let other = PublisherKey::from_seed([4; 32]);

    assert_eq!(
        answer(&mut relay, t(1), addr(1), stream, &[]),
        Err(RejectReason::TokenRequired)
    );
    let expired = token(&key, stream, Scope::WATCH, NOW_UNIX - 1);
    assert_eq!(
        answer(&mut relay, t(1), addr(2), stream, &expired),
        Err(RejectReason::TokenExpired)
    );
    // For another stream (signed by that stream's key): wrong stream.
    let wrong_stream = token(&other, other.stream_id(), Scope::WATCH, hour);
    assert_eq!(
        answer(&mut relay, t(1), addr(3), stream, &wrong_stream),
        Err(RejectReason::TokenInvalid)
    );
    // Naming this stream but signed by another key: forged.
    let forged = token(&other, stream, Scope::WATCH, hour);
    assert_eq!(
        answer(&mut relay, t(1), addr(4), stream, &forged),
        Err(RejectReason::TokenInvalid)
    );
    let upload_only = token(&key, stream, Scope::UPLOAD, hour);
    assert_eq!(
        answer(&mut relay, t(1), addr(5), stream, &upload_only),
        Err(RejectReason::TokenInvalid)
    );
    assert_eq!(
        answer(&mut relay, t(1), addr(6), stream, b"junk"),
        Err(RejectReason::TokenInvalid)
    );

    let good = token(&key, stream, Scope::WATCH, hour);
    assert_eq!(answer(&mut relay, t(1), addr(7), stream, &good), Ok(()));
    assert_eq!(relay.subscriber_count(), 1, "only the good token got in");
    let s = relay.stats();
    assert_eq!(
        (
            s.drop_token_missing,
            s.drop_token_expired,
            s.drop_token_invalid
        ),
        (1, 1, 4)
    );
    // The refused got nothing but their REJECT; the admitted one gets the
    // stream.
    relay.handle_timeout(t(5));
    let (_, more) = published_on(400, unix_clock());
    for d in &more[more.len() / 2..] {
        relay.handle_datagram(t(10), PUBLISHER, d);
    }
    let mut to_admitted = 0;
    while let Some((dst, _)) = kept(&mut relay) {
        assert!(dst == addr(7) || dst == PUBLISHER, "sent to {dst}");
        to_admitted += usize::from(dst == addr(7));
    }
    assert!(to_admitted > 0);
}

#[test]
fn a_token_expires_on_the_relays_wall_clock() {
    let (mut relay, stream) = guarded_relay();
    let good = token(&stream_key(), stream, Scope::WATCH, NOW_UNIX + 10);
    assert_eq!(answer(&mut relay, t(9_000), addr(1), stream, &good), Ok(()));
    // Ten seconds on: the same token, now cached, is expired.
    assert_eq!(
        answer(&mut relay, t(10_000), addr(2), stream, &good),
        Err(RejectReason::TokenExpired)
    );
}

#[test]
fn a_shared_token_is_verified_once_and_passes_the_rate_limit() {
    let (stream, datagrams) = published_on(200, unix_clock());
    let mut relay = Relay::new(RelayConfig {
        require_token: true,
        handshake_rate: 1,
        handshake_burst: 1000,
        // Many viewers behind one NAT: the operator raised the cap.
        max_subscriptions_per_ip: 1000,
        ..RelayConfig::default()
    });
    relay.set_wall_clock(unix_clock());
    relay.handle_datagram(t(0), PUBLISHER, &datagrams[0]);
    let good = token(&stream_key(), stream, Scope::WATCH, NOW_UNIX + 60);
    // 600 viewers behind one IP: 600 HELLOs and one signature check fit a
    // burst of 1000; a check per viewer would not.
    for i in 0..600 {
        assert_eq!(
            answer(&mut relay, t(1), addr(i), stream, &good),
            Ok(()),
            "viewer {i}"
        );
    }
    assert_eq!(relay.stats().drop_rate_limited, 0);
}

#[test]
fn without_the_upload_scope_a_subscriber_is_never_handed_out_as_a_peer() {
    let (mut relay, stream) = guarded_relay();
    let key = stream_key();
    let watch = token(&key, stream, Scope::WATCH, NOW_UNIX + 60);
    let both = token(&key, stream, Scope::ALL, NOW_UNIX + 60);
    assert_eq!(answer(&mut relay, t(1), addr(1), stream, &watch), Ok(()));
    assert_eq!(answer(&mut relay, t(1), addr(2), stream, &both), Ok(()));
    let asker = addr(3);
    assert_eq!(answer(&mut relay, t(1), asker, stream, &watch), Ok(()));
    for a in [addr(1), addr(2)] {
        let m = Member {
            stream,
            session: session(&relay, a),
            clubs: 1,
            upload_kbps: 1000,
        };
        send(&mut relay, t(2), a, &Message::Member(m));
    }
    let ask = Peers::new(stream, session(&relay, asker), 0);
    send(&mut relay, t(3), asker, &Message::Peers(ask));
    let listed: Vec<SocketAddr> = drain_to(&mut relay, asker)
        .iter()
        .find_map(|b| match Message::parse(b) {
            Ok(Message::Peers(p)) => Some(p.addrs().to_vec()),
            _ => None,
        })
        .expect("a PEERS answer");
    assert_eq!(listed, vec![addr(2)]);
    assert_eq!(relay.stats().drop_token_scope, 1);
}

#[test]
fn a_relay_presents_its_upstream_token() {
    let (mut upstream, stream) = guarded_relay();
    let good = token(&stream_key(), stream, Scope::WATCH, NOW_UNIX + 60);
    let up_addr = SocketAddr::from(([127, 0, 0, 12], 7400));
    let down_addr = SocketAddr::from(([127, 0, 0, 13], 7400));
    let mut down = Relay::new(RelayConfig {
        upstream_tokens: vec![good],
        ..RelayConfig::default()
    });
    down.add_upstream(t(0), up_addr, stream).expect("upstream");
    // Shuttle datagrams between the two until the downstream subscribes.
    for step in 0..20 {
        let now = t(step);
        while let Some((to, b)) = kept(&mut down) {
            if to == up_addr {
                upstream.handle_datagram(now, down_addr, &b);
            }
        }
        while let Some((to, b)) = kept(&mut upstream) {
            if to == down_addr {
                down.handle_datagram(now, up_addr, &b);
            }
        }
    }
    assert!(down.upstreams().all(|u| u.subscribed));
    assert_eq!(upstream.subscriber_count(), 1);
}
