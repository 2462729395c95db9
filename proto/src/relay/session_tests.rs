//! Binding (SPEC §11.4): every session message after the handshake must
//! carry the subscription's session id. A spoofer who knows a subscriber's
//! address but guesses the id can neither end, keep, nor steer it, and
//! gets no answer; what the relay itself sends carries the id.

use std::net::SocketAddr;

use super::tests::{
    PUBLISHER, drain_to, kept, published, send, session, subscribe, t, take_from_upstream,
};
use super::*;
use crate::testutil::SESSION;
use crate::wire::{Have, Introduce, Member, Nack, NackKind, Peers};

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 11], 7000 + i))
}

fn relay_with_stream() -> (Relay, StreamId) {
    let (stream, datagrams) = published(100);
    let mut relay = Relay::new(RelayConfig {
        cookie_secret: [9; 32],
        ..RelayConfig::default()
    });
    relay.handle_datagram(t(0), PUBLISHER, &datagrams[0]);
    while relay.poll_transmit().is_some() {}
    (relay, stream)
}

/// Every session message a subscriber sends, in session `session`.
fn everything(stream: StreamId, session: u64, other: SocketAddr) -> Vec<Message<'static>> {
    let mut nack = Nack::new(stream, session);
    nack.push(crate::wire::NackEntry {
        kind: NackKind::Chunks,
        start: 0,
        len: 64,
    });
    vec![
        Message::Keepalive(crate::testutil::keepalive(stream, session)),
        Message::Nack(nack),
        Message::Peers(Peers::new(stream, session, 0)),
        Message::Have(Have {
            stream,
            session,
            base: 0,
            mask: u64::MAX,
        }),
        Message::Member(Member {
            stream,
            session,
            clubs: u64::MAX,
            upload_kbps: 1000,
        }),
        Message::Introduce(Introduce {
            stream,
            session,
            addr: other,
        }),
        Message::Leave(Leave {
            reason: LeaveReason::Done,
            stream,
            session,
        }),
    ]
}

#[test]
fn session_messages_with_a_wrong_id_are_dropped_unanswered_and_counted() {
    let (mut relay, stream) = relay_with_stream();
    let (a, b) = (addr(1), addr(2));
    subscribe(&mut relay, t(1), a, stream);
    subscribe(&mut relay, t(1), b, stream);
    while relay.poll_transmit().is_some() {}
    let id = session(&relay, a);
    assert_ne!(id, 0);
    assert_ne!(id, session(&relay, b), "each subscription its own id");
    let forged = everything(stream, id ^ 1, b);
    for msg in &forged {
        send(&mut relay, t(2), a, msg);
    }
    assert!(relay.poll_transmit().is_none(), "a spoofer gets no answer");
    assert_eq!(relay.stats().drop_bad_session, forged.len() as u64);
    assert_eq!(
        relay.subscriber_count(),
        2,
        "LEAVE in a's name ended nothing"
    );
    let sub = relay.subs[relay.sub_index[&a]].as_ref().expect("a");
    assert_eq!(
        (sub.member, sub.have, sub.last_heard),
        (0, None, t(1)),
        "MEMBER, HAVE and KEEPALIVE in a's name changed nothing"
    );
    // The same messages with a's id are a's own.
    for msg in &everything(stream, id, b)[..6] {
        send(&mut relay, t(3), a, msg);
    }
    let sub = relay.subs[relay.sub_index[&a]].as_ref().expect("a");
    assert_eq!((sub.member, sub.last_heard), (u64::MAX, t(3)));
    assert!(sub.have.is_some());
    let leave = Leave {
        reason: LeaveReason::Done,
        stream,
        session: id,
    };
    send(&mut relay, t(4), a, &Message::Leave(leave));
    assert_eq!(relay.subscriber_count(), 1);
    assert_eq!(relay.stats().drop_bad_session, forged.len() as u64);
}

#[test]
fn a_stranger_gets_not_subscribed_no_larger_than_what_it_sent_and_nothing_else() {
    let (mut relay, stream) = relay_with_stream();
    let stranger = addr(9);
    for msg in &everything(stream, 7, addr(1)) {
        send(&mut relay, t(1), stranger, msg);
        let answers = drain_to(&mut relay, stranger);
        match msg {
            Message::Keepalive(_) | Message::Nack(_) => {
                assert_eq!(answers.len(), 1);
                assert!(answers[0].len() <= msg.buffer_len(), "{msg:?}");
                assert!(matches!(
                    Message::parse(&answers[0]),
                    Ok(Message::Reject(r)) if r.reason == RejectReason::NotSubscribed
                ));
            }
            _ => assert!(answers.is_empty(), "{msg:?} answered"),
        }
    }
    assert_eq!(relay.stats().drop_not_subscribed, 7);
    assert_eq!(relay.stats().drop_bad_session, 0);
}

#[test]
fn spoofed_keepalives_do_not_keep_a_departed_subscriber() {
    let (mut relay, stream) = relay_with_stream();
    let a = addr(1);
    subscribe(&mut relay, t(0), a, stream);
    while relay.poll_transmit().is_some() {}
    let id = session(&relay, a);
    // `a` is gone; a spoofer keeps sending KEEPALIVEs in its name, ten a
    // second, guessing ids.
    let timeout = RelayConfig::default().subscriber_timeout;
    let mut now = t(0);
    let mut guess = 1u64;
    let mut leave = None;
    while now < t(0) + timeout * 2 && leave.is_none() {
        now += Duration::from_millis(100);
        guess = guess.wrapping_mul(6364136223846793005).wrapping_add(1);
        let keepalive = &everything(stream, guess, a)[0];
        send(&mut relay, now, a, keepalive);
        relay.handle_timeout(now);
        leave = drain_to(&mut relay, a)
            .iter()
            .find_map(|b| match Message::parse(b) {
                Ok(Message::Leave(l)) => Some((now, l)),
                _ => None,
            });
    }
    let (at, l) = leave.expect("a expired");
    assert_eq!((l.reason, l.session), (LeaveReason::Expired, id));
    assert!(at <= t(0) + timeout + timeout / 4 + Duration::from_millis(100));
    assert_eq!(relay.stats().expired, 1);
    assert!(relay.stats().drop_bad_session >= 40);
}

#[test]
fn a_resubscription_keeps_the_id_and_everything_sent_to_a_subscriber_carries_it() {
    let (mut relay, stream) = relay_with_stream();
    let (a, b) = (addr(1), addr(2));
    let accepted = |relay: &mut Relay, to| {
        drain_to(relay, to)
            .iter()
            .find_map(|d| match Message::parse(d) {
                Ok(Message::Accept(acc)) => Some(acc.session),
                _ => None,
            })
            .expect("an ACCEPT")
    };
    subscribe(&mut relay, t(1), a, stream);
    let id = accepted(&mut relay, a);
    assert_eq!(id, session(&relay, a));
    // A retransmitted or changed SUBSCRIBE from the same address.
    subscribe(&mut relay, t(2), a, stream);
    assert_eq!(accepted(&mut relay, a), id);
    subscribe(&mut relay, t(2), b, stream);
    let id_b = accepted(&mut relay, b);
    // b is a member; a asks for peers and is introduced to b.
    let member = Member {
        stream,
        session: id_b,
        clubs: 1,
        upload_kbps: 1000,
    };
    send(&mut relay, t(3), b, &Message::Member(member));
    send(
        &mut relay,
        t(3),
        a,
        &Message::Peers(Peers::new(stream, id, 0)),
    );
    let intro = Introduce {
        stream,
        session: id,
        addr: b,
    };
    send(&mut relay, t(3), a, &Message::Introduce(intro));
    let mut sent = Vec::new();
    while let Some((to, d)) = kept(&mut relay) {
        sent.push((to, Message::parse(&d).ok().and_then(|m| session_in(&m))));
    }
    assert_eq!(
        sent,
        [(a, Some(id)), (b, Some(id_b))],
        "PEERS to a, INTRODUCE to b"
    );
    relay.shutdown();
    let mut left: Vec<_> = std::iter::from_fn(|| kept(&mut relay))
        .filter_map(|(to, d)| match Message::parse(&d) {
            Ok(Message::Leave(l)) => Some((to, l.session)),
            _ => None,
        })
        .collect();
    left.sort();
    assert_eq!(left, [(a, id), (b, id_b)]);
}

fn session_in(msg: &Message<'_>) -> Option<u64> {
    match msg {
        Message::Peers(p) => Some(p.session),
        Message::Introduce(i) => Some(i.session),
        _ => None,
    }
}

#[test]
fn an_upstream_link_is_not_cut_by_a_leave_without_its_id() {
    let (stream, _) = published(100);
    let upstream = addr(50);
    let mut relay = Relay::new(RelayConfig::default());
    take_from_upstream(&mut relay, upstream, stream);
    // Ten a second, for two seconds, with guessed ids.
    for i in 0..20u64 {
        let leave = Leave {
            reason: LeaveReason::ShuttingDown,
            stream,
            session: SESSION ^ (i + 1),
        };
        send(
            &mut relay,
            t(100 + 100 * i),
            upstream,
            &Message::Leave(leave),
        );
    }
    assert!(relay.upstreams().all(|u| u.subscribed), "still subscribed");
    assert_eq!(relay.stats().drop_bad_session, 20);
    // What the relay sends upstream carries the id.
    relay.handle_timeout(t(2500));
    let keepalive =
        std::iter::from_fn(|| kept(&mut relay)).find_map(|(_, d)| match Message::parse(&d) {
            Ok(Message::Keepalive(k)) => Some(k.session),
            _ => None,
        });
    assert_eq!(keepalive, Some(SESSION));
    // The real LEAVE ends the session.
    let leave = Leave {
        reason: LeaveReason::ShuttingDown,
        stream,
        session: SESSION,
    };
    send(&mut relay, t(2600), upstream, &Message::Leave(leave));
    assert!(relay.upstreams().all(|u| !u.subscribed));
}
