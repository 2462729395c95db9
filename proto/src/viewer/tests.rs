//! The viewer's scenarios: failing over between relays, and playout at
//! the edge of the sequence space.

use super::*;
use crate::client::{FAILOVER_AFTER, STALL_AFTER};
use crate::integrity::{PublisherKey, chunk_hash};
use crate::publisher::{Publisher, PublisherConfig};
use crate::testutil::{addr, emit, handshake_answers, hello_nonce, sent, sent_to, t};
use crate::wire::{
    Codec, Data, DataFlags, Have, Leave, LeaveReason, Manifest, MessageType, SIGNATURE_LEN,
};

const A: &str = "127.0.0.1:7401";
const B: &str = "127.0.0.1:7402";

/// The destinations of the HELLOs among `sent`.
fn hellos(sent: &[(SocketAddr, Vec<u8>)]) -> Vec<SocketAddr> {
    sent_to(sent, MessageType::Hello)
}

fn events(v: &mut Viewer) -> Vec<ViewerEvent> {
    std::iter::from_fn(|| v.poll_event()).collect()
}

/// A publisher of opaque bytes, fed 400 bytes a millisecond.
struct Feed {
    publisher: Publisher,
}

impl Feed {
    fn new() -> Self {
        let config = PublisherConfig {
            codec: Codec::Opaque,
            ..PublisherConfig::default()
        };
        let key = PublisherKey::from_seed([5; 32]);
        let publisher = Publisher::new(key, config, vec![addr(A)], t(0)).expect("publisher");
        Self { publisher }
    }

    fn stream(&self) -> StreamId {
        self.publisher.stream_id()
    }

    /// The datagrams published over `ms`, by the time each was sent.
    fn run(&mut self, ms: std::ops::Range<u64>) -> Vec<(Time, Vec<u8>)> {
        let mut out = Vec::new();
        for step in ms {
            let now = t(step);
            self.publisher.handle_input(now, &[step as u8; 400]);
            if self.publisher.poll_timeout().is_some_and(|at| at <= now) {
                self.publisher.handle_timeout(now);
            }
            while let Some(tx) = self.publisher.poll_transmit() {
                out.push((now, tx.payload.to_vec()));
            }
        }
        out
    }
}

/// Runs the viewer's timers due up to `now`, then hands it `datagrams`
/// from `from`; returns the time of the last.
fn deliver(v: &mut Viewer, from: SocketAddr, datagrams: &[(Time, Vec<u8>)]) -> Time {
    deliver_stepping(v, from, datagrams, |_, _| {})
}

/// As [`deliver`], calling `step` after each timer run and each datagram
/// (to look at what the viewer sent, or answer it).
fn deliver_stepping(
    v: &mut Viewer,
    from: SocketAddr,
    datagrams: &[(Time, Vec<u8>)],
    mut step: impl FnMut(&mut Viewer, Time),
) -> Time {
    let mut last = Time::ZERO;
    for (now, bytes) in datagrams {
        while let Some(at) = v.poll_timeout().filter(|at| at <= now) {
            v.handle_timeout(at);
            step(v, at);
        }
        v.handle_datagram(*now, from, bytes);
        step(v, *now);
        last = *now;
    }
    last
}

/// The sequence number of a DATA datagram.
fn data_seq(bytes: &[u8]) -> Option<u64> {
    match Message::parse(bytes) {
        Ok(Message::Data(d)) => Some(d.seq),
        _ => None,
    }
}

/// Whether `bytes` is a NACK that asks for chunk `seq`.
fn nacks_seq(bytes: &[u8], seq: u64) -> bool {
    matches!(Message::parse(bytes), Ok(Message::Nack(n)) if n
        .entries()
        .iter()
        .any(|e| (e.start..e.start + u64::from(e.len)).contains(&seq)))
}

/// Answers the viewer's HELLO to `relay` with a CHALLENGE and its
/// SUBSCRIBE with an ACCEPT; returns the SUBSCRIBE's start.
fn accept(v: &mut Viewer, now: Time, relay: SocketAddr, start_seq: u64) -> Option<u64> {
    let out = sent(v);
    answer(v, now, relay, &out, start_seq)
}

/// [`accept`], with the HELLO among `out`, sent earlier.
fn answer(
    v: &mut Viewer,
    now: Time,
    relay: SocketAddr,
    out: &[(SocketAddr, Vec<u8>)],
    start_seq: u64,
) -> Option<u64> {
    let nonce = hello_nonce(out, relay);
    let [challenge, accept] = handshake_answers(v.window().stream(), nonce, start_seq);
    v.handle_datagram(now, relay, &emit(&challenge));
    let resume = sent(v)
        .iter()
        .find_map(|(to, b)| match Message::parse(b) {
            Ok(Message::Subscribe(s)) if *to == relay => Some(s.start_seq),
            _ => None,
        })
        .expect("a SUBSCRIBE to the relay");
    v.handle_datagram(now, relay, &emit(&accept));
    assert!(v.is_subscribed());
    assert_eq!(v.relay(), relay);
    resume
}

/// A viewer of `feed` on A with B as its fallback, subscribed to A.
fn on_a_with_b(feed: &Feed) -> Viewer {
    let mut config = ViewerConfig::new(addr(A), feed.stream());
    config.fallbacks = vec![addr(B)];
    let mut v = Viewer::new(config, t(0)).expect("viewer");
    assert_eq!(accept(&mut v, t(0), addr(A), 0), None);
    events(&mut v);
    v
}

fn leave(v: &Viewer, reason: LeaveReason) -> Vec<u8> {
    emit(&Message::Leave(Leave {
        reason,
        stream: v.window().stream(),
        session: 42,
    }))
}

#[test]
fn a_stalled_relay_is_left_for_the_next_after_the_stall_time() {
    let mut feed = Feed::new();
    let mut v = on_a_with_b(&feed);
    let last = deliver(&mut v, addr(A), &feed.run(0..300));
    let played: Vec<u64> = events(&mut v)
        .into_iter()
        .filter_map(|e| match e {
            ViewerEvent::Chunk { seq, .. } => Some(seq),
            _ => None,
        })
        .collect();
    let next = played.last().expect("chunks played") + 1;
    assert_eq!(v.playout.next_play, Some(next));
    // A falls silent. (The session probes it with a KEEPALIVE first.)
    let stall = last + STALL_AFTER;
    let mut now = last;
    while v.relay() == addr(A) {
        now = v.poll_timeout().expect("a timer");
        assert!(now <= stall, "still on A at {now:?}");
        v.handle_timeout(now);
    }
    assert_eq!(now, stall);
    assert_eq!(
        events(&mut v),
        [ViewerEvent::RelayChanged {
            from: addr(A),
            to: addr(B)
        }]
    );
    assert_eq!(v.stats().relay_changes, 1);
    assert!(v.poll_timeout().is_some_and(|at| at > now));
    let out = sent(&mut v);
    assert_eq!(hellos(&out), [addr(B)]);
    // A LEAVE to A, in case only the path to it broke.
    assert!(
        out.iter()
            .any(|(to, b)| *to == addr(A) && matches!(Message::parse(b), Ok(Message::Leave(_))))
    );
    // B continues from the next chunk to play.
    let resume = answer(&mut v, now, addr(B), &out, next);
    assert_eq!(resume, Some(next));
    assert_eq!(
        events(&mut v),
        [ViewerEvent::Subscribed { start_seq: next }]
    );
    assert_eq!(v.relay(), addr(B));
}

#[test]
fn a_silent_relay_is_left_for_the_next_after_the_failover_time() {
    let stream = PublisherKey::from_seed([5; 32]).stream_id();
    let mut config = ViewerConfig::new(addr(A), stream);
    config.fallbacks = vec![addr(B)];
    let mut v = Viewer::new(config, t(0)).expect("viewer");
    let mut to = hellos(&sent(&mut v));
    let mut now = t(0);
    while v.relay() == addr(A) {
        now = v.poll_timeout().expect("a timer");
        v.handle_timeout(now);
        to.extend(hellos(&sent(&mut v)));
    }
    assert_eq!(now, t(0) + FAILOVER_AFTER);
    assert_eq!(to.last(), Some(&addr(B)));
    assert!(to[..to.len() - 1].iter().all(|&a| a == addr(A)), "{to:?}");
    assert_eq!(
        events(&mut v),
        [ViewerEvent::RelayChanged {
            from: addr(A),
            to: addr(B)
        }]
    );
    // B is silent too: back to A (the list wraps round).
    while v.relay() == addr(B) {
        now = v.poll_timeout().expect("a timer");
        v.handle_timeout(now);
    }
    assert_eq!(now, t(0) + FAILOVER_AFTER * 2);
    assert_eq!(v.relay(), addr(A));
    assert_eq!(v.stats().relay_changes, 2);
}

#[test]
fn a_relay_that_keeps_refusing_is_left_but_a_final_refusal_is_final() {
    let stream = PublisherKey::from_seed([5; 32]).stream_id();
    let reject = |reason| {
        emit(&Message::Reject(crate::wire::Reject {
            reason,
            versions: crate::wire::SUPPORTED_VERSIONS,
            stream,
        }))
    };
    // A REJECT counts only in answer to a SUBSCRIBE (§11.7): the
    // session gets there with A's CHALLENGE.
    let challenge = |v: &mut Viewer, now, out: &[(SocketAddr, Vec<u8>)]| {
        let nonce = out.iter().find_map(|(_, b)| match Message::parse(b) {
            Ok(Message::Hello(h)) => Some(h.nonce),
            _ => None,
        });
        if let Some(nonce) = nonce {
            let [challenge, _] = handshake_answers(stream, nonce, 0);
            v.handle_datagram(now, addr(A), &emit(&challenge));
        }
        nonce.is_some()
    };
    let mut config = ViewerConfig::new(addr(A), stream);
    config.fallbacks = vec![addr(B)];
    let mut v = Viewer::new(config.clone(), t(0)).expect("viewer");
    // A is full, every time it is asked.
    let mut now = t(0);
    while v.relay() == addr(A) {
        let out = sent(&mut v);
        if challenge(&mut v, now, &out) {
            v.handle_datagram(now, addr(A), &reject(RejectReason::Full));
        }
        now = v.poll_timeout().expect("a timer");
        v.handle_timeout(now);
    }
    assert_eq!(now, t(0) + FAILOVER_AFTER);
    assert!(events(&mut v).contains(&ViewerEvent::RelayChanged {
        from: addr(A),
        to: addr(B)
    }));
    // A token A will never take: no move, as without fallbacks.
    let mut v = Viewer::new(config, t(0)).expect("viewer");
    let out = sent(&mut v);
    assert!(challenge(&mut v, t(10), &out));
    v.handle_datagram(t(10), addr(A), &reject(RejectReason::TokenInvalid));
    assert_eq!(
        events(&mut v),
        [ViewerEvent::Rejected(RejectReason::TokenInvalid)]
    );
    assert_eq!(v.poll_timeout(), None);
    v.handle_timeout(t(10) + FAILOVER_AFTER * 2);
    assert_eq!(v.relay(), addr(A));
    assert_eq!(v.stats().relay_changes, 0);
}

#[test]
fn without_fallbacks_a_silent_relay_is_never_left() {
    let stream = PublisherKey::from_seed([5; 32]).stream_id();
    let mut v = Viewer::new(ViewerConfig::new(addr(A), stream), t(0)).expect("viewer");
    let mut to = hellos(&sent(&mut v));
    let mut now = t(0);
    while now < t(30_000) {
        let next = v.poll_timeout().expect("a timer");
        assert!(next > now, "timer went back: {next:?}");
        now = next;
        v.handle_timeout(now);
        let out = sent(&mut v);
        assert_eq!(hellos(&out).len(), out.len(), "only HELLOs");
        to.extend(hellos(&out));
    }
    assert!(to.len() > 10);
    assert!(to.iter().all(|&a| a == addr(A)));
    assert_eq!(v.relay(), addr(A));
    assert_eq!(v.stats().relay_changes, 0);
    assert!(events(&mut v).is_empty());
}

#[test]
fn a_relay_shutting_down_is_left_at_once() {
    let feed = Feed::new();
    let mut v = on_a_with_b(&feed);
    let bye = leave(&v, LeaveReason::ShuttingDown);
    v.handle_datagram(t(100), addr(A), &bye);
    assert_eq!(v.relay(), addr(B));
    let out = sent(&mut v);
    assert_eq!(hellos(&out), [addr(B)]);
    assert_eq!(
        events(&mut v),
        [ViewerEvent::RelayChanged {
            from: addr(A),
            to: addr(B)
        }]
    );
    assert_eq!(answer(&mut v, t(110), addr(B), &out, 0), Some(0));
}

#[test]
fn the_end_of_the_stream_is_not_a_reason_to_move() {
    let feed = Feed::new();
    let mut v = on_a_with_b(&feed);
    let end = leave(&v, LeaveReason::EndOfStream);
    v.handle_datagram(t(100), addr(A), &end);
    assert_eq!(v.relay(), addr(A));
    assert!(v.is_ended());
    assert_eq!(events(&mut v), [ViewerEvent::EndOfStream]);
    assert_eq!(v.stats().relay_changes, 0);
    assert!(hellos(&sent(&mut v)).is_empty());
    assert_eq!(v.poll_timeout(), None);
}

#[test]
fn stream_data_from_a_relay_left_behind_is_not_trusted() {
    let mut feed = Feed::new();
    let mut v = on_a_with_b(&feed);
    deliver(&mut v, addr(A), &feed.run(0..100));
    let bye = leave(&v, LeaveReason::ShuttingDown);
    v.handle_datagram(t(100), addr(A), &bye);
    assert_eq!(v.relay(), addr(B));
    accept(&mut v, t(100), addr(B), 0);
    // The next block's first DATA, before its MANIFEST.
    let block = feed.run(100..160);
    let data = block
        .iter()
        .find(|(_, b)| peek_type(b) == Ok(MessageType::Data))
        .map(|(_, b)| b.clone())
        .expect("a DATA");
    let result = v.ingest(t(160), addr(A), Incoming::Borrowed(&data));
    v.advance(t(160));
    assert_eq!(Some(result), Some(Err(Rejection::Unproven)));
    // Nothing from A counts as B's stream flowing.
    deliver(&mut v, addr(A), &block);
    assert_eq!(v.relays.list.stream_heard(), None);
    assert_eq!(v.relay(), addr(B));
    // No timer is left in the past once the due ones have run.
    while let Some(at) = v.poll_timeout().filter(|&at| at <= t(160)) {
        v.handle_timeout(at);
    }
    assert_eq!(v.poll_timeout().map(|at| at > t(160)), Some(true));
    // From B, stream data counts.
    v.handle_datagram(t(161), addr(B), &data);
    assert_eq!(v.relays.list.stream_heard(), Some(t(161)));
}

/// Found by the `peer` fuzz target in CI: a missing chunk's deadline
/// looked at the chunks after it with `seq + 1` and `seq + 4096`,
/// which overflowed for a stream near the top of the sequence space
/// (sequence numbers are the publisher's word, up to `u64::MAX`).
#[test]
fn a_deadline_near_the_end_of_the_sequence_space_does_not_overflow() {
    let key = PublisherKey::from_seed([9; 32]);
    let stream = key.stream_id();
    let relay = "127.0.0.1:7400".parse().expect("addr");
    let config = ViewerConfig::new(relay, stream);
    let latency = config.latency;
    let mut viewer = Viewer::new(config, Time::ZERO).expect("viewer");
    let seq = u64::MAX - 16;
    let (flags, timestamp_us, payload) = (DataFlags::KEYFRAME, 5_000_000, b"last");
    let hash = chunk_hash(flags, timestamp_us, payload);
    let man = Manifest {
        k: 1,
        m: 0,
        symbol_len: 0,
        stream,
        block: u64::MAX / 2,
        first_seq: seq,
        epoch: 0,
        timestamp_us: 0,
        hashes: &hash,
        signature: [0; SIGNATURE_LEN],
    };
    let buf = crate::testutil::signed_manifest(&key, &man);
    assert_eq!(
        viewer.playout.window.ingest(Time::ZERO, &buf),
        Ok(Ingested::Verified)
    );
    let data = Data {
        flags: DataFlags::from_bits(flags).expect("flags"),
        club: 0,
        stream,
        seq,
        block: u64::MAX / 2,
        timestamp_us,
        index: 0,
        payload,
    };
    let mut buf = vec![0; data.buffer_len()];
    let n = data.emit(&mut buf).expect("emit");
    assert_eq!(
        viewer.playout.window.ingest(Time::ZERO, &buf[..n]),
        Ok(Ingested::Verified)
    );
    // Every seq from just before the chunk to the very last.
    for missing in (seq - 2..=u64::MAX).rev().take(20) {
        let deadline = viewer.playout.deadline(missing);
        if missing < seq {
            assert_eq!(deadline, Some(Time::from_micros(timestamp_us) + latency));
        } else {
            assert_eq!(deadline, None, "{missing}");
        }
    }
}

/// An ordinary peer NACKs a chunk once a later chunk of its club has
/// come; the last chunks of a club before the end of the stream (or a
/// pause) have none, and are NACKed once no new chunk has come for
/// [`CLUB_SILENT`](missing::CLUB_SILENT).
#[test]
fn a_peer_nacks_the_last_chunk_of_a_club_that_nothing_overtakes() {
    let mut feed = Feed::new();
    let mut config = ViewerConfig::new(addr(A), feed.stream());
    config.club_nack = true;
    // A peer's latency (a viewer's 500 ms would give the chunk up first).
    config.latency = Duration::from_secs(2);
    let mut v = Viewer::new(config, t(0)).expect("viewer");
    accept(&mut v, t(0), addr(A), 0);
    let mut datagrams = feed.run(0..300);
    // Up to the last MANIFEST, less the last DATA before it: the highest
    // chunk of the last complete block, which nothing of its club follows.
    let last_manifest = datagrams
        .iter()
        .rposition(|(_, b)| matches!(Message::parse(b), Ok(Message::Manifest(_))))
        .expect("a MANIFEST");
    datagrams.truncate(last_manifest + 1);
    // A peer subscribed to some clubs gets no PARITY (SPEC §11.9).
    datagrams.retain(|(_, b)| peek_type(b) != Ok(MessageType::Parity));
    let dropped = datagrams
        .iter()
        .rposition(|(_, b)| matches!(Message::parse(b), Ok(Message::Data(_))))
        .expect("a DATA");
    let (_, bytes) = datagrams.remove(dropped);
    let Ok(Message::Data(d)) = Message::parse(&bytes) else {
        unreachable!("found above");
    };
    let seq = d.seq;
    let end = deliver(&mut v, addr(A), &datagrams);
    sent(&mut v);
    let mut nacked = None;
    while let Some(at) = v
        .poll_timeout()
        .filter(|&at| at <= end + Duration::from_secs(1))
    {
        v.handle_timeout(at);
        for (to, b) in sent(&mut v) {
            if let Ok(Message::Nack(n)) = Message::parse(&b)
                && to == addr(A)
                && n.entries()
                    .iter()
                    .any(|e| (e.start..e.start + u64::from(e.len)).contains(&seq))
            {
                nacked.get_or_insert(at);
            }
        }
    }
    let at = nacked.unwrap_or_else(|| panic!("chunk {seq} was never NACKed"));
    let by = end + missing::CLUB_SILENT + Duration::from_millis(50);
    assert!(at <= by, "NACKed at {at:?}, not by {by:?}");
}

/// A viewer as an ordinary peer's (`club_nack`, 2 s budget) subscribed
/// at [`A`], and `ms` of a stream for it without PARITY (so that FEC
/// rebuilds nothing a test holds back).
fn testutil_club_viewer(ms: u64) -> (Viewer, Vec<(Time, Vec<u8>)>) {
    let mut feed = Feed::new();
    let mut config = ViewerConfig::new(addr(A), feed.stream());
    config.club_nack = true;
    config.latency = Duration::from_secs(2);
    let mut v = Viewer::new(config, t(0)).expect("viewer");
    accept(&mut v, t(0), addr(A), 0);
    let mut datagrams = feed.run(0..ms);
    datagrams.retain(|(_, b)| peek_type(b) != Ok(MessageType::Parity));
    (v, datagrams)
}

/// The clubs of [`testutil_club_viewer`]'s stream (the publisher's
/// default).
const CLUBS: u64 = 8;

/// Holds back the 40th DATA of `datagrams` and every later one of its
/// club; returns when the 40th was sent, and its sequence number.
fn hold_back_a_club(datagrams: &mut Vec<(Time, Vec<u8>)>) -> (Time, u64) {
    let (held_at, seq) = datagrams
        .iter()
        .filter_map(|(at, b)| data_seq(b).map(|s| (*at, s)))
        .nth(40)
        .expect("40 chunks in 600 ms");
    datagrams.retain(|(_, b)| data_seq(b).is_none_or(|s| s < seq || s % CLUBS != seq % CLUBS));
    (held_at, seq)
}

/// A chunk NACKed while missing and then come is not asked for again:
/// it stays noted until played (for the repair count), but later tries
/// would only fetch duplicates.
#[test]
fn a_chunk_that_came_after_its_nack_is_not_nacked_again() {
    let (mut v, mut datagrams) = testutil_club_viewer(300);
    // Hold back two DATA from the middle, so that later chunks of their
    // clubs overtake them: the later one comes right after its first
    // NACK, the earlier one never, which keeps the later one from playing
    // (and so noted missing).
    let data: Vec<usize> = datagrams
        .iter()
        .enumerate()
        .filter(|(_, (_, b))| matches!(Message::parse(b), Ok(Message::Data(_))))
        .map(|(i, _)| i)
        .collect();
    let (_, held) = datagrams.remove(data[6]);
    datagrams.remove(data[4]);
    let Ok(Message::Data(d)) = Message::parse(&held) else {
        unreachable!("found above");
    };
    let seq = d.seq;
    let mut nacks = 0;
    let mut came = None;
    let mut step = |v: &mut Viewer, now: Time| {
        nacks += sent(v).iter().filter(|(_, b)| nacks_seq(b, seq)).count();
        if nacks > 0 && came.is_none() {
            v.handle_datagram(now, addr(A), &held);
            came = Some(now);
        }
    };
    let end = deliver_stepping(&mut v, addr(A), &datagrams, &mut step);
    while let Some(at) = v
        .poll_timeout()
        .filter(|&at| at <= end + Duration::from_secs(1))
    {
        v.handle_timeout(at);
        step(&mut v, at);
    }
    assert!(came.is_some(), "{seq} was never NACKed");
    assert_eq!(nacks, 1, "{seq} NACKed again after it came");
}

/// With `club_nack`, a chunk whose club brings nothing after it (its
/// neighbour lost it, and the club's next chunk is far off) is NACKed
/// once it is later than its club's chunks usually are, while the other
/// clubs flow: not only when a later chunk of its club shows it lost.
#[test]
fn a_chunk_later_than_its_club_usually_is_is_nacked_before_its_club_moves_on() {
    let (mut v, mut datagrams) = testutil_club_viewer(600);
    let (held_at, seq) = hold_back_a_club(&mut datagrams);
    let mut first = None;
    deliver_stepping(&mut v, addr(A), &datagrams, |v, now| {
        if first.is_none() && sent(v).iter().any(|(_, b)| nacks_seq(b, seq)) {
            first = Some(now);
        }
    });
    let first = first.expect("the chunk was never NACKed while the stream flowed");
    let after = first.saturating_since(held_at);
    assert!(
        after <= Duration::from_millis(150),
        "{seq} NACKed {after:?} after it was due"
    );
}

/// A viewer that misses nothing is not woken to look for something to
/// NACK: repair runs when something falls due, not on a 10 ms tick (which
/// woke every peer of a swarm 100 times a second).
#[test]
fn a_viewer_that_misses_nothing_is_woken_only_when_something_is_due() {
    let (mut v, datagrams) = testutil_club_viewer(1_000);
    let mut woken = 0;
    let mut nacks = 0;
    for (now, bytes) in &datagrams {
        while let Some(at) = v.poll_timeout().filter(|at| at <= now) {
            v.handle_timeout(at);
            woken += 1;
            nacks += sent(&mut v).len();
        }
        v.handle_datagram(*now, addr(A), bytes);
        nacks += sent(&mut v).len();
    }
    // Every MANIFEST came within 30 ms of its block's first chunk, so
    // nothing fell due (the 10 ms tick woke it 19 times here).
    assert_eq!(nacks, 0, "nothing was missing");
    assert_eq!(woken, 0, "woken {woken} times in 1 s with nothing due");
}

/// A chunk whose first NACK went to the neighbour serving its club, and
/// which that neighbour says it lacks too (a HAVE without it), is asked
/// again (here of the relay: no other neighbour serves us) only
/// [`missing::LACK_WAIT_HALF_RTTS`] half round trips after that NACK, not
/// at the usual 2 round trips: the neighbour's copy is on its way, and so
/// is its push to us. Without the HAVE it goes at 2.
#[test]
fn a_chunk_the_serving_neighbour_lacks_too_is_asked_of_the_relay_later() {
    let run = |lacks: bool| {
        let (mut v, mut datagrams) = testutil_club_viewer(600);
        let (_, seq) = hold_back_a_club(&mut datagrams);
        let club = (seq % CLUBS) as u8;
        let neighbour = (addr(B), 0x5e55);
        v.repair.set_route(club, Some(neighbour));
        let (mut first, mut to_relay) = (None, None);
        deliver_stepping(&mut v, addr(A), &datagrams, |v, now| {
            for (to, b) in sent(v) {
                if !nacks_seq(&b, seq) {
                    continue;
                }
                if to == addr(B) && first.is_none() {
                    first = Some(now);
                    if lacks {
                        let have = Have {
                            stream: v.playout.window().stream(),
                            session: neighbour.1,
                            base: seq,
                            mask: 0,
                        };
                        v.repair.neighbour_have(now, addr(B), &have);
                    }
                } else if to == addr(A) {
                    to_relay.get_or_insert(now);
                }
            }
        });
        let rtt = v.relays.session().rtt.max(repair::MIN_RTT);
        let first = first.expect("the first NACK went to the neighbour");
        let after = to_relay
            .expect("then one to the relay")
            .saturating_since(first);
        (after, rtt)
    };
    let (after, rtt) = run(false);
    let lack_wait = rtt * missing::LACK_WAIT_HALF_RTTS / 2;
    assert!(
        after < lack_wait,
        "asked of the relay {after:?} after, rtt {rtt:?}"
    );
    let (after, rtt) = run(true);
    let lack_wait = rtt * missing::LACK_WAIT_HALF_RTTS / 2;
    assert!(
        after >= lack_wait,
        "asked of the relay {after:?} after, rtt {rtt:?}"
    );
}

/// A chunk the neighbour serving its club lacks too is asked next of the
/// neighbour serving another club whose newest HAVE holds it (passing
/// over one that comes first but has said nothing), and only then of the
/// relay: as soon as that neighbour says it lacks it too, rather than 2
/// round trips after the second NACK.
#[test]
fn a_chunk_the_serving_neighbour_lacks_is_asked_of_a_neighbour_that_holds_it() {
    const C: &str = "127.0.0.1:7403";
    const D: &str = "127.0.0.1:7404";
    let run = |second_lacks: bool| {
        let (mut v, mut datagrams) = testutil_club_viewer(600);
        let rtt = Duration::from_millis(40);
        v.relays.session_mut().rtt = rtt;
        let (_, seq) = hold_back_a_club(&mut datagrams);
        let stream = v.playout.window().stream();
        let have = |session, base, mask| Have {
            stream,
            session,
            base,
            mask,
        };
        // B serves the chunk's club, C the next, D the one after.
        for (k, (at, session)) in [(B, 0xb), (C, 0xc), (D, 0xd)].into_iter().enumerate() {
            let club = ((seq + k as u64) % CLUBS) as u8;
            v.repair.set_route(club, Some((addr(at), session)));
        }
        v.repair.neighbour_have(t(0), addr(D), &have(0xd, seq, 1));
        let mut asked: Vec<(SocketAddr, Time)> = Vec::new();
        deliver_stepping(&mut v, addr(A), &datagrams, |v, now| {
            for (to, b) in sent(v) {
                if !nacks_seq(&b, seq) {
                    continue;
                }
                asked.push((to, now));
                // Each neighbour asked says it lacks it (D only if told to).
                let lacks = match to {
                    to if to == addr(B) => Some(0xb),
                    to if to == addr(D) && second_lacks => Some(0xd),
                    _ => None,
                };
                if let Some(session) = lacks {
                    v.repair.neighbour_have(now, to, &have(session, seq, 0));
                }
            }
        });
        asked
    };
    let asked = run(true);
    let to: Vec<SocketAddr> = asked.iter().map(|&(a, _)| a).take(3).collect();
    assert_eq!(to, [addr(B), addr(D), addr(A)], "asked {asked:?}");
    let third = asked[2].1.saturating_since(asked[1].1);
    assert!(
        third < Duration::from_millis(80),
        "the relay asked {third:?} after D"
    );
    // D holds it by its HAVE but never answers: the relay is asked 2
    // round trips after D, as after a lost NACK.
    let asked = run(false);
    let to: Vec<SocketAddr> = asked.iter().map(|&(a, _)| a).take(3).collect();
    assert_eq!(to, [addr(B), addr(D), addr(A)], "asked {asked:?}");
    let third = asked[2].1.saturating_since(asked[1].1);
    assert!(
        third >= Duration::from_millis(80),
        "the relay asked {third:?} after D"
    );
}
