//! What the state-machine targets share: the input format, the stream's
//! key, the fixer that lets an input speak validly, the oracles their
//! assertions use, and the [`harness`] that drives them.
//!
//! Input: records of `[control u8][len u16 BE][len bytes]`, the last one cut
//! short if the input ends. The control byte:
//!
//! - bits 0..3: which source address the datagram comes from (each target
//!   has a table of eight);
//! - bit 3: *fix* it first: a MANIFEST or DESCRIPTOR is signed with the
//!   stream's key (a MANIFEST after its hashes are replaced by those of the
//!   DATA and PARITY seen for its block), a CHALLENGE echoes the nonce of
//!   the last HELLO sent to that source, a SUBSCRIBE carries the last
//!   cookie issued to that source, and any other session message but
//!   ACCEPT carries the session id last used with that source (SPEC
//!   §11.4: without it the state machine drops it);
//! - bit 4: run timers after the datagram;
//! - bits 5..8: advance the clock first, by [`ADVANCE`]`[bits]`.
//!
//! The clock only moves forward.

#![allow(dead_code, reason = "each target uses part of it")]

pub mod harness;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use shoal_proto::integrity::{Hash, PublisherKey, StreamKey, chunk_hash, parity_hash};
use shoal_proto::peer::PeerConfig;
use shoal_proto::viewer::ViewerEvent;
use shoal_proto::window::WindowConfig;
use shoal_proto::wire::{
    Cookie, Data, Descriptor, HASH_LEN, HELLO_MIN_LEN, MANIFEST_HEADER_LEN, Manifest, ManifestView,
    Message, MessageType, Parity, SIGNATURE_LEN, peek_type,
};
use shoal_proto::{StreamId, Time};

/// Seed of the stream's key; `examples/gen_corpus.rs` publishes with it.
pub const SEED: [u8; 32] = [1; 32];
/// Clock at the first record; the corpus generator starts there too.
pub const T0: Time = Time::from_micros(1_700_000_000_000_000);

pub static PUBLISHER: LazyLock<PublisherKey> = LazyLock::new(|| PublisherKey::from_seed(SEED));
pub static KEY: LazyLock<StreamKey> =
    LazyLock::new(|| StreamKey::new(PUBLISHER.stream_id()).expect("a valid key"));

/// The stream every target carries.
pub fn stream() -> StreamId {
    PUBLISHER.stream_id()
}

/// Most subscribers the `peer` target's upload side takes.
pub const PEER_MAX_SUBSCRIBERS: usize = 3;

/// How the `peer` target makes its peer (the regression tests too).
pub fn peer_config(relay: SocketAddr, upload_limit_bps: u64) -> PeerConfig {
    let mut config = PeerConfig::new(relay, stream());
    config.upload_limit_bps = upload_limit_bps;
    config.max_subscribers = PEER_MAX_SUBSCRIBERS;
    config.cookie_secret = [9; 32];
    config.nonce_seed = 3;
    config.window = WindowConfig {
        capacity: 128,
        manifest_wait: Duration::from_millis(500),
        ..WindowConfig::default()
    };
    config
}

/// Clock steps: a millisecond up to past the cookie lifetime (10 s), with
/// the keepalive (1 s), silence (3 s) and subscriber (5 s) timeouts between.
pub const ADVANCE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(11),
];

/// One decoded record.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// Index into the target's address table.
    pub source: usize,
    /// Make the datagram valid where the fuzzer cannot (signatures,
    /// nonces, cookies).
    pub fix: bool,
    /// Run timers after it.
    pub timers: bool,
    /// How far the clock moves first.
    pub advance: Duration,
    pub datagram: &'a [u8],
}

/// Splits the input into `(control, datagram)` records.
pub fn records(mut input: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let [control, hi, lo, rest @ ..] = input else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (datagram, tail) = rest.split_at(len);
        input = tail;
        Some((*control, datagram))
    })
}

/// Splits the input into steps.
pub fn steps(input: &[u8]) -> impl Iterator<Item = Step<'_>> {
    records(input).map(|(control, datagram)| Step {
        source: usize::from(control & 7),
        fix: control & 8 != 0,
        timers: control & 16 != 0,
        advance: ADVANCE[usize::from(control >> 5)],
        datagram,
    })
}

/// Playout moves forward: chunks and gaps in increasing order, nothing
/// after the end of the stream, never a move to another relay (the
/// targets give one).
#[derive(Default)]
pub struct PlayOrder {
    /// The next sequence number playout may report.
    next: Option<u64>,
    ended: bool,
}

impl PlayOrder {
    /// Checks one event of a viewer or a peer.
    pub fn check(&mut self, event: &ViewerEvent) {
        match *event {
            ViewerEvent::Chunk { seq, .. } => {
                assert!(!self.ended, "chunk {seq} after the end");
                assert!(self.next.is_none_or(|n| seq >= n), "chunk {seq} replayed");
                self.next = Some(seq + 1);
            }
            ViewerEvent::Gap { from, to } => {
                assert!(!self.ended, "gap after the end");
                assert!(from < to, "empty gap {from}..{to}");
                assert!(self.next.is_none_or(|n| from >= n), "gap {from} replayed");
                self.next = Some(to);
            }
            ViewerEvent::EndOfStream => {
                assert!(!self.ended, "two ends");
                self.ended = true;
            }
            // A later run (or a jump ahead) starts above everything an
            // earlier one sent (SPEC §4.2): output goes on above `next`,
            // which the Gap before it (if any) moved.
            ViewerEvent::NewRun { .. } => assert!(!self.ended, "a new run after the end"),
            ViewerEvent::RelayChanged { .. } => panic!("moved with no relay to fall back on"),
            ViewerEvent::Subscribed { .. } | ViewerEvent::Rejected(_) => {}
        }
    }
}

/// The control byte for a step, for the corpus generator.
pub fn control(source: usize, fix: bool, timers: bool, advance: usize) -> u8 {
    (source as u8 & 7) | u8::from(fix) << 3 | u8::from(timers) << 4 | (advance as u8 & 7) << 5
}

/// Makes datagrams valid as an honest party would: see the module docs.
#[derive(Default)]
pub struct Fixer {
    /// Hashes of the last DATA and PARITY seen, by block, parity or not,
    /// and index: what a publisher would sign into the block's manifest.
    seen: HashMap<(u64, bool, u8), Hash>,
    /// The last HELLO nonce each address was sent.
    nonces: HashMap<SocketAddr, u64>,
    /// The last cookie each address was issued.
    cookies: HashMap<SocketAddr, Cookie>,
    /// The session id last used with each address: given it in an ACCEPT,
    /// or carried in a session message sent to it.
    sessions: HashMap<SocketAddr, u64>,
    buf: Vec<u8>,
}

/// Where every bound session message carries its session id (SPEC §6).
const SESSION_AT: std::ops::Range<usize> = 36..44;

/// The session id of a session message that carries one.
fn session_of(msg: &Message<'_>) -> Option<u64> {
    Some(match msg {
        Message::Accept(m) => m.session,
        Message::Keepalive(m) => m.session,
        Message::Nack(m) => m.session,
        Message::Leave(m) => m.session,
        Message::Peers(m) => m.session,
        Message::Have(m) => m.session,
        Message::Member(m) => m.session,
        Message::Introduce(m) => m.session,
        _ => return None,
    })
}

impl Fixer {
    /// Notes what the state machine sent to `to`.
    pub fn sent(&mut self, to: SocketAddr, bytes: &[u8]) {
        match Message::parse(bytes) {
            Ok(Message::Hello(h)) => {
                self.nonces.insert(to, h.nonce);
            }
            Ok(Message::Challenge(c)) => {
                self.cookies.insert(to, c.cookie);
            }
            Ok(msg) => {
                if let Some(session) = session_of(&msg) {
                    self.sessions.insert(to, session);
                }
            }
            _ => {}
        }
    }

    /// `datagram` from `from`, fixed if `fix`; also notes its hashes.
    pub fn fix<'a>(&'a mut self, from: SocketAddr, fix: bool, datagram: &'a [u8]) -> &'a [u8] {
        if let Ok(d) = Data::parse(datagram) {
            let hash = chunk_hash(d.flags.bits(), d.timestamp_us, d.payload);
            self.seen.insert((d.block, false, d.index), hash);
        } else if let Ok(p) = Parity::parse(datagram) {
            self.seen
                .insert((p.block, true, p.index), parity_hash(p.symbol));
        }
        if !fix {
            return datagram;
        }
        self.buf.clear();
        match peek_type(datagram) {
            Ok(MessageType::Manifest | MessageType::Descriptor)
                if datagram.len() >= SIGNATURE_LEN =>
            {
                self.buf.extend_from_slice(datagram);
                if let Ok(m) = Manifest::parse(datagram) {
                    let k = usize::from(m.k);
                    let slots = (0..m.k)
                        .map(|i| (false, i, usize::from(i)))
                        .chain((0..m.m).map(|i| (true, i, k + usize::from(i))));
                    for (parity, index, at) in slots {
                        if let Some(hash) = self.seen.get(&(m.block, parity, index)) {
                            let at = MANIFEST_HEADER_LEN + at * HASH_LEN;
                            self.buf[at..at + HASH_LEN].copy_from_slice(hash);
                        }
                    }
                }
                PUBLISHER.sign_trailer(&mut self.buf);
            }
            _ => match Message::parse(datagram) {
                Ok(Message::Challenge(mut c)) if self.nonces.contains_key(&from) => {
                    c.nonce = self.nonces[&from];
                    emit(&Message::Challenge(c), &mut self.buf);
                }
                Ok(Message::Subscribe(mut s)) if self.cookies.contains_key(&from) => {
                    s.cookie = self.cookies[&from];
                    emit(&Message::Subscribe(s), &mut self.buf);
                }
                // A session message in the session the state machine
                // holds with `from` (an ACCEPT is the server's to choose).
                Ok(msg)
                    if !matches!(msg, Message::Accept(_))
                        && session_of(&msg).is_some()
                        && self.sessions.contains_key(&from) =>
                {
                    self.buf.extend_from_slice(datagram);
                    self.buf[SESSION_AT].copy_from_slice(&self.sessions[&from].to_be_bytes());
                }
                _ => {}
            },
        }
        if self.buf.is_empty() {
            datagram
        } else {
            &self.buf
        }
    }
}

fn emit(msg: &Message<'_>, buf: &mut Vec<u8>) {
    buf.resize(msg.buffer_len(), 0);
    let len = msg.emit(buf).expect("a parsed message re-emits");
    buf.truncate(len);
}

/// What the stream's key has signed among the datagrams fed in: the
/// judge of whether stream data a state machine sends is genuine.
#[derive(Default)]
pub struct Oracle {
    /// Per block, the `(first_seq, k, hashes)` of every manifest that
    /// verified.
    manifests: HashMap<u64, Vec<(u64, u8, Vec<u8>)>>,
    /// Every MANIFEST datagram seen to verify.
    verified: HashSet<Vec<u8>>,
}

impl Oracle {
    /// Notes a datagram fed in.
    pub fn fed(&mut self, bytes: &[u8]) {
        if !self.verifies(bytes) {
            return;
        }
        let Ok(m) = Manifest::parse(bytes) else {
            return;
        };
        let list = self.manifests.entry(m.block).or_default();
        let entry = (m.first_seq, m.k, m.hashes.to_vec());
        if !list.contains(&entry) {
            list.push(entry);
        }
    }

    /// Whether `bytes` is a MANIFEST the stream's key signed; each is
    /// checked once (signatures dominate the cost of an execution).
    fn verifies(&mut self, bytes: &[u8]) -> bool {
        if self.verified.contains(bytes) {
            return true;
        }
        let Ok(view) = ManifestView::new_checked(bytes) else {
            return false;
        };
        let ok = KEY.verify_manifest(&view).is_ok();
        if ok {
            self.verified.insert(bytes.to_vec());
        }
        ok
    }

    /// Whether a signed manifest holds `hash` at `slot` of `block` (slots
    /// past `k` are parity), for a chunk `seq` when given.
    fn vouches(&self, block: u64, slot: usize, seq: Option<u64>, hash: &Hash) -> bool {
        self.manifests.get(&block).is_some_and(|list| {
            list.iter().any(|(first_seq, k, hashes)| {
                seq.is_none_or(|s| s == first_seq + slot as u64 && slot < usize::from(*k))
                    && hashes.get(slot * HASH_LEN..(slot + 1) * HASH_LEN) == Some(&hash[..])
            })
        })
    }

    /// A DATA datagram is vouched for by a signed manifest.
    pub fn check_data(&self, bytes: &[u8]) {
        let d = Data::parse(bytes).expect("sent DATA parses");
        assert_eq!(d.stream, stream(), "DATA of a stream nobody signed");
        let hash = chunk_hash(d.flags.bits(), d.timestamp_us, d.payload);
        assert!(
            self.vouches(d.block, usize::from(d.index), Some(d.seq), &hash),
            "DATA seq {} block {} index {} is not in a signed manifest",
            d.seq,
            d.block,
            d.index
        );
    }

    /// Stream data sent anywhere must be genuine: DATA and PARITY vouched
    /// for by a signed manifest, MANIFEST and DESCRIPTOR signed.
    pub fn check_sent(&mut self, bytes: &[u8]) {
        match peek_type(bytes) {
            Ok(MessageType::Data) => self.check_data(bytes),
            Ok(MessageType::Parity) => {
                let p = Parity::parse(bytes).expect("sent PARITY parses");
                assert_eq!(p.stream, stream(), "PARITY of a stream nobody signed");
                let slot = usize::from(p.k) + usize::from(p.index);
                assert!(
                    self.vouches(p.block, slot, None, &parity_hash(p.symbol)),
                    "PARITY block {} index {} is not in a signed manifest",
                    p.block,
                    p.index
                );
            }
            Ok(MessageType::Manifest) => {
                assert!(self.verifies(bytes), "a sent MANIFEST verifies");
            }
            Ok(MessageType::Descriptor) => {
                let d = Descriptor::parse(bytes).expect("sent DESCRIPTOR parses");
                KEY.verify_descriptor(bytes, &d)
                    .expect("a sent DESCRIPTOR verifies");
            }
            _ => {}
        }
    }
}

/// Whether a datagram is stream data.
pub fn is_stream_data(bytes: &[u8]) -> bool {
    matches!(
        peek_type(bytes),
        Ok(MessageType::Data
            | MessageType::Parity
            | MessageType::Manifest
            | MessageType::Descriptor)
    )
}

/// The anti-amplification rule of the cookie handshake: an address that
/// has not echoed a cookie issued to it gets at most one datagram per
/// datagram it sends, a CHALLENGE or REJECT no longer than what it answers.
#[derive(Default)]
pub struct Amplification {
    /// Cookies issued, per address.
    issued: HashMap<SocketAddr, Vec<Cookie>>,
    /// Addresses that echoed one.
    proven: HashSet<SocketAddr>,
}

impl Amplification {
    /// Notes a datagram fed in from `from`, before it is handled.
    pub fn fed(&mut self, from: SocketAddr, bytes: &[u8]) {
        if let Ok(Message::Subscribe(s)) = Message::parse(bytes)
            && self
                .issued
                .get(&from)
                .is_some_and(|c| c.contains(&s.cookie))
        {
            self.proven.insert(from);
        }
    }

    /// Whether `addr` has completed the cookie round trip.
    pub fn proven(&self, addr: SocketAddr) -> bool {
        self.proven.contains(&addr)
    }

    /// Checks what was sent in answer to `input` (`None`: a timer ran),
    /// except what `initiated` says the sender may send unasked (its own
    /// handshakes as a client), and notes the cookies issued.
    pub fn check(
        &mut self,
        input: Option<(SocketAddr, usize)>,
        sent: &[(SocketAddr, Vec<u8>)],
        initiated: impl Fn(SocketAddr, &[u8]) -> bool,
    ) {
        let mut replies = 0;
        for (to, bytes) in sent {
            if let Ok(Message::Challenge(c)) = Message::parse(bytes) {
                self.issued.entry(*to).or_default().push(c.cookie);
            }
            if self.proven(*to) || initiated(*to, bytes) {
                continue;
            }
            let ty = peek_type(bytes);
            assert!(
                matches!(ty, Ok(MessageType::Challenge | MessageType::Reject)),
                "{ty:?} sent to {to}, which has not echoed a cookie"
            );
            let Some((from, len)) = input else {
                panic!("{ty:?} sent unasked to {to}, which has not echoed a cookie");
            };
            assert_eq!(*to, from, "{ty:?} sent to unproven {to}, not the asker");
            assert!(
                bytes.len() <= len,
                "{} bytes answer {len} to unproven {to}",
                bytes.len()
            );
            replies += 1;
            assert!(replies <= 1, "{replies} answers to one datagram from {to}");
        }
    }
}

/// A HELLO must be padded to the minimum, so that its CHALLENGE never
/// amplifies.
pub fn check_hello(bytes: &[u8]) {
    if peek_type(bytes) == Ok(MessageType::Hello) {
        assert!(bytes.len() >= HELLO_MIN_LEN, "short HELLO");
    }
}

/// After timers ran at `now`, the next timer lies in the future: an IO
/// loop never spins.
pub fn check_progress(now: Time, next: Option<Time>) {
    if let Some(t) = next {
        assert!(
            t > now,
            "poll_timeout {t:?} not after handle_timeout({now:?})"
        );
    }
}
