//! The flood's datagrams: the kinds, how often each comes, and how each
//! is made. A GSO train carries one kind at one length, so the unit here
//! is the [`Train`]: its kind and segment length are drawn once, then
//! every segment is written with fresh random fields.

use shoal_proto::StreamId;
use shoal_proto::rng::Rng;
use shoal_proto::wire::{
    Cookie, DATA_HEADER_LEN, Data, DataFlags, HELLO_MIN_LEN, Have, Hello, Introduce, Keepalive,
    Leave, LeaveReason, MAX_DATAGRAM_LEN, Manifest, Member, Message, Nack, NackEntry, NackKind,
    Peers, SUPPORTED_VERSIONS, Subscribe,
};

/// The relay's receive buffers (both backends): a longer datagram is
/// truncated by the kernel and counted as `truncated`.
pub const RELAY_RX_BUFFER: usize = 2048;
/// The largest datagram the flood sends (a jumbo frame).
pub const MAX_FLOOD_DATAGRAM: usize = 9000;
/// Forged DATA carries this much payload (the bench source's chunk).
const FORGED_PAYLOAD: usize = 1316;
/// Forged seqs fall in `epoch..epoch + NEAR_SEQS` three times in four
/// (where a stream that started recently is, so they pass the window's
/// range check and reach the costlier checks), otherwise anywhere.
const NEAR_SEQS: u64 = 4096;
/// Clubs of the bench source (the publisher's default): forged DATA
/// names the club its seq belongs to, to pass the club check.
const CLUBS: u64 = 8;
/// Random bytes to copy from, so that filling a 9000-byte datagram costs
/// a memcpy.
const POOL: usize = 1 << 20;

/// What a flood datagram is, and where the relay should count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Random bytes of random length (up to the protocol's largest):
    /// `malformed`.
    Random,
    /// A well-formed header (version, type) of any message type cut short:
    /// `malformed`.
    Truncated,
    /// Longer than any v1 datagram but within the relay's receive buffer:
    /// `malformed` (oversized).
    Oversized,
    /// Longer than the relay's receive buffer, up to 9000 bytes:
    /// `truncated` (by the kernel, counted by the IO backend).
    Jumbo,
    /// DATA for the bench's stream with a random seq and payload:
    /// `unproven` ahead of its manifest, else `replayed`, `corrupted` or
    /// `wrong_stream`.
    ForgedData,
    /// MANIFEST for the bench's stream with a random signature: `forged`
    /// or `replayed`. Each one that passes the range check costs the relay
    /// a signature check, so they are few.
    ForgedManifest,
    /// DATA for a stream the relay does not carry: `wrong_stream`.
    OtherStream,
    /// HELLO from one of the flood's many ports: `rate_limited` once the
    /// per-IP handshake budget is spent, else answered with a CHALLENGE.
    Hello,
    /// SUBSCRIBE with a made-up cookie: `bad_cookie`.
    Subscribe,
    /// KEEPALIVE from an address with no subscription: `not_subscribed`.
    Keepalive,
    /// NACK from an address with no subscription: `not_subscribed`.
    Nack,
    /// LEAVE, PEERS, HAVE, MEMBER or INTRODUCE (one type per train) for the
    /// bench's stream with a random session id (SPEC §11.4): what an
    /// off-path spoofer sends to end or steer a subscription. From the
    /// flood's own ports, which have none, `not_subscribed`; in a
    /// subscriber's name (a raw socket, `relay/tests/spoofed.rs`),
    /// `bad_session`. Never answered either way.
    Session,
}

/// How many message types [`Kind::Session`] trains rotate through.
const SESSION_TYPES: usize = 5;

/// Each kind's share of the trains, per thousand (a train of small
/// datagrams holds more of them than one of jumbo frames).
const MIX: [(Kind, u32); 12] = [
    (Kind::Random, 230),
    (Kind::Truncated, 200),
    (Kind::Oversized, 40),
    (Kind::Jumbo, 60),
    (Kind::ForgedData, 150),
    (Kind::ForgedManifest, 5),
    (Kind::OtherStream, 95),
    (Kind::Hello, 100),
    (Kind::Subscribe, 30),
    (Kind::Keepalive, 50),
    (Kind::Nack, 20),
    (Kind::Session, 20),
];

impl Kind {
    /// Every kind.
    pub const ALL: [Self; 12] = [
        Self::Random,
        Self::Truncated,
        Self::Oversized,
        Self::Jumbo,
        Self::ForgedData,
        Self::ForgedManifest,
        Self::OtherStream,
        Self::Hello,
        Self::Subscribe,
        Self::Keepalive,
        Self::Nack,
        Self::Session,
    ];

    /// The kind named `name` (as in reports).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Truncated => "truncated_header",
            Self::Oversized => "oversized",
            Self::Jumbo => "jumbo",
            Self::ForgedData => "forged_data",
            Self::ForgedManifest => "forged_manifest",
            Self::OtherStream => "other_stream",
            Self::Hello => "hello",
            Self::Subscribe => "subscribe_bad_cookie",
            Self::Keepalive => "keepalive_unknown",
            Self::Nack => "nack_unknown",
            Self::Session => "session_spoofed",
        }
    }

    /// The relay's drop reasons this kind should end up in.
    pub fn reasons(self) -> &'static [&'static str] {
        match self {
            Self::Random | Self::Truncated | Self::Oversized => &["malformed"],
            Self::Jumbo => &["truncated"],
            Self::ForgedData => &["unproven", "replayed", "corrupted", "wrong_stream"],
            Self::ForgedManifest => &["forged", "replayed"],
            Self::OtherStream => &["wrong_stream"],
            Self::Hello => &["rate_limited"],
            Self::Subscribe => &["bad_cookie"],
            Self::Keepalive | Self::Nack => &["not_subscribed"],
            Self::Session => &["not_subscribed", "bad_session"],
        }
    }
}

/// One GSO train's worth: a kind, and the length of each segment.
#[derive(Debug, Clone, Copy)]
pub struct Train {
    /// What every segment is.
    pub kind: Kind,
    /// Bytes per segment.
    pub len: usize,
    /// For [`Kind::Truncated`]: which template is cut.
    template: usize,
}

impl Default for Train {
    fn default() -> Self {
        Self {
            kind: Kind::Random,
            len: 1,
            template: 0,
        }
    }
}

/// Makes flood datagrams for one stream.
#[derive(Debug)]
pub struct Crafter {
    rng: Rng,
    pool: Vec<u8>,
    stream: StreamId,
    /// The stream's run epoch: where forged seqs cluster.
    epoch: u64,
    /// The kinds to make (all when empty).
    only: Vec<Kind>,
    /// One full datagram of each message type, for [`Kind::Truncated`].
    templates: Vec<Vec<u8>>,
    /// Emitted lengths of the fixed-size kinds.
    hello_len: usize,
    subscribe_len: usize,
    keepalive_len: usize,
    nack_len: usize,
    manifest_len: usize,
    /// Emitted lengths of [`Kind::Session`]'s message types.
    session_lens: [usize; SESSION_TYPES],
}

impl Crafter {
    /// A crafter forging for `stream`, seeded with `seed`.
    pub fn new(seed: u64, stream: StreamId, epoch: u64) -> Self {
        let mut rng = Rng::new(seed);
        let pool: Vec<u8> = (0..POOL / 8)
            .flat_map(|_| rng.next_u64().to_le_bytes())
            .collect();
        let mut c = Self {
            rng,
            pool,
            stream,
            epoch,
            only: Vec::new(),
            templates: Vec::new(),
            hello_len: 0,
            subscribe_len: 0,
            keepalive_len: 0,
            nack_len: 0,
            manifest_len: 0,
            session_lens: [0; SESSION_TYPES],
        };
        let mut buf = vec![0u8; MAX_FLOOD_DATAGRAM];
        let mut emit = |c: &mut Self, kind: Kind| -> Vec<u8> {
            let n = c.emit_valid(kind, &mut buf);
            buf[..n].to_vec()
        };
        let data = emit(&mut c, Kind::ForgedData);
        let manifest = emit(&mut c, Kind::ForgedManifest);
        let hello = emit(&mut c, Kind::Hello);
        let subscribe = emit(&mut c, Kind::Subscribe);
        let keepalive = emit(&mut c, Kind::Keepalive);
        let nack = emit(&mut c, Kind::Nack);
        (c.hello_len, c.subscribe_len, c.keepalive_len, c.nack_len) =
            (hello.len(), subscribe.len(), keepalive.len(), nack.len());
        c.manifest_len = manifest.len();
        for t in 0..SESSION_TYPES {
            c.session_lens[t] = c.emit_session(t, &mut buf);
        }
        let mut leave = [0u8; 64];
        let leave_len = Message::Leave(Leave {
            reason: LeaveReason::Done,
            stream,
            session: 0,
        })
        .emit(&mut leave)
        .expect("a LEAVE fits 64 bytes");
        // A descriptor or parity of the right type, cut in its header
        // (their full forms are not needed). Each keeps the stream id where
        // its type has it, so that a cut past it still reaches the
        // stream's own parser (and is `malformed`, not `wrong_stream`).
        let mut descriptor = manifest.clone();
        descriptor[1] = shoal_proto::wire::MessageType::Descriptor as u8;
        let mut parity = data.clone();
        parity[1] = shoal_proto::wire::MessageType::Parity as u8;
        c.templates = vec![
            data,
            manifest,
            hello,
            subscribe,
            keepalive,
            nack,
            leave[..leave_len].to_vec(),
            descriptor,
            parity,
        ];
        c
    }

    /// Makes only `kinds` from now on (all, when empty), in their
    /// proportions in the mix.
    pub fn only(&mut self, kinds: &[Kind]) {
        self.only = kinds.to_vec();
    }

    /// Draws the next train's kind and segment length.
    pub fn plan(&mut self) -> Train {
        let mix = MIX
            .iter()
            .filter(|(k, _)| self.only.is_empty() || self.only.contains(k));
        let total: u32 = mix.clone().map(|(_, w)| w).sum();
        let mut pick = (self.rng.next_u64() % u64::from(total.max(1))) as u32;
        let mut kind = self.only.first().copied().unwrap_or(Kind::Random);
        for &(k, weight) in mix {
            if pick < weight {
                kind = k;
                break;
            }
            pick -= weight;
        }
        let mut template = 0;
        let len = match kind {
            Kind::Random => self.rng.range(1, MAX_DATAGRAM_LEN),
            Kind::Truncated => {
                template = self.rng.range(0, self.templates.len() - 1);
                // Cut inside the fixed header, where no message can end:
                // at least version and type, so that the type is read.
                let full = self.templates[template].len();
                self.rng.range(2, (full - 1).min(DATA_HEADER_LEN - 1))
            }
            Kind::Oversized => self.rng.range(MAX_DATAGRAM_LEN + 1, RELAY_RX_BUFFER),
            Kind::Jumbo => self.rng.range(RELAY_RX_BUFFER + 1, MAX_FLOOD_DATAGRAM),
            Kind::ForgedData | Kind::OtherStream => DATA_HEADER_LEN + FORGED_PAYLOAD,
            Kind::ForgedManifest => self.manifest_len,
            Kind::Hello => self.hello_len,
            Kind::Subscribe => self.subscribe_len,
            Kind::Keepalive => self.keepalive_len,
            Kind::Nack => self.nack_len,
            Kind::Session => {
                template = self.rng.range(0, SESSION_TYPES - 1);
                self.session_lens[template]
            }
        };
        Train {
            kind,
            len,
            template,
        }
    }

    /// Writes one segment of `train` into `out[..train.len]`.
    pub fn write(&mut self, train: Train, out: &mut [u8]) {
        let out = &mut out[..train.len];
        match train.kind {
            Kind::Random | Kind::Oversized | Kind::Jumbo => {
                let at = self.rng.range(0, POOL - train.len);
                out.copy_from_slice(&self.pool[at..at + train.len]);
                let stamp = self.rng.next_u64().to_le_bytes();
                let n = stamp.len().min(out.len());
                out[..n].copy_from_slice(&stamp[..n]);
                if train.kind != Kind::Random {
                    // A plausible start: version 1, DATA. The length alone
                    // makes it invalid.
                    out[0] = shoal_proto::wire::VERSION;
                    out[1] = shoal_proto::wire::MessageType::Data as u8;
                } else if out[0] == shoal_proto::wire::VERSION {
                    // Random through and through: not a v1 datagram.
                    out[0] = 0xff;
                }
            }
            Kind::Session => {
                let n = self.emit_session(train.template, out);
                debug_assert_eq!(
                    n, train.len,
                    "session type {} changed length",
                    train.template
                );
            }
            Kind::Truncated => {
                // The template's own bytes: randomised, a cut past the
                // stream id would name no stream and count as
                // `wrong_stream`.
                out.copy_from_slice(&self.templates[train.template][..train.len]);
            }
            _ => {
                let n = self.emit_valid(train.kind, out);
                debug_assert_eq!(n, train.len, "{:?} changed length", train.kind);
            }
        }
    }

    /// Emits a well-formed datagram of a kind that has one, with fresh
    /// random fields; returns its length.
    fn emit_valid(&mut self, kind: Kind, out: &mut [u8]) -> usize {
        let near = !self.rng.next_u64().is_multiple_of(4);
        let seq = if near {
            self.epoch.saturating_add(self.rng.next_u64() % NEAR_SEQS)
        } else {
            self.rng.next_u64()
        };
        // Blocks of four from the epoch on, as a MANIFEST must (SPEC §8.1).
        let epoch = self.epoch.min(seq);
        let first_seq = epoch + ((seq - epoch) & !3);
        let block = epoch + (seq - epoch) / 4;
        let r = self.rng.next_u64();
        let msg = match kind {
            Kind::ForgedData | Kind::OtherStream => {
                let stream = if kind == Kind::OtherStream {
                    self.random_stream()
                } else {
                    self.stream
                };
                let at = (r as usize) % (POOL - FORGED_PAYLOAD);
                let data = Data {
                    flags: DataFlags::new(r & 1 == 0, false),
                    club: (seq % CLUBS) as u8,
                    stream,
                    seq,
                    block,
                    timestamp_us: r >> 8,
                    index: (seq % 4) as u8,
                    payload: &self.pool[at..at + FORGED_PAYLOAD],
                };
                return Message::Data(data)
                    .emit(out)
                    .expect("a DATA fits its train");
            }
            Kind::ForgedManifest => {
                let mut signature = [0u8; 64];
                for chunk in signature.chunks_mut(8) {
                    chunk.copy_from_slice(&self.rng.next_u64().to_le_bytes());
                }
                // S < L, so a check gets as far as the curve arithmetic
                // (the costly part) instead of failing on the scalar.
                signature[63] &= 0x0f;
                let at = (r as usize) % (POOL - 5 * 16);
                let manifest = Manifest {
                    k: 4,
                    m: 1,
                    symbol_len: (FORGED_PAYLOAD + 4) as u16,
                    stream: self.stream,
                    block,
                    first_seq,
                    epoch,
                    timestamp_us: r,
                    hashes: &self.pool[at..at + 5 * 16],
                    signature,
                };
                return Message::Manifest(manifest)
                    .emit(out)
                    .expect("a MANIFEST fits its train");
            }
            Kind::Hello => Message::Hello(Hello {
                versions: SUPPORTED_VERSIONS,
                nonce: r,
                padded_len: HELLO_MIN_LEN as u16,
            }),
            Kind::Subscribe => {
                let mut tag = [0u8; 16];
                tag[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
                tag[8..].copy_from_slice(&r.to_le_bytes());
                Message::Subscribe(Subscribe {
                    stream: self.stream,
                    clubs: u64::MAX,
                    start_seq: None,
                    cookie: Cookie {
                        issued_at_us: seq,
                        tag,
                    },
                    token: &[],
                })
            }
            Kind::Keepalive => Message::Keepalive(Keepalive {
                stream: self.stream,
                session: self.rng.next_u64(),
                highest_seq: seq,
                lost: r as u32,
                fec_repaired: 0,
                nack_repaired: 0,
                latency_us: (r >> 32) as u32,
            }),
            Kind::Nack => {
                let mut nack = Nack::new(self.stream, self.rng.next_u64());
                nack.push(NackEntry {
                    kind: NackKind::Chunks,
                    start: seq,
                    len: 1 + (r % 16) as u16,
                });
                Message::Nack(nack)
            }
            Kind::Random | Kind::Truncated | Kind::Oversized | Kind::Jumbo | Kind::Session => {
                unreachable!("{kind:?} is not made here")
            }
        };
        msg.emit(out).expect("a control message fits its train")
    }

    /// Emits session message type `t` (of [`SESSION_TYPES`]) for the
    /// stream with a random session id; returns its length.
    fn emit_session(&mut self, t: usize, out: &mut [u8]) -> usize {
        let session = self.rng.next_u64();
        let r = self.rng.next_u64();
        let stream = self.stream;
        let msg = match t {
            0 => Message::Leave(Leave {
                reason: LeaveReason::Done,
                stream,
                session,
            }),
            1 => Message::Peers(Peers::new(stream, session, (r % CLUBS) as u8)),
            2 => Message::Have(Have {
                stream,
                session,
                base: self.epoch.saturating_add(r % NEAR_SEQS),
                mask: u64::MAX,
            }),
            3 => Message::Member(Member {
                stream,
                session,
                clubs: u64::MAX,
                upload_kbps: r as u32,
            }),
            _ => {
                let ip = std::net::Ipv4Addr::from((r >> 32) as u32);
                Message::Introduce(Introduce {
                    stream,
                    session,
                    addr: std::net::SocketAddr::from((ip, r as u16)),
                })
            }
        };
        msg.emit(out).expect("a session message fits its train")
    }

    fn random_stream(&mut self) -> StreamId {
        let mut id = [0u8; 32];
        for chunk in id.chunks_mut(8) {
            chunk.copy_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        StreamId(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::wire::peek_type;

    fn crafter() -> Crafter {
        Crafter::new(7, crate::source::stream_id(), 1_700_000_000_000_000)
    }

    #[test]
    fn the_mix_adds_up_to_a_thousand() {
        assert_eq!(MIX.iter().map(|(_, w)| w).sum::<u32>(), 1000);
        assert_eq!(MIX.len(), Kind::ALL.len());
    }

    #[test]
    fn every_kind_is_what_it_claims() {
        let mut c = crafter();
        let mut seen = std::collections::BTreeSet::new();
        let mut sessions = std::collections::BTreeSet::new();
        let mut buf = vec![0u8; MAX_FLOOD_DATAGRAM];
        for _ in 0..20_000 {
            let train = c.plan();
            seen.insert(train.kind);
            c.write(train, &mut buf);
            let bytes = &buf[..train.len];
            let parsed = Message::parse(bytes);
            match train.kind {
                Kind::Random | Kind::Truncated => {
                    assert!(bytes.len() <= MAX_DATAGRAM_LEN);
                    assert!(parsed.is_err(), "{:?} parsed: {bytes:?}", train.kind);
                }
                Kind::Oversized => {
                    assert!((MAX_DATAGRAM_LEN + 1..=RELAY_RX_BUFFER).contains(&bytes.len()));
                    assert!(peek_type(bytes).is_err());
                }
                Kind::Jumbo => assert!(bytes.len() > RELAY_RX_BUFFER),
                Kind::ForgedData | Kind::OtherStream => {
                    let Ok(Message::Data(d)) = parsed else {
                        panic!("not DATA: {parsed:?}")
                    };
                    assert_eq!(d.stream == c.stream, train.kind == Kind::ForgedData);
                }
                Kind::ForgedManifest => assert!(matches!(parsed, Ok(Message::Manifest(_)))),
                Kind::Hello => assert!(matches!(parsed, Ok(Message::Hello(_)))),
                Kind::Subscribe => assert!(matches!(parsed, Ok(Message::Subscribe(_)))),
                Kind::Keepalive => assert!(matches!(parsed, Ok(Message::Keepalive(_)))),
                Kind::Nack => assert!(matches!(parsed, Ok(Message::Nack(_)))),
                Kind::Session => {
                    // One of the session types, for the bench's stream, each
                    // with its own random session id.
                    let (stream, session) = match parsed {
                        Ok(Message::Leave(m)) => (m.stream, m.session),
                        Ok(Message::Peers(m)) => (m.stream, m.session),
                        Ok(Message::Have(m)) => (m.stream, m.session),
                        Ok(Message::Member(m)) => (m.stream, m.session),
                        Ok(Message::Introduce(m)) => (m.stream, m.session),
                        other => panic!("not a session message: {other:?}"),
                    };
                    assert_eq!(stream, c.stream);
                    assert!(sessions.insert(session), "a repeated session id");
                }
            }
        }
        assert_eq!(seen.len(), Kind::ALL.len(), "{seen:?}");
    }

    #[test]
    fn a_restricted_mix_makes_only_its_kinds() {
        let mut c = crafter();
        c.only(&[Kind::Hello, Kind::Jumbo]);
        for _ in 0..1000 {
            let kind = c.plan().kind;
            assert!(matches!(kind, Kind::Hello | Kind::Jumbo), "{kind:?}");
        }
        assert_eq!(Kind::from_name("forged_data"), Some(Kind::ForgedData));
    }

    #[test]
    fn truncated_headers_keep_version_and_type() {
        let mut c = crafter();
        let mut buf = vec![0u8; MAX_FLOOD_DATAGRAM];
        for _ in 0..5_000 {
            let train = c.plan();
            if train.kind != Kind::Truncated {
                continue;
            }
            c.write(train, &mut buf);
            assert!(peek_type(&buf[..train.len]).is_ok(), "{:?}", &buf[..2]);
        }
    }
}
