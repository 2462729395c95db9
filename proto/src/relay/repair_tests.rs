//! Repair answers within each subscriber's budget (issue 15, item 5a), in
//! virtual time.

use std::net::SocketAddr;
use std::time::Duration;

use super::budget::BudgetRule;
use super::tests::{
    FIRST_SEQ, PUBLISHER, drain_to, kept, published, session, subscribe, subscribe_from, t,
};
use super::*;
use crate::testutil::{addr, emit};
use crate::transmit::SharedBuf;
use crate::wire::MessageType;
use crate::wire::{Nack, NackEntry, NackKind};

/// A NACK for `len` chunks from each of the `starts`.
fn nack(
    stream: StreamId,
    session: u64,
    starts: impl IntoIterator<Item = u64>,
    len: u16,
) -> Vec<u8> {
    let mut n = Nack::new(stream, session);
    for start in starts {
        n.push(NackEntry {
            kind: NackKind::Chunks,
            start,
            len,
        });
    }
    emit(&Message::Nack(n))
}

fn bytes(bufs: &[SharedBuf]) -> u64 {
    bufs.iter().map(|b| b.len() as u64).sum()
}

#[test]
fn a_nack_loop_gets_at_most_the_budget_and_honest_nacks_are_answered() {
    let (stream, datagrams) = published(2000);
    let mut relay = Relay::new(RelayConfig::default());
    for (i, d) in datagrams.iter().enumerate() {
        relay.handle_datagram(t(i as u64 / 10), PUBLISHER, d);
    }
    while relay.poll_transmit().is_some() {}
    let newest = relay
        .window(&stream)
        .and_then(Window::newest_seq)
        .expect("chunks");
    assert!(newest - FIRST_SEQ > 500, "{newest} chunks held");
    let start = t(1000);
    let greedy: SocketAddr = addr("192.0.2.66:4000");
    let honest: SocketAddr = addr("192.0.2.77:4000");
    subscribe(&mut relay, start, greedy, stream);
    subscribe(&mut relay, start, honest, stream);
    // The first catch-up is free.
    drain_to(&mut relay, greedy);
    while relay.poll_transmit().is_some() {}

    // For one virtual second: the greedy subscriber asks for the whole
    // window every millisecond; the honest one for two chunks every 100 ms.
    let whole = nack(
        stream,
        session(&relay, greedy),
        (0..32).map(|e| FIRST_SEQ + e * 64),
        64,
    );
    let mut greedy_got = Vec::new();
    let (mut honest_asked, mut honest_got) = (0, 0);
    for ms in 0..1000 {
        let now = start + Duration::from_millis(ms);
        relay.handle_datagram(now, greedy, &whole);
        if ms % 100 == 0 {
            let seq = FIRST_SEQ + ms / 2;
            let ask = nack(stream, session(&relay, honest), [seq], 2);
            relay.handle_datagram(now, honest, &ask);
            honest_asked += 2;
        }
        let mut honest_bufs = Vec::new();
        while let Some((dst, b)) = kept(&mut relay) {
            if dst == greedy {
                greedy_got.push(b);
            } else if dst == honest {
                honest_bufs.push(b);
            }
        }
        honest_got += honest_bufs
            .iter()
            .filter(|b| peek_type(b) == Ok(MessageType::Data))
            .count();
    }
    let rule = BudgetRule::new(Some(3_000_000), 256);
    let allowed = rule.burst + rule.bytes_per_sec;
    assert!(
        bytes(&greedy_got) <= allowed,
        "the greedy subscriber got {} bytes, over the budget of {allowed}",
        bytes(&greedy_got)
    );
    // It got most of what it may (less one answer's last datagram a turn).
    assert!(bytes(&greedy_got) > allowed * 9 / 10);
    assert_eq!(honest_got, honest_asked, "the honest NACKs were answered");
    assert!(relay.stats().drop_repair_budget > 900);
}

#[test]
fn a_resubscription_pays_for_its_catch_up() {
    let (stream, datagrams) = published(2000);
    let mut relay = Relay::new(RelayConfig::default());
    for (i, d) in datagrams.iter().enumerate() {
        relay.handle_datagram(t(i as u64 / 10), PUBLISHER, d);
    }
    while relay.poll_transmit().is_some() {}
    let viewer = addr("192.0.2.66:4000");
    let now = t(1000);
    let rule = BudgetRule::new(Some(3_000_000), 256);
    let mut each = Vec::new();
    for _ in 0..10 {
        subscribe_from(&mut relay, now, viewer, stream, FIRST_SEQ);
        each.push(bytes(&drain_to(&mut relay, viewer)));
    }
    let total: u64 = each.iter().sum();
    assert!(each[0] > 200_000, "a catch-up of {} bytes", each[0]);
    // The first catch-up, then one budget, plus ACCEPTs and DESCRIPTORs.
    assert!(total <= each[0] + rule.burst + 10 * 400, "{each:?}");
    assert!(relay.stats().drop_repair_budget >= 8);
}

/// With `nack_skips_fresh` (a peer's upload side), a NACK for a chunk that
/// arrived within that span is not answered (the chunk was just pushed),
/// and the same NACK once the span has passed is.
#[test]
fn nacks_for_fresh_chunks_are_not_answered_where_the_relay_says_so() {
    let (stream, datagrams) = published(200);
    let fresh = Duration::from_millis(100);
    let mut relay = Relay::new(RelayConfig {
        nack_skips_fresh: Some(fresh),
        ..RelayConfig::default()
    });
    let arrived = t(1000);
    for d in &datagrams {
        relay.handle_datagram(arrived, PUBLISHER, d);
    }
    while relay.poll_transmit().is_some() {}
    let peer: SocketAddr = addr("192.0.2.88:4000");
    subscribe(&mut relay, arrived, peer, stream);
    drain_to(&mut relay, peer);
    while relay.poll_transmit().is_some() {}
    let ask = nack(stream, session(&relay, peer), [FIRST_SEQ], 4);
    let data_to_peer = |relay: &mut Relay| {
        let mut n = 0;
        while let Some((dst, b)) = kept(relay) {
            n += usize::from(dst == peer && peek_type(&b) == Ok(MessageType::Data));
        }
        n
    };
    relay.handle_datagram(arrived + fresh / 2, peer, &ask);
    assert_eq!(data_to_peer(&mut relay), 0, "fresh chunks were sent again");
    relay.handle_datagram(arrived + fresh, peer, &ask);
    assert_eq!(data_to_peer(&mut relay), 4, "older chunks were not sent");
}

/// With `nack_tells_lack` (a peer's upload side), a NACK that names
/// chunks the window does not hold is answered, after the chunks it does
/// hold, with a HAVE of what it holds from the first it lacks; a NACK for
/// held chunks only, or to a relay without the setting, gets none.
#[test]
fn a_nack_for_chunks_not_held_is_answered_with_what_is_held() {
    let (stream, datagrams) = published(200);
    // One chunk from the middle never comes, nor any PARITY to rebuild it.
    let seq_of = |b: &[u8]| match Message::parse(b) {
        Ok(Message::Data(d)) => Some(d.seq),
        _ => None,
    };
    let gap = FIRST_SEQ + 20;
    let fed: Vec<&Vec<u8>> = datagrams
        .iter()
        .filter(|b| seq_of(b) != Some(gap) && peek_type(b) != Ok(MessageType::Parity))
        .collect();
    assert!(
        fed.iter().any(|b| seq_of(b) == Some(gap + 3)),
        "a stream past the gap"
    );
    let at = t(1000);
    let peer: SocketAddr = addr("192.0.2.99:4000");
    let answers = |tells: bool, start: u64, len: u16| {
        let mut relay = Relay::new(RelayConfig {
            nack_tells_lack: tells,
            ..RelayConfig::default()
        });
        for d in &fed {
            relay.handle_datagram(at, PUBLISHER, d);
        }
        while relay.poll_transmit().is_some() {}
        subscribe(&mut relay, at, peer, stream);
        drain_to(&mut relay, peer);
        while relay.poll_transmit().is_some() {}
        let id = session(&relay, peer);
        let ask = nack(stream, id, [start], len);
        relay.handle_datagram(at + Duration::from_secs(1), peer, &ask);
        let mut out = Vec::new();
        while let Some((dst, b)) = kept(&mut relay) {
            assert_eq!(dst, peer);
            out.push(match Message::parse(&b).expect("parses") {
                Message::Have(h) => Some(h),
                _ => None,
            });
        }
        (id, out)
    };
    // gap - 2 ..= gap + 2: four held, the gap not.
    let (id, out) = answers(true, gap - 2, 5);
    let Some(Some(have)) = out.last() else {
        panic!("no HAVE last: {out:?}");
    };
    assert_eq!((have.session, have.base), (id, gap), "{have:?}");
    assert_eq!(have.mask & 0b111, 0b110, "held after the gap: {have:?}");
    let chunks = out.iter().filter(|m| m.is_none()).count();
    assert!(chunks >= 4, "the held chunks were not sent first: {out:?}");
    // Only held chunks: no HAVE.
    let (_, out) = answers(true, gap + 1, 2);
    assert!(out.iter().all(Option::is_none), "{out:?}");
    // A relay without the setting never tells.
    let (_, out) = answers(false, gap - 2, 5);
    assert!(out.iter().all(Option::is_none), "{out:?}");
}
