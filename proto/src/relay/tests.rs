//! The relay core's own tests; scenarios over a network are in `tests/`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::WallClock;
use crate::integrity::PublisherKey;
use crate::publisher::{Publisher, PublisherConfig};
use crate::transmit::SharedBuf;
use crate::wire::MessageType;
use crate::wire::{Codec, HELLO_MIN_LEN, Hello, Nack, NackKind, SUPPORTED_VERSIONS};

pub(super) const PUBLISHER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9);

pub(super) use crate::testutil::t;
use crate::testutil::{emit, handshake_answers};

/// The first `seq` (and block) of [`published`]'s run: its epoch, `t(0)`.
pub(super) const FIRST_SEQ: u64 = 1_000_000;

/// Runs a publisher for `ms` and returns every datagram it sent.
pub(super) fn published(ms: u64) -> (StreamId, Vec<Vec<u8>>) {
    published_on(ms, WallClock::default())
}

/// [`published`] by a publisher whose wall clock is `clock`.
pub(super) fn published_on(ms: u64, clock: WallClock) -> (StreamId, Vec<Vec<u8>>) {
    let key = PublisherKey::from_seed([3; 32]);
    let config = PublisherConfig {
        codec: Codec::Opaque,
        wall_clock: clock,
        ..PublisherConfig::default()
    };
    let relay: SocketAddr = "127.0.0.1:7400".parse().expect("addr");
    let mut p = Publisher::new(key, config, vec![relay], t(0)).expect("publisher");
    assert_eq!(p.epoch(), clock.wall_at(t(0)).as_micros());
    let mut out = Vec::new();
    for step in 0..ms {
        let now = t(step);
        p.handle_input(now, &[step as u8; 400]);
        if p.poll_timeout().is_some_and(|at| at <= now) {
            p.handle_timeout(now);
        }
        while let Some(tx) = p.poll_transmit() {
            out.push(tx.payload.to_vec());
        }
    }
    (p.stream_id(), out)
}

pub(super) fn subscribe(relay: &mut Relay, now: Time, from: SocketAddr, stream: StreamId) {
    subscribe_clubs(relay, now, from, stream, u64::MAX);
}

pub(super) fn subscribe_clubs(
    relay: &mut Relay,
    now: Time,
    from: SocketAddr,
    stream: StreamId,
    clubs: u64,
) {
    subscribe_with_token(relay, now, from, stream, clubs, &[]);
}

/// HELLO, then SUBSCRIBE with the cookie and `token`.
pub(super) fn subscribe_with_token(
    relay: &mut Relay,
    now: Time,
    from: SocketAddr,
    stream: StreamId,
    clubs: u64,
    token: &[u8],
) {
    handshake(relay, now, from, stream, clubs, None, token);
}

/// HELLO, then SUBSCRIBE with RESUME from `seq`.
pub(super) fn subscribe_from(
    relay: &mut Relay,
    now: Time,
    from: SocketAddr,
    stream: StreamId,
    seq: u64,
) {
    handshake(relay, now, from, stream, u64::MAX, Some(seq), &[]);
}

/// HELLO, then SUBSCRIBE with the cookie the CHALLENGE carried.
fn handshake(
    relay: &mut Relay,
    now: Time,
    from: SocketAddr,
    stream: StreamId,
    clubs: u64,
    start_seq: Option<u64>,
    token: &[u8],
) {
    relay.handle_datagram(now, from, &hello());
    let cookie = drain_to(relay, from)
        .iter()
        .find_map(|b| match Message::parse(b) {
            Ok(Message::Challenge(c)) => Some(c.cookie),
            _ => None,
        })
        .expect("a challenge");
    let sub = Message::Subscribe(crate::wire::Subscribe {
        stream,
        clubs,
        start_seq,
        cookie,
        token,
    });
    send(relay, now, from, &sub);
}

/// Where the ACCEPT `relay` sends to `to` starts, draining the rest.
fn accepted_start(relay: &mut Relay, to: SocketAddr) -> u64 {
    drain_to(relay, to)
        .iter()
        .find_map(|b| match Message::parse(b) {
            Ok(Message::Accept(a)) => Some(a.start_seq),
            _ => None,
        })
        .expect("an ACCEPT")
}

/// A client's HELLO, padded as it must be.
pub(super) fn hello() -> Vec<u8> {
    emit(&Message::Hello(Hello {
        versions: SUPPORTED_VERSIONS,
        nonce: 1,
        padded_len: HELLO_MIN_LEN as u16,
    }))
}

/// `msg`, from `from`.
pub(super) fn send(relay: &mut Relay, now: Time, from: SocketAddr, msg: &Message<'_>) {
    relay.handle_datagram(now, from, &emit(msg));
}

/// Has `relay` take `stream` from `upstream` at `t(0)`; the upstream
/// answers its HELLO and SUBSCRIBE at `t(1)` as [`handshake_answers`] does.
pub(super) fn take_from_upstream(relay: &mut Relay, upstream: SocketAddr, stream: StreamId) {
    relay
        .add_upstream(t(0), upstream, stream)
        .expect("an upstream");
    let nonce = std::iter::from_fn(|| kept(relay))
        .find_map(|(_, d)| match Message::parse(&d) {
            Ok(Message::Hello(h)) => Some(h.nonce),
            _ => None,
        })
        .expect("a HELLO");
    for answer in handshake_answers(stream, nonce, 0) {
        send(relay, t(1), upstream, &answer);
    }
    while relay.poll_transmit().is_some() {}
    assert!(relay.upstreams().all(|u| u.subscribed));
}

/// The session id the relay gave the subscriber at `addr` (0 if none).
pub(super) fn session(relay: &Relay, addr: SocketAddr) -> u64 {
    relay
        .sub_index
        .get(&addr)
        .and_then(|&i| relay.subs[i].as_ref())
        .map_or(0, |s| s.session)
}

/// The next datagram `relay` sends, kept as an IO shell keeps it.
pub(super) fn kept(relay: &mut Relay) -> Option<(SocketAddr, SharedBuf)> {
    relay
        .poll_transmit()
        .map(|t| (t.dst, SharedBuf::clone(t.payload)))
}

/// What `relay` sends to `to`, shared buffers and all.
pub(super) fn drain_to(relay: &mut Relay, to: SocketAddr) -> Vec<SharedBuf> {
    let mut out = Vec::new();
    while let Some((dst, b)) = kept(relay) {
        if dst == to {
            out.push(b);
        }
    }
    out
}

#[test]
fn a_mirror_serves_the_owners_buffers_without_copying() {
    let (stream, datagrams) = published(400);
    let mut owner = Relay::new(RelayConfig::default());
    owner.set_export(true);
    let mut mirror = Relay::new(RelayConfig::default());
    let viewer: SocketAddr = "127.0.0.2:5000".parse().expect("addr");
    let mut exports = Vec::new();
    let mut subscribed = false;
    let mut received = Vec::new();
    for (i, d) in datagrams.iter().enumerate() {
        let now = t(i as u64);
        owner.handle_datagram(now, PUBLISHER, d);
        while owner.poll_transmit().is_some() {}
        while let Some(e) = owner.poll_export() {
            exports.push(e.buf.clone());
            mirror.handle_adopt(now, e);
        }
        if !subscribed && mirror.stream_count() == 1 {
            subscribe(&mut mirror, now, viewer, stream);
            subscribed = true;
        }
        received.extend(drain_to(&mut mirror, viewer));
    }
    assert!(subscribed);
    let data: Vec<_> = received
        .iter()
        .filter(|b| peek_type(b) == Ok(MessageType::Data))
        .collect();
    assert!(
        data.len() > 100,
        "the mirror fanned out {} chunks",
        data.len()
    );
    // Every chunk the subscriber got is the owner's own buffer, not a copy.
    for d in &data {
        assert!(
            exports.iter().any(|e| Arc::ptr_eq(e, d)),
            "a chunk was copied on its way through the mirror"
        );
    }
    // And the owner verified each block's signature; the mirror none.
    assert!(owner.window_stats().manifests_verified > 0);
    assert_eq!(owner.stats().dropped(), 0);
    assert_eq!(mirror.stats().dropped(), 0);
}

#[test]
fn a_mirror_refuses_direct_ingest_of_a_mirrored_stream() {
    let (_, datagrams) = published(100);
    let mut owner = Relay::new(RelayConfig::default());
    owner.set_export(true);
    let mut mirror = Relay::new(RelayConfig::default());
    for d in &datagrams {
        owner.handle_datagram(t(0), PUBLISHER, d);
    }
    while let Some(e) = owner.poll_export() {
        mirror.handle_adopt(t(0), e);
    }
    let before = mirror.stats().drop_wrong_stream;
    mirror.handle_datagram(t(1), PUBLISHER, &datagrams[datagrams.len() - 1]);
    assert_eq!(mirror.stats().drop_wrong_stream, before + 1);
}

#[test]
fn a_mirror_over_its_stream_limit_counts_stream_limit_not_wrong_stream() {
    let (stream, datagrams) = published(10);
    let mut owner = Relay::new(RelayConfig::default());
    owner.set_export(true);
    let mut mirror = Relay::new(RelayConfig {
        max_streams: 0,
        ..RelayConfig::default()
    });
    for d in &datagrams {
        owner.handle_datagram(t(0), PUBLISHER, d);
    }
    let mut exports = 0;
    while let Some(e) = owner.poll_export() {
        mirror.handle_adopt(t(0), e);
        exports += 1;
    }
    assert!(exports > 0);
    assert!(mirror.window(&stream).is_none());
    assert_eq!(mirror.stats().drop_stream_limit, exports);
    assert_eq!(mirror.stats().drop_wrong_stream, 0);
    assert_eq!(
        mirror.add_upstream(t(0), PUBLISHER, stream),
        Err(Rejection::StreamLimit)
    );
}

#[test]
fn hellos_over_the_per_ip_rate_are_dropped_and_counted() {
    let config = RelayConfig {
        handshake_rate: 10,
        handshake_burst: 20,
        ..RelayConfig::default()
    };
    let mut relay = Relay::new(config);
    let hello = hello();
    let mut challenges = 0;
    for port in 0..100u16 {
        let from = SocketAddr::from(([198, 51, 100, 7], 1000 + port));
        relay.handle_datagram(t(0), from, &hello);
        while relay.poll_transmit().is_some() {
            challenges += 1;
        }
    }
    assert_eq!(challenges, 20, "the burst, whatever the source port");
    assert_eq!(relay.stats().drop_rate_limited, 80);
    // Another address is served.
    relay.handle_datagram(t(0), SocketAddr::from(([198, 51, 100, 8], 1)), &hello);
    assert!(relay.poll_transmit().is_some());
}

#[test]
fn a_query_is_answered_with_the_web_face_and_never_amplifies() {
    use crate::wire::{About, QUERY_LEN, Query};
    let page = format!("https://{}.example/", "a".repeat(180));
    let mut relay = Relay::new(RelayConfig {
        handshake_rate: 10,
        handshake_burst: 2,
        web: WebFace {
            http_port: 8080,
            page: page.clone(),
        },
        ..RelayConfig::default()
    });
    let from = SocketAddr::from(([198, 51, 100, 7], 1000));
    let query = emit(&Message::Query(Query { nonce: 42 }));
    relay.handle_datagram(t(0), from, &query);
    let sent = relay.poll_transmit().expect("an ABOUT");
    assert_eq!(sent.dst, from);
    assert!(sent.payload.len() < QUERY_LEN, "no amplification");
    let about = About::parse(sent.payload).expect("parses");
    assert_eq!((about.nonce, about.http_port), (42, 8080));
    assert_eq!(about.page_url(), Some(page.as_str()));
    // Short QUERYs are malformed; QUERYs share HELLO's per-IP rate.
    relay.handle_datagram(t(0), from, &query[..QUERY_LEN - 1]);
    assert!(relay.poll_transmit().is_none());
    relay.handle_datagram(t(0), from, &hello());
    relay.handle_datagram(t(0), from, &query);
    let answered = std::iter::from_fn(|| relay.poll_transmit().map(|_| ())).count();
    assert_eq!(answered, 1, "the burst of 2 is spent");
    assert_eq!(relay.stats().drop_rate_limited, 1);
}

#[test]
fn an_unanswered_upstream_fails_over_to_the_next() {
    let (stream, _) = published(1);
    let dead: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let live: SocketAddr = "127.0.0.1:2".parse().expect("addr");
    let mut relay = Relay::new(RelayConfig::default());
    relay
        .add_upstreams(t(0), &[dead, live], stream)
        .expect("stream");
    let hellos_to = |relay: &mut Relay| {
        let mut to = Vec::new();
        while let Some((dst, b)) = kept(relay) {
            if peek_type(&b) == Ok(MessageType::Hello) {
                to.push(dst);
            }
        }
        to
    };
    assert_eq!(hellos_to(&mut relay), vec![dead]);
    let mut now = t(0);
    let mut saw_live = false;
    while now < t(0) + FAILOVER_AFTER + Duration::from_millis(500) {
        now = relay.poll_timeout().expect("a timer");
        relay.handle_timeout(now);
        let to = hellos_to(&mut relay);
        if to.contains(&live) {
            saw_live = true;
            break;
        }
        assert!(
            to.iter().all(|&a| a == dead),
            "only the first upstream before failover"
        );
    }
    assert!(saw_live, "failed over to the second upstream");
    assert!(now >= t(0) + FAILOVER_AFTER);
    let status: Vec<_> = relay.upstreams().collect();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].server, live);
    assert_eq!(status[0].failovers, 1);
    assert!(!status[0].subscribed);
}

#[test]
fn a_mirror_lets_go_of_buffers_before_the_owner_reuses_them() {
    let (stream, datagrams) = published(2000);
    let config = RelayConfig {
        window: WindowConfig {
            capacity: 128,
            ..WindowConfig::default()
        },
        ..RelayConfig::default()
    };
    let mut owner = Relay::new(config.clone());
    owner.set_export(true);
    let mut mirror = Relay::new(config);
    for (i, d) in datagrams.iter().enumerate() {
        owner.handle_datagram(t(i as u64), PUBLISHER, d);
        while owner.poll_transmit().is_some() {}
        while let Some(e) = owner.poll_export() {
            mirror.handle_adopt(t(i as u64), e);
        }
        while mirror.poll_transmit().is_some() {}
    }
    let window = owner.window(&stream).expect("stream");
    let newest = window.newest_seq().expect("chunks");
    assert!(newest > 3 * 128, "the window wrapped several times");
    // The oldest eighth of the owner's window is the owner's alone: the
    // next chunks overwrite these slots in place.
    for seq in window.oldest_seq()..window.oldest_seq() + 16 {
        if let Some(buf) = window.chunk_buf(seq) {
            assert_eq!(Arc::strong_count(buf), 1, "chunk {seq} still shared");
        }
    }
    // The newest chunks are shared with the mirror.
    let buf = window.chunk_buf(newest).expect("newest");
    assert_eq!(Arc::strong_count(buf), 2);
}

#[test]
fn chunks_whose_manifest_never_comes_are_counted_as_drops() {
    let (_, datagrams) = published(200);
    let mut relay = Relay::new(RelayConfig::default());
    let mut withheld = 0;
    for d in &datagrams {
        match peek_type(d) {
            Ok(MessageType::Manifest) => {}
            Ok(MessageType::Data | MessageType::Parity) => {
                relay.handle_datagram(t(0), PUBLISHER, d);
                withheld += 1;
            }
            _ => relay.handle_datagram(t(0), PUBLISHER, d),
        }
    }
    assert!(withheld > 0);
    relay.handle_timeout(t(0) + WindowConfig::default().manifest_wait);
    assert_eq!(relay.stats().drop_manifest_missing, withheld);
    assert_eq!(relay.stats().forwarded, 0);
}

#[test]
fn catch_up_keeps_to_the_subscribers_clubs_and_nacks_are_answered_for_all() {
    let (stream, datagrams) = published(600);
    let mut relay = Relay::new(RelayConfig::default());
    for d in &datagrams {
        relay.handle_datagram(t(0), PUBLISHER, d);
    }
    while relay.poll_transmit().is_some() {}
    let clubs = relay
        .window(&stream)
        .and_then(|w| w.descriptor().map(|(d, _)| d.clubs))
        .expect("a descriptor");
    assert!(clubs > 1);
    let peer: SocketAddr = "127.0.0.3:6000".parse().expect("addr");
    // Club 1 only.
    subscribe_clubs(&mut relay, t(1), peer, stream, 1 << 1);
    let data_seqs = |bufs: Vec<SharedBuf>| -> Vec<u64> {
        bufs.iter()
            .filter_map(|b| {
                crate::wire::DataView::new_checked(b)
                    .ok()
                    .map(|v| v.fields().seq)
            })
            .collect()
    };
    let caught_up = data_seqs(drain_to(&mut relay, peer));
    assert!(!caught_up.is_empty(), "catch-up sent chunks");
    assert!(
        caught_up.iter().all(|s| s % u64::from(clubs) == 1),
        "{caught_up:?}"
    );
    let mut nack = Nack::new(stream, session(&relay, peer));
    nack.push(crate::wire::NackEntry {
        kind: NackKind::Chunks,
        start: FIRST_SEQ,
        len: 64,
    });
    send(&mut relay, t(2), peer, &Message::Nack(nack));
    // NACKs are answered for every club (an ordinary peer asks its relay
    // for chunks of clubs its peers lost), never beyond the request.
    let resent = data_seqs(drain_to(&mut relay, peer));
    let expected: Vec<u64> = (FIRST_SEQ..FIRST_SEQ + 64).collect();
    assert_eq!(resent, expected);
}

/// Found by the 10-minute soak: the relay's owner never read events, and
/// every join and leave queued one for ever. The queue is bounded now.
#[test]
fn unread_events_do_not_pile_up() {
    let (stream, datagrams) = published(100);
    let mut relay = Relay::new(RelayConfig::default());
    relay.handle_datagram(t(0), PUBLISHER, &datagrams[0]);
    for i in 0..3000u16 {
        let from = SocketAddr::from(([127, 21, (i >> 8) as u8, i as u8], 1000));
        subscribe(&mut relay, t(1), from, stream);
        let leave = Message::Leave(Leave {
            reason: LeaveReason::Done,
            stream,
            session: session(&relay, from),
        });
        send(&mut relay, t(1), from, &leave);
        while relay.poll_transmit().is_some() {}
    }
    assert_eq!(relay.stats().accepted, 3000);
    assert_eq!(relay.events.len(), MAX_EVENTS);
    // The newest are kept.
    assert!(matches!(
        relay.events.back(),
        Some(RelayEvent::SubscriberLeft(_, LeaveReason::Done))
    ));
}

/// Found by the flood: forged DATA for the stream, from anyone, sat
/// unchecked in the window until its block's manifest came. One that
/// claimed a block far ahead moved the window slot of the block in
/// flight, so the real MANIFEST was refused as stale and the block lost.
/// Now only a proven source may send chunks ahead of their manifest.
#[test]
fn forged_chunks_ahead_of_their_manifest_cannot_displace_real_ones() {
    let (stream, datagrams) = published(600);
    // 64 chunks, so 16 block slots: block B + 16 lands in B's slot.
    let mut relay = Relay::new(RelayConfig {
        window: WindowConfig {
            capacity: 64,
            ..WindowConfig::default()
        },
        ..RelayConfig::default()
    });
    let viewer: SocketAddr = "127.0.0.2:5000".parse().expect("addr");
    let forger: SocketAddr = "127.0.0.66:6666".parse().expect("addr");
    relay.handle_datagram(t(0), PUBLISHER, &datagrams[0]);
    subscribe(&mut relay, t(0), viewer, stream);
    let (mut published_chunks, mut forged, mut got) = (0, 0, 0);
    let mut last_chunk: Option<Vec<u8>> = None;
    for d in &datagrams[1..] {
        // Ahead of every real datagram: a chunk claiming the block 16
        // ahead of the last one seen, with a seq the window accepts.
        if let Some(c) = &last_chunk {
            let mut fake = c.clone();
            let block = u64::from_be_bytes(c[44..52].try_into().expect("8 bytes"));
            fake[44..52].copy_from_slice(&(block + 16).to_be_bytes());
            let seq = u64::from_be_bytes(c[36..44].try_into().expect("8 bytes")) + 1;
            fake[36..44].copy_from_slice(&seq.to_be_bytes());
            fake[3] = (seq % 8) as u8;
            relay.handle_datagram(t(1), forger, &fake);
            forged += 1;
        }
        relay.handle_datagram(t(1), PUBLISHER, d);
        if peek_type(d) == Ok(MessageType::Data) {
            published_chunks += 1;
            last_chunk = Some(d.clone());
        }
        got += drain_to(&mut relay, viewer)
            .iter()
            .filter(|b| peek_type(b) == Ok(MessageType::Data))
            .count();
    }
    assert!(published_chunks > 100);
    let s = relay.stats();
    assert_eq!(got, published_chunks, "every real chunk got through: {s:?}");
    assert_eq!(s.drop_unproven, forged, "{s:?}");
    assert_eq!(s.drop_replayed, 0, "{s:?}");
}

/// A late joiner starts at the newest keyframe only while one catch-up
/// (`nack_limit` chunks) reaches the live edge from it; beyond that, at the
/// live edge. (Found by the soak: an opaque stream flags only its first
/// chunk, and every joiner got 256 old chunks.)
#[test]
fn a_late_joiner_starts_at_a_recent_keyframe_or_else_at_the_live_edge() {
    let start_of = |ms: u64| {
        let (stream, datagrams) = published(ms);
        let mut relay = Relay::new(RelayConfig::default());
        for d in &datagrams {
            relay.handle_datagram(t(0), PUBLISHER, d);
        }
        while relay.poll_transmit().is_some() {}
        let viewer: SocketAddr = "127.0.0.3:5000".parse().expect("addr");
        subscribe(&mut relay, t(1), viewer, stream);
        let live_edge = relay
            .window(&stream)
            .and_then(Window::newest_seq)
            .map_or(0, |n| n + 1);
        let start = accepted_start(&mut relay, viewer);
        (start, live_edge)
    };
    // Only the first chunk of an opaque stream is a keyframe.
    let (start, live_edge) = start_of(300);
    let live = live_edge - FIRST_SEQ;
    assert!(live > 16 && live <= 256, "{live}");
    assert_eq!(start, FIRST_SEQ, "the keyframe is in reach");
    let (start, live_edge) = start_of(1500);
    assert!(live_edge - FIRST_SEQ > 256, "{live_edge}");
    assert_eq!(start, live_edge, "the keyframe is too far back");
}

/// Forged DESCRIPTORs for streams the relay does not carry (valid keys,
/// random signatures) cost a bounded number of signature checks: the
/// relay's budget for checks that fail, then THROTTLED.
#[test]
fn forged_descriptors_for_new_streams_cost_a_bounded_number_of_checks() {
    use crate::wire::{Codec, DESCRIPTOR_LEN, Descriptor};
    let mut relay = Relay::new(RelayConfig::default());
    let seconds = 3u64;
    let mut sent = 0u64;
    for i in 0..3000u64 {
        let key = PublisherKey::from_seed([(i % 251) as u8 + 1; 32]);
        let mut signature = [0x33u8; 64];
        signature[63] &= 0x0f;
        signature[0] = i as u8;
        let d = Descriptor {
            codec: Codec::Opaque,
            clubs: 8,
            k: 16,
            m: 4,
            chunk_size: 1316,
            stream: key.stream_id(),
            bitrate_bps: 1_000_000,
            revision: 1,
            block_ms: 50,
            issued_at_us: t(0).as_micros(),
            epoch: t(0).as_micros(),
            signature,
        };
        let mut buf = [0u8; DESCRIPTOR_LEN];
        d.emit(&mut buf).expect("emit");
        let from = SocketAddr::from(([192, 0, 2, (i % 200) as u8 + 1], 5000));
        relay.handle_datagram(t(i * seconds * 1000 / 3000), from, &buf);
        sent += 1;
    }
    let s = relay.stats();
    assert!(
        s.drop_forged <= crate::window::FAILED_BURST + crate::window::FAILED_PER_SEC * seconds,
        "{} failed checks for {sent} forgeries",
        s.drop_forged
    );
    assert!(s.drop_throttled >= sent / 2, "{s:?}");
    assert_eq!(relay.stream_count(), 0);
}

/// Found by the `relay` fuzz target: a SUBSCRIBE with RESUME to a stream
/// whose run is known (a verified DESCRIPTOR) but which has no chunk yet
/// clamped its `seq` between the run's start and 0, and panicked. It
/// starts at the run's start.
#[test]
fn a_resume_before_the_first_chunk_starts_at_the_run() {
    let (stream, datagrams) = published(10);
    let mut relay = Relay::new(RelayConfig::default());
    // The DESCRIPTOR only.
    relay.handle_datagram(t(0), PUBLISHER, &datagrams[0]);
    while relay.poll_transmit().is_some() {}
    let viewer: SocketAddr = "127.0.0.3:5000".parse().expect("addr");
    subscribe_from(&mut relay, t(1), viewer, stream, 5);
    let start = accepted_start(&mut relay, viewer);
    assert_eq!(start, FIRST_SEQ);
}

/// The IO shell checks a new stream's DESCRIPTOR before it locks the
/// table workers claim streams in: a forged one is refused there and
/// counted, a real one goes on to create the stream.
#[test]
fn a_new_streams_descriptor_is_proven_before_it_is_ingested() {
    let (stream, datagrams) = published(200);
    let mut relay = Relay::new(RelayConfig::default());
    let mut forged = datagrams[0].clone();
    if let Some(last) = forged.last_mut() {
        *last ^= 1;
    }
    let header = |bytes| StreamHeader::new(bytes).expect("a stream datagram");
    assert!(
        relay
            .prove_new_stream(t(0), PUBLISHER, header(&forged))
            .is_none()
    );
    assert_eq!(relay.stats().drop_forged, 1);
    assert_eq!(relay.stats().datagrams_in, 1);
    let proven = relay.prove_new_stream(t(0), PUBLISHER, header(&datagrams[0]));
    let proven = proven.expect("a real DESCRIPTOR is proven");
    relay.handle_stream(t(0), PUBLISHER, proven);
    assert!(relay.window(&stream).is_some());
    assert_eq!(relay.stats().datagrams_in, 2);
    // Anything else, or a stream carried, is not its business.
    for d in &datagrams[..2] {
        assert!(relay.prove_new_stream(t(0), PUBLISHER, header(d)).is_some());
    }
}

/// An ordinary peer's upload side (no MANIFESTs forwarded) sends the
/// DESCRIPTOR once, after its ACCEPT, and not each repeat: its subscribers
/// take the repeats from their relay with the MANIFESTs, as ten sources
/// would otherwise send ten copies a second. A relay forwards both.
#[test]
fn repeated_descriptors_go_where_manifests_go() {
    let (stream, datagrams) = published(2500);
    let is = |d: &[u8], ty: MessageType| peek_type(d).is_ok_and(|t| t == ty);
    let repeats: Vec<usize> = (0..datagrams.len())
        .filter(|&i| is(&datagrams[i], MessageType::Descriptor))
        .collect();
    assert!(repeats.len() >= 3, "{repeats:?}");
    let peer: SocketAddr = "127.0.0.3:6000".parse().expect("addr");
    for forward_manifests in [true, false] {
        let mut relay = Relay::new(RelayConfig {
            forward_manifests,
            ..RelayConfig::default()
        });
        let (before, after) = datagrams.split_at(repeats[1]);
        for d in before {
            relay.handle_datagram(t(0), PUBLISHER, d);
        }
        while relay.poll_transmit().is_some() {}
        subscribe(&mut relay, t(1), peer, stream);
        let accepted = drain_to(&mut relay, peer);
        let count = |bufs: &[SharedBuf], ty| bufs.iter().filter(|b| is(b, ty)).count();
        assert_eq!(count(&accepted, MessageType::Descriptor), 1);
        for d in after {
            relay.handle_datagram(t(2), PUBLISHER, d);
        }
        let pushed = drain_to(&mut relay, peer);
        assert!(count(&pushed, MessageType::Data) > 0);
        let (descriptors, manifests) = (
            count(&pushed, MessageType::Descriptor),
            count(&pushed, MessageType::Manifest),
        );
        if forward_manifests {
            assert_eq!(descriptors, repeats.len() - 1);
            assert!(manifests > 0);
        } else {
            assert_eq!((descriptors, manifests), (0, 0));
        }
    }
}

/// A SUBSCRIBE that would replace a subscription with one for more clubs
/// than the server has room for is refused and leaves the subscription in
/// force as it was (SPEC §11.3): a peer may ask a neighbour for another
/// club without risking the one it has.
#[test]
fn a_refused_wider_subscription_leaves_the_one_in_force() {
    let (stream, datagrams) = published(600);
    let mut relay = Relay::new(RelayConfig::default());
    let (before, after) = datagrams.split_at(datagrams.len() / 2);
    for d in before {
        relay.handle_datagram(t(0), PUBLISHER, d);
    }
    while relay.poll_transmit().is_some() {}
    relay.set_club_slots(Some(1));
    let peer: SocketAddr = "127.0.0.3:6000".parse().expect("addr");
    subscribe_clubs(&mut relay, t(1), peer, stream, 1 << 1);
    let id = session(&relay, peer);
    assert_ne!(id, 0);
    drain_to(&mut relay, peer);
    subscribe_clubs(&mut relay, t(2), peer, stream, (1 << 1) | (1 << 2));
    let refused = drain_to(&mut relay, peer);
    assert!(
        refused.iter().any(|b| matches!(
            Message::parse(b),
            Ok(Message::Reject(r)) if r.reason == RejectReason::Full
        )),
        "a FULL"
    );
    assert_eq!(session(&relay, peer), id);
    assert_eq!(relay.used_club_slots(), 1);
    for d in after {
        relay.handle_datagram(t(3), PUBLISHER, d);
    }
    let clubs = relay
        .window(&stream)
        .and_then(|w| w.descriptor().map(|(d, _)| u64::from(d.clubs)))
        .expect("a descriptor");
    let pushed: Vec<u64> = drain_to(&mut relay, peer)
        .iter()
        .filter_map(|b| {
            crate::wire::DataView::new_checked(b)
                .ok()
                .map(|v| v.fields().seq)
        })
        .collect();
    assert!(!pushed.is_empty());
    assert!(pushed.iter().all(|s| s % clubs == 1), "{pushed:?}");
}
