//! Properties of every v1 codec: a valid message survives emit and parse
//! unchanged, every accepted datagram is canonical, and no input (random,
//! truncated or mutated) makes a decoder panic.
//!
//! Generated messages borrow nothing: a strategy yields a `'static`
//! template whose borrowed field (payload, symbol, hashes or token) is
//! empty, plus the bytes that [`fill`] slots into it.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::control::{MAX_NACK_ENTRIES, MAX_PEERS};
use super::*;
use crate::StreamId;
use crate::fec::{MAX_K, MAX_M};

/// A generated message: a template and the bytes it borrows.
type Case = (Message<'static>, Vec<u8>);

/// The message `template` describes, borrowing `tail` for its variable part.
fn fill<'a>(template: &Message<'static>, tail: &'a [u8]) -> Message<'a> {
    match template {
        Message::Data(d) => Message::Data(Data {
            payload: tail,
            ..*d
        }),
        Message::Parity(p) => Message::Parity(Parity { symbol: tail, ..*p }),
        Message::Manifest(m) => Message::Manifest(Manifest { hashes: tail, ..*m }),
        Message::Subscribe(s) => Message::Subscribe(Subscribe { token: tail, ..*s }),
        Message::About(a) => Message::About(About { page: tail, ..*a }),
        other => other.clone(),
    }
}

/// Emits `msg` into a buffer of exactly `buffer_len()` bytes.
fn encode(msg: &Message<'_>) -> Result<Vec<u8>, TestCaseError> {
    let mut buf = vec![0xA5; msg.buffer_len()];
    let len = msg
        .emit(&mut buf)
        .map_err(|e| TestCaseError::fail(format!("emit: {e}")))?;
    prop_assert_eq!(len, buf.len(), "emit writes buffer_len() bytes");
    Ok(buf)
}

// ---------------------------------------------------------------------------
// Strategies: every valid message of each type.

fn stream() -> impl Strategy<Value = StreamId> {
    any::<[u8; 32]>().prop_map(StreamId)
}

fn cookie() -> impl Strategy<Value = Cookie> {
    (any::<u64>(), any::<[u8; 16]>()).prop_map(|(issued_at_us, tag)| Cookie { issued_at_us, tag })
}

fn bytes(len: impl Into<prop::collection::SizeRange>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), len)
}

fn data() -> impl Strategy<Value = Case> {
    (
        (any::<bool>(), any::<bool>(), any::<u8>(), stream()),
        (any::<u64>(), any::<u64>(), any::<u64>(), 0..MAX_K as u8),
        bytes(0..=MAX_CHUNK_SIZE),
    )
        .prop_map(
            |((keyframe, eos, club, stream), (seq, block, timestamp_us, index), payload)| {
                let d = Data {
                    flags: DataFlags::new(keyframe, eos),
                    club,
                    stream,
                    seq,
                    block,
                    timestamp_us,
                    index,
                    payload: &[],
                };
                (Message::Data(d), payload)
            },
        )
}

/// Longest even symbol a PARITY datagram can carry.
const MAX_PARITY_SYMBOL: usize = (MAX_DATAGRAM_LEN - PARITY_HEADER_LEN) & !1;

fn parity() -> impl Strategy<Value = Case> {
    (1..=MAX_K as u8, 1..=MAX_M as u8)
        .prop_flat_map(|(k, m)| {
            (
                Just((k, m)),
                0..m,
                (stream(), any::<u64>(), any::<u64>()),
                (6..=MAX_PARITY_SYMBOL / 2).prop_flat_map(|half| bytes(half * 2)),
            )
        })
        .prop_map(|((k, m), index, (stream, block, first_seq), symbol)| {
            let p = Parity {
                k,
                m,
                stream,
                block,
                first_seq,
                index,
                symbol: &[],
            };
            (Message::Parity(p), symbol)
        })
}

fn manifest() -> impl Strategy<Value = Case> {
    (1..=MAX_K as u8, 0..=MAX_M as u8)
        .prop_flat_map(|(k, m)| {
            let symbol_len = if m == 0 {
                Just(0).boxed()
            } else {
                (6..=u16::MAX / 2).prop_map(|half| half * 2).boxed()
            };
            (
                Just((k, m)),
                symbol_len,
                (stream(), any::<u64>(), any::<u64>()),
                (any::<u64>(), any::<u64>()),
                bytes((usize::from(k) + usize::from(m)) * HASH_LEN),
                any::<[u8; SIGNATURE_LEN]>(),
            )
        })
        .prop_map(
            |(
                (k, m),
                symbol_len,
                (stream, block, first_seq),
                (epoch, timestamp_us),
                hashes,
                signature,
            )| {
                // A run starts at its epoch: no block or seq before it.
                let epoch = epoch.min(block).min(first_seq);
                let man = Manifest {
                    k,
                    m,
                    symbol_len,
                    stream,
                    block,
                    first_seq,
                    epoch,
                    timestamp_us,
                    hashes: &[],
                    signature,
                };
                (Message::Manifest(man), hashes)
            },
        )
}

fn descriptor() -> impl Strategy<Value = Case> {
    (
        (
            prop_oneof![Just(Codec::Opaque), Just(Codec::MpegTs)],
            1..=MAX_CLUBS,
            1..=MAX_K as u8,
            0..=MAX_M as u8,
            1..=MAX_CHUNK_SIZE as u16,
        ),
        (
            stream(),
            any::<u64>(),
            any::<u32>(),
            1..=u16::MAX,
            any::<u64>(),
            any::<u64>(),
        ),
        any::<[u8; SIGNATURE_LEN]>(),
    )
        .prop_map(
            |(
                (codec, clubs, k, m, chunk_size),
                (stream, bitrate_bps, revision, block_ms, issued_at_us, epoch),
                signature,
            )| {
                let d = Descriptor {
                    codec,
                    clubs,
                    k,
                    m,
                    chunk_size,
                    stream,
                    bitrate_bps,
                    revision,
                    block_ms,
                    issued_at_us,
                    epoch,
                    signature,
                };
                (Message::Descriptor(d), Vec::new())
            },
        )
}

fn hello() -> impl Strategy<Value = Case> {
    (
        any::<u32>(),
        any::<u64>(),
        HELLO_MIN_LEN as u16..=MAX_DATAGRAM_LEN as u16,
    )
        .prop_map(|(versions, nonce, padded_len)| {
            let h = Hello {
                versions,
                nonce,
                padded_len,
            };
            (Message::Hello(h), Vec::new())
        })
}

fn challenge() -> impl Strategy<Value = Case> {
    (any::<u64>(), cookie())
        .prop_map(|(nonce, cookie)| (Message::Challenge(Challenge { nonce, cookie }), Vec::new()))
}

fn subscribe() -> impl Strategy<Value = Case> {
    (
        stream(),
        1..=u64::MAX,
        any::<Option<u64>>(),
        cookie(),
        bytes(0..=TOKEN_MAX_LEN),
    )
        .prop_map(|(stream, clubs, start_seq, cookie, token)| {
            let s = Subscribe {
                stream,
                clubs,
                start_seq,
                cookie,
                token: &[],
            };
            (Message::Subscribe(s), token)
        })
}

fn accept() -> impl Strategy<Value = Case> {
    (
        1..=u16::MAX,
        stream(),
        any::<u64>(),
        any::<u64>(),
        peer_addr(),
    )
        .prop_map(|(keepalive_ms, stream, session, start_seq, observed)| {
            let a = Accept {
                keepalive_ms,
                stream,
                session,
                start_seq,
                observed,
            };
            (Message::Accept(a), Vec::new())
        })
}

fn reject() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(crate::testutil::reject_reasons().collect::<Vec<_>>()),
        any::<u32>(),
        stream(),
    )
        .prop_map(|(reason, versions, stream)| {
            let r = Reject {
                reason,
                versions,
                stream,
            };
            (Message::Reject(r), Vec::new())
        })
}

fn keepalive() -> impl Strategy<Value = Case> {
    (stream(), any::<u64>(), any::<u64>(), any::<[u32; 4]>()).prop_map(
        |(stream, session, highest_seq, [lost, fec_repaired, nack_repaired, latency_us])| {
            let k = Keepalive {
                stream,
                session,
                highest_seq,
                lost,
                fec_repaired,
                nack_repaired,
                latency_us,
            };
            (Message::Keepalive(k), Vec::new())
        },
    )
}

fn nack_entry() -> impl Strategy<Value = NackEntry> {
    (
        prop_oneof![Just(NackKind::Chunks), Just(NackKind::Manifests)],
        any::<u64>(),
        1..=u16::MAX,
    )
        .prop_map(|(kind, start, len)| NackEntry { kind, start, len })
}

fn nack() -> impl Strategy<Value = Case> {
    (
        stream(),
        any::<u64>(),
        prop::collection::vec(nack_entry(), 1..=MAX_NACK_ENTRIES),
    )
        .prop_map(|(stream, session, entries)| {
            let mut n = Nack::new(stream, session);
            for e in entries {
                assert!(n.push(e), "a valid entry fits");
            }
            (Message::Nack(n), Vec::new())
        })
}

fn leave() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            Just(LeaveReason::Done),
            Just(LeaveReason::ShuttingDown),
            Just(LeaveReason::Expired),
            Just(LeaveReason::EndOfStream),
        ],
        stream(),
        any::<u64>(),
    )
        .prop_map(|(reason, stream, session)| {
            let l = Leave {
                reason,
                stream,
                session,
            };
            (Message::Leave(l), Vec::new())
        })
}

fn peer_addr() -> impl Strategy<Value = PeerAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::from((Ipv4Addr::from(ip), port))),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::from((Ipv6Addr::from(ip), port))),
    ]
}

fn peers() -> impl Strategy<Value = Case> {
    (
        any::<u8>(),
        stream(),
        any::<u64>(),
        prop::collection::vec(peer_addr(), 0..=MAX_PEERS),
    )
        .prop_map(|(club, stream, session, addrs)| {
            let mut p = Peers::new(stream, session, club);
            for a in addrs {
                assert!(p.push(a), "at most MAX_PEERS addresses");
            }
            (Message::Peers(p), Vec::new())
        })
}

fn have() -> impl Strategy<Value = Case> {
    (stream(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
        |(stream, session, base, mask)| {
            let h = Have {
                stream,
                session,
                base,
                mask,
            };
            (Message::Have(h), Vec::new())
        },
    )
}

fn member() -> impl Strategy<Value = Case> {
    (stream(), any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
        |(stream, session, clubs, upload_kbps)| {
            let m = Member {
                stream,
                session,
                clubs,
                upload_kbps,
            };
            (Message::Member(m), Vec::new())
        },
    )
}

fn introduce() -> impl Strategy<Value = Case> {
    (stream(), any::<u64>(), peer_addr()).prop_map(|(stream, session, addr)| {
        let i = Introduce {
            stream,
            session,
            addr,
        };
        (Message::Introduce(i), Vec::new())
    })
}

fn punch() -> impl Strategy<Value = Case> {
    (stream(), peer_addr())
        .prop_map(|(stream, seen_as)| (Message::Punch(Punch { stream, seen_as }), Vec::new()))
}

fn query() -> impl Strategy<Value = Case> {
    any::<u64>().prop_map(|nonce| (Message::Query(Query { nonce }), Vec::new()))
}

fn about() -> impl Strategy<Value = Case> {
    (any::<u64>(), any::<u16>(), bytes(0..=PAGE_MAX_LEN)).prop_map(|(nonce, http_port, page)| {
        let a = About {
            nonce,
            http_port,
            page: &[],
        };
        (Message::About(a), page)
    })
}

/// Any valid v1 message.
fn message() -> impl Strategy<Value = Case> {
    prop_oneof![
        data(),
        parity(),
        manifest(),
        descriptor(),
        hello(),
        challenge(),
        subscribe(),
        accept(),
        reject(),
        keepalive(),
        nack(),
        leave(),
        peers(),
        have(),
        member(),
        introduce(),
        punch(),
        query(),
        about(),
    ]
}

// ---------------------------------------------------------------------------
// Checks shared by the properties.

/// Every decoder on `bytes`: must not panic, must agree with
/// [`Message::parse`], and whatever is accepted must re-encode to exactly
/// `bytes` (one encoding per message).
fn check_decoders(bytes: &[u8]) -> Result<(), TestCaseError> {
    let parsed = Message::parse(bytes);
    match peek_type(bytes) {
        Ok(ty) => check_typed_parse(ty, bytes, &parsed)?,
        Err(e) => prop_assert_eq!(&parsed, &Err(e)),
    }
    check_views(bytes)?;
    if let Ok(msg) = &parsed {
        prop_assert!(bytes.len() <= MAX_DATAGRAM_LEN);
        prop_assert_eq!(msg.buffer_len(), bytes.len());
        let again = encode(msg)?;
        prop_assert_eq!(&again[..], bytes, "an accepted datagram is canonical");
    }
    Ok(())
}

/// The type's own parser gives what [`Message::parse`] gave.
fn check_typed_parse(
    ty: MessageType,
    bytes: &[u8],
    parsed: &Result<Message<'_>, DecodeError>,
) -> Result<(), TestCaseError> {
    let typed = match ty {
        MessageType::Data => Data::parse(bytes).map(Message::Data),
        MessageType::Parity => Parity::parse(bytes).map(Message::Parity),
        MessageType::Manifest => Manifest::parse(bytes).map(Message::Manifest),
        MessageType::Descriptor => Descriptor::parse(bytes).map(Message::Descriptor),
        MessageType::Hello => Hello::parse(bytes).map(Message::Hello),
        MessageType::Challenge => Challenge::parse(bytes).map(Message::Challenge),
        MessageType::Subscribe => Subscribe::parse(bytes).map(Message::Subscribe),
        MessageType::Accept => Accept::parse(bytes).map(Message::Accept),
        MessageType::Reject => Reject::parse(bytes).map(Message::Reject),
        MessageType::Keepalive => Keepalive::parse(bytes).map(Message::Keepalive),
        MessageType::Nack => Nack::parse(bytes).map(Message::Nack),
        MessageType::Leave => Leave::parse(bytes).map(Message::Leave),
        MessageType::Peers => Peers::parse(bytes).map(Message::Peers),
        MessageType::Have => Have::parse(bytes).map(Message::Have),
        MessageType::Member => Member::parse(bytes).map(Message::Member),
        MessageType::Introduce => Introduce::parse(bytes).map(Message::Introduce),
        MessageType::Punch => Punch::parse(bytes).map(Message::Punch),
        MessageType::Query => Query::parse(bytes).map(Message::Query),
        MessageType::About => About::parse(bytes).map(Message::About),
    };
    prop_assert_eq!(&typed, parsed);
    Ok(())
}

/// The checked views accept exactly what the parsers accept, with the
/// same fields and the datagram's own bytes.
fn check_views(bytes: &[u8]) -> Result<(), TestCaseError> {
    let data = DataView::new_checked(bytes);
    prop_assert_eq!(data.map(|v| *v.fields()), Data::parse(bytes));
    if let Ok(v) = data {
        prop_assert_eq!(v.as_bytes(), bytes);
    }
    let parity = ParityView::new_checked(bytes);
    prop_assert_eq!(parity.map(|v| *v.fields()), Parity::parse(bytes));
    if let Ok(v) = parity {
        prop_assert_eq!(v.as_bytes(), bytes);
    }
    let manifest = ManifestView::new_checked(bytes);
    prop_assert_eq!(manifest.map(|v| *v.fields()), Manifest::parse(bytes));
    if let Ok(v) = manifest {
        prop_assert_eq!(v.as_bytes(), bytes);
        prop_assert_eq!(v.signed_bytes(), &bytes[..bytes.len() - SIGNATURE_LEN]);
    }
    Ok(())
}

/// What parsing the first `len` bytes of `msg`'s encoding must give.
/// DATA, PARITY and HELLO end in a part whose length is the datagram's, so
/// some prefixes are themselves valid; every other prefix is refused.
fn check_prefix(msg: &Message<'_>, prefix: &[u8]) -> Result<(), TestCaseError> {
    let parsed = Message::parse(prefix);
    let len = prefix.len();
    match msg {
        Message::Data(d) if len >= DATA_HEADER_LEN => {
            let payload = &prefix[DATA_HEADER_LEN..];
            prop_assert_eq!(parsed, Ok(Message::Data(Data { payload, ..*d })));
        }
        Message::Parity(p) if len >= PARITY_HEADER_LEN => {
            let symbol = &prefix[PARITY_HEADER_LEN..];
            if symbol.len() >= crate::fec::SYMBOL_HEADER_LEN && symbol.len().is_multiple_of(2) {
                prop_assert_eq!(parsed, Ok(Message::Parity(Parity { symbol, ..*p })));
            } else {
                prop_assert_eq!(parsed, Err(DecodeError::Field("symbol")));
            }
        }
        Message::Hello(h) if len >= HELLO_MIN_LEN => {
            let padded_len = u16::try_from(len).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed, Ok(Message::Hello(Hello { padded_len, ..*h })));
        }
        _ => prop_assert!(parsed.is_err(), "prefix of {} bytes accepted", len),
    }
    Ok(())
}

/// Byte offsets of `msg`'s encoding that hold reserved bits, with a mask
/// of those bits. Setting any of them must give [`DecodeError::Reserved`].
fn reserved_bits(msg: &Message<'_>, encoded: &[u8]) -> Vec<(usize, u8)> {
    let whole = |range: std::ops::Range<usize>| range.map(|i| (i, 0xFF)).collect::<Vec<_>>();
    match msg {
        Message::Data(_) => vec![(2, !(DataFlags::KEYFRAME | DataFlags::END_OF_STREAM))],
        Message::Manifest(_) => whole(6..8),
        Message::Descriptor(_) => whole(54..56),
        // The reserved u16 and every padding byte.
        Message::Hello(_) => [whole(2..4), whole(16..encoded.len())].concat(),
        Message::Challenge(_)
        | Message::Keepalive(_)
        | Message::Have(_)
        | Message::Member(_)
        | Message::Punch(_) => whole(2..4),
        // The reserved u16, then the address entry's unused bytes as in PEERS.
        Message::Introduce(i) if i.addr.is_ipv4() => [whole(2..4), whole(49..61)].concat(),
        Message::Introduce(_) => whole(2..4),
        // The flag byte past RESUME, then the reserved byte.
        Message::Subscribe(_) => vec![(2, !0x01), (3, 0xFF)],
        Message::Reject(_) | Message::Nack(_) | Message::Leave(_) => whole(3..4),
        // The 12 unused address bytes of each IPv4 entry.
        Message::Peers(p) => p
            .addrs()
            .iter()
            .enumerate()
            .filter(|(_, a)| a.is_ipv4())
            .flat_map(|(i, _)| {
                let entry = 44 + 19 * i;
                whole(entry + 5..entry + 17)
            })
            .collect(),
        // The reserved u16 and every padding byte.
        Message::Query(_) => [whole(2..4), whole(12..encoded.len())].concat(),
        Message::Parity(_) | Message::Accept(_) | Message::About(_) => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn emit_then_parse_round_trips((template, tail) in message()) {
        let msg = fill(&template, &tail);
        let encoded = encode(&msg)?;
        prop_assert!(encoded.len() <= MAX_DATAGRAM_LEN);
        prop_assert_eq!(Message::parse(&encoded), Ok(msg.clone()));
        check_decoders(&encoded)?;

        // One byte short of buffer_len() is refused without writing past it.
        let mut short = vec![0; encoded.len() - 1];
        prop_assert_eq!(
            msg.emit(&mut short),
            Err(BufferTooSmall { need: encoded.len(), have: encoded.len() - 1 })
        );
        // A larger buffer is fine and only the front is written.
        let mut long = vec![0x5A; encoded.len() + 7];
        prop_assert_eq!(msg.emit(&mut long), Ok(encoded.len()));
        prop_assert_eq!(&long[..encoded.len()], &encoded[..]);
        prop_assert!(long[encoded.len()..].iter().all(|&b| b == 0x5A));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_prefix_is_refused_or_a_shorter_message((template, tail) in message()) {
        let msg = fill(&template, &tail);
        let encoded = encode(&msg)?;
        for len in 0..encoded.len() {
            check_prefix(&msg, &encoded[..len])?;
        }
    }

    #[test]
    fn a_trailing_byte_is_refused((template, tail) in message(), extra: u8) {
        let msg = fill(&template, &tail);
        let mut encoded = encode(&msg)?;
        encoded.push(extra);
        let parsed = Message::parse(&encoded);
        match msg {
            // The payload or symbol grows by one byte; check_decoders
            // below says whether that is still valid.
            Message::Data(_) | Message::Parity(_) => {}
            // A padding byte: valid only as zero and within the limit.
            Message::Hello(_) if extra == 0 && encoded.len() <= MAX_DATAGRAM_LEN => {
                prop_assert!(parsed.is_ok());
            }
            Message::Hello(_) => prop_assert!(parsed.is_err()),
            _ => prop_assert_eq!(parsed, Err(DecodeError::TrailingBytes)),
        }
        check_decoders(&encoded)?;
    }

    #[test]
    fn a_set_reserved_bit_is_refused(
        (template, tail) in message(),
        pick: prop::sample::Index,
        bit in 0..8u32,
    ) {
        let msg = fill(&template, &tail);
        let mut encoded = encode(&msg)?;
        let reserved = reserved_bits(&msg, &encoded);
        if !reserved.is_empty() {
            let (at, mask) = reserved[pick.index(reserved.len())];
            // The lowest reserved bit at or after `bit`, wrapping.
            let set = mask.rotate_right(bit).trailing_zeros();
            encoded[at] |= 1u8.rotate_left(bit + set);
            prop_assert_eq!(Message::parse(&encoded), Err(DecodeError::Reserved));
            check_decoders(&encoded)?;
        }
    }

    #[test]
    fn mutated_encodings_never_panic(
        (template, tail) in message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut: prop::sample::Index,
    ) {
        let msg = fill(&template, &tail);
        let mut encoded = encode(&msg)?;
        for (at, value) in edits {
            let i = at.index(encoded.len());
            encoded[i] = value;
        }
        check_decoders(&encoded)?;
        let len = cut.index(encoded.len() + 1);
        check_decoders(&encoded[..len])?;
    }
}

const TYPE_BYTES: [u8; 20] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a,
    0x1b, 0x1c, 0x1d, 0xFF,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in bytes(0..=1500)) {
        check_decoders(&bytes)?;
    }

    /// Random bodies behind a valid header, so each decoder gets past
    /// peek_type.
    #[test]
    fn arbitrary_bodies_never_panic(
        ty in prop::sample::select(&TYPE_BYTES[..]),
        mut bytes in bytes(0..=1500),
    ) {
        bytes.splice(..bytes.len().min(2), [VERSION, ty]);
        check_decoders(&bytes)?;
    }
}

#[test]
fn subscribe_without_resume_must_have_zero_start() {
    let s = Subscribe {
        stream: StreamId([7; 32]),
        clubs: 1,
        start_seq: None,
        cookie: Cookie {
            issued_at_us: 1,
            tag: [2; 16],
        },
        token: b"t",
    };
    let mut buf = [0; 79];
    assert_eq!(s.emit(&mut buf), Ok(79));
    assert_eq!(Subscribe::parse(&buf), Ok(s));
    // start_seq lives at 44..52.
    buf[51] = 1;
    assert_eq!(Subscribe::parse(&buf), Err(DecodeError::Reserved));
}

#[test]
fn header_errors_come_first() {
    assert_eq!(Message::parse(&[]), Err(DecodeError::Truncated));
    assert_eq!(Message::parse(&[VERSION]), Err(DecodeError::Truncated));
    assert_eq!(
        Message::parse(&[2, 0x01]),
        Err(DecodeError::UnsupportedVersion(2))
    );
    assert_eq!(
        Message::parse(&[VERSION, 0x05]),
        Err(DecodeError::UnknownType(0x05))
    );
    assert_eq!(
        Message::parse(&[VERSION; MAX_DATAGRAM_LEN + 1]),
        Err(DecodeError::Oversized)
    );
}
