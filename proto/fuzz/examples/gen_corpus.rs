//! Writes the seed corpus: a handful of small valid inputs per fuzz target,
//! into `corpus/<target>/`. Deterministic, so re-running it changes nothing.
//!
//! ```text
//! cargo run --manifest-path proto/fuzz/Cargo.toml --example gen_corpus
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use shoal_proto::StreamId;
use shoal_proto::fec::{symbol_len, write_symbol};
use shoal_proto::integrity::PublisherKey;
use shoal_proto::publisher::{Publisher, PublisherConfig};
use shoal_proto::ts::{
    Header, STREAM_TYPE_AAC, STREAM_TYPE_H264, TS_PACKET_LEN, pat_packet, pcr_field, pmt_packet,
};
use shoal_proto::wire::{
    About, Accept, Challenge, Codec, Cookie, DATA_HEADER_LEN, DESCRIPTOR_LEN, Data, DataFlags, Descriptor,
    Have, Hello, Introduce, Keepalive, Leave, LeaveReason, MAX_DATAGRAM_LEN, Manifest, Member,
    Message, Nack, NackEntry, NackKind, Parity, Peers, Punch, Query, Reject, RejectReason, SIGNATURE_LEN,
    SUPPORTED_VERSIONS, Subscribe,
};

/// The state-machine targets' input format and key.
#[path = "../fuzz_targets/common/mod.rs"]
mod common;

use common::{SEED, T0, control};

/// The session id of every session datagram here; with the fix bit a
/// harness replaces it by the one the state machine uses (SPEC §11.4).
const SESSION: u64 = 0x0123_4567_89ab_cdef;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let key = PublisherKey::from_seed(SEED);
    let stream = key.stream_id();

    let messages = messages(&key, stream)?;
    for (name, bytes) in &messages {
        write(&dir, "wire_message", name, bytes)?;
        let target = match *name {
            "data" | "data-keyframe" | "data-end" => "data",
            "parity" | "parity-wide" => "parity",
            "manifest" | "manifest-no-parity" => "manifest",
            "descriptor" | "descriptor-ts" => "descriptor",
            "hello" | "hello-padded" | "challenge" | "subscribe" | "subscribe-resume"
            | "accept" | "reject" => "handshake",
            _ => "control",
        };
        write(&dir, target, name, bytes)?;
    }

    for (name, flags, payload, len) in [
        ("empty", 0, &b""[..], symbol_len(0)),
        ("short", 1, &b"abc"[..], symbol_len(3)),
        ("padded", 3, &b"chunk"[..], 40),
    ] {
        let mut symbol = vec![0; len];
        write_symbol(flags, 0x0102_0304_0506_0708, payload, &mut symbol)?;
        write(&dir, "fec_symbol", name, &symbol)?;
    }

    write(
        &dir,
        "ts_chunker",
        "ts-keyframes",
        &[0x03, 7]
            .iter()
            .copied()
            .chain(ts_stream())
            .collect::<Vec<_>>(),
    )?;
    write(
        &dir,
        "ts_chunker",
        "ts-flushed",
        &[0x13, 42]
            .iter()
            .copied()
            .chain(ts_stream())
            .collect::<Vec<_>>(),
    )?;
    let mut garbled = ts_stream();
    garbled.insert(TS_PACKET_LEN + 5, 0x47);
    write(
        &dir,
        "ts_chunker",
        "ts-garbled",
        &[0x01, 3].iter().copied().chain(garbled).collect::<Vec<_>>(),
    )?;
    write(
        &dir,
        "ts_chunker",
        "opaque",
        b"\x06\x09the quick brown fox jumps over the lazy dog",
    )?;

    // An offset, then packets with a PCR and PES headers.
    let four_seconds = 360_000u64.to_le_bytes();
    let timed = timed_packets();
    write(
        &dir,
        "ts_retime",
        "four-seconds",
        &[&four_seconds[..], &timed].concat(),
    )?;
    let near_wrap = ((1u64 << 33) - 1_000).to_le_bytes();
    write(
        &dir,
        "ts_retime",
        "near-wrap",
        &[&near_wrap[..], &timed].concat(),
    )?;

    let text = stream.to_string();
    write(&dir, "stream_id", "lower", text.as_bytes())?;
    write(
        &dir,
        "stream_id",
        "upper",
        text.to_ascii_uppercase().as_bytes(),
    )?;
    write(
        &dir,
        "stream_id",
        "spaced",
        format!("  {text}\n").as_bytes(),
    )?;
    write(
        &dir,
        "stream_id",
        "zero",
        StreamId([0; 32]).to_string().as_bytes(),
    )?;

    let signed = shoal_proto::token::Token {
        stream,
        scope: shoal_proto::token::Scope::ALL,
        expires: 1 << 41,
        id: 7,
    }
    .sign(&key);
    write(&dir, "token", "bytes", &[&[0][..], &signed[..]].concat())?;
    let text = shoal_proto::token::to_text(&signed);
    write(&dir, "token", "text", &[&[1][..], text.as_bytes()].concat())?;
    write(&dir, "token", "expired", &[&[2][..], &signed[..]].concat())?;

    let published = publish(&key)?;
    let all: Vec<(u8, &[u8])> = published.iter().map(|d| (0, &d[..])).collect();
    write(&dir, "window_ingest", "in-order", &records(&all))?;
    // Lose the first chunk and the first manifest copy: the chunks wait,
    // the manifest comes, parity rebuilds the lost chunk.
    let lossy: Vec<(u8, &[u8])> = published
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 1 && i != 2)
        .map(|(_, d)| (0, &d[..]))
        .collect();
    write(&dir, "window_ingest", "rebuild", &records(&lossy))?;
    // Everything after the descriptor in reverse, with time passing.
    let mut reversed: Vec<(u8, &[u8])> = published.iter().map(|d| (0x0A, &d[..])).collect();
    reversed[1..].reverse();
    write(&dir, "window_ingest", "reversed", &records(&reversed))?;
    // No manifest at all: everything times out.
    let orphans: Vec<(u8, &[u8])> = published
        .iter()
        .filter(|d| d.get(1) != Some(&0x03))
        .map(|d| (0xFE, &d[..]))
        .collect();
    write(&dir, "window_ingest", "no-manifest", &records(&orphans))?;
    // The input as publisher: a chunk altered in flight, its manifest
    // re-hashed and re-signed (control bit 0) to match.
    let mut altered = published.clone();
    altered[2][DATA_HEADER_LEN] ^= 0xFF;
    let forged: Vec<(u8, &[u8])> = altered
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 1)
        .map(|(i, d)| {
            (
                u8::from(d.get(1) == Some(&0x03)) | u8::from(i == 3) << 1,
                &d[..],
            )
        })
        .collect();
    write(&dir, "window_ingest", "forged", &records(&forged))?;

    state_machines(&dir, &key, stream)?;
    Ok(())
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> Result {
    assert!(
        bytes.len() < 2048,
        "{target}/{name} is {} bytes",
        bytes.len()
    );
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn encode(msg: &Message<'_>) -> Result<Vec<u8>> {
    let mut buf = vec![0; MAX_DATAGRAM_LEN];
    let len = msg.emit(&mut buf)?;
    buf.truncate(len);
    Ok(buf)
}

/// One or two of each message type, named.
fn messages(key: &PublisherKey, stream: StreamId) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let cookie = Cookie {
        issued_at_us: 1_700_000_000_000_000,
        tag: [0x5C; 16],
    };
    let data = Data {
        flags: DataFlags::new(false, false),
        club: 1,
        stream,
        seq: 17,
        block: 4,
        timestamp_us: 1_700_000_000_000_000,
        index: 1,
        payload: b"0123456789",
    };
    let symbol: Vec<u8> = (0..24).collect();
    let parity = Parity {
        k: 4,
        m: 2,
        stream,
        block: 4,
        first_seq: 16,
        index: 1,
        symbol: &symbol,
    };
    let hashes: Vec<u8> = (0..6 * 16).map(|i| i as u8).collect();
    let manifest = Manifest {
        k: 4,
        m: 2,
        symbol_len: 24,
        stream,
        block: 4,
        first_seq: 16,
        epoch: 0,
        timestamp_us: 1_700_000_000_000_000,
        hashes: &hashes,
        signature: [0; SIGNATURE_LEN],
    };
    let descriptor = Descriptor {
        codec: Codec::Opaque,
        clubs: 2,
        k: 4,
        m: 2,
        chunk_size: 32,
        stream,
        bitrate_bps: 64_000,
        revision: 1,
        block_ms: 50,
        issued_at_us: 1_700_000_000_000_000,
        epoch: 0,
        signature: [0; SIGNATURE_LEN],
    };
    let subscribe = Subscribe {
        stream,
        clubs: u64::MAX,
        start_seq: None,
        cookie,
        token: b"token",
    };
    let mut nack = Nack::new(stream, SESSION);
    nack.push(NackEntry {
        kind: NackKind::Chunks,
        start: 16,
        len: 2,
    });
    nack.push(NackEntry {
        kind: NackKind::Manifests,
        start: 4,
        len: 1,
    });
    let mut peers = Peers::new(stream, SESSION, 1);
    peers.push(SocketAddr::from(([192, 0, 2, 1], 4433)));
    peers.push("[2001:db8::1]:4433".parse()?);

    let signed = |msg: Message<'_>| -> Result<Vec<u8>> {
        let mut bytes = encode(&msg)?;
        key.sign_trailer(&mut bytes);
        Ok(bytes)
    };
    Ok(vec![
        ("data", encode(&Message::Data(data))?),
        (
            "data-keyframe",
            encode(&Message::Data(Data {
                flags: DataFlags::new(true, false),
                index: 0,
                seq: 16,
                ..data
            }))?,
        ),
        (
            "data-end",
            encode(&Message::Data(Data {
                flags: DataFlags::new(false, true),
                payload: b"",
                ..data
            }))?,
        ),
        ("parity", encode(&Message::Parity(parity))?),
        (
            "parity-wide",
            encode(&Message::Parity(Parity {
                k: 64,
                m: 16,
                index: 15,
                ..parity
            }))?,
        ),
        ("manifest", signed(Message::Manifest(manifest))?),
        (
            "manifest-no-parity",
            signed(Message::Manifest(Manifest {
                m: 0,
                symbol_len: 0,
                hashes: &hashes[..4 * 16],
                ..manifest
            }))?,
        ),
        ("descriptor", signed(Message::Descriptor(descriptor))?),
        (
            "descriptor-ts",
            signed(Message::Descriptor(Descriptor {
                codec: Codec::MpegTs,
                chunk_size: 1316,
                revision: 2,
                ..descriptor
            }))?,
        ),
        (
            "hello",
            encode(&Message::Hello(Hello {
                versions: SUPPORTED_VERSIONS,
                nonce: 0x0123_4567_89AB_CDEF,
                padded_len: 64,
            }))?,
        ),
        (
            "hello-padded",
            encode(&Message::Hello(Hello {
                versions: SUPPORTED_VERSIONS,
                nonce: 7,
                padded_len: 1200,
            }))?,
        ),
        (
            "challenge",
            encode(&Message::Challenge(Challenge {
                nonce: 0x0123_4567_89AB_CDEF,
                cookie,
            }))?,
        ),
        ("subscribe", encode(&Message::Subscribe(subscribe))?),
        (
            "subscribe-resume",
            encode(&Message::Subscribe(Subscribe {
                clubs: 0b101,
                start_seq: Some(1000),
                token: b"",
                ..subscribe
            }))?,
        ),
        (
            "accept",
            encode(&Message::Accept(Accept {
                keepalive_ms: 1000,
                stream,
                session: SESSION,
                start_seq: 16,
                observed: std::net::SocketAddr::from(([192, 0, 2, 1], 4000)),
            }))?,
        ),
        (
            "reject",
            encode(&Message::Reject(Reject {
                reason: RejectReason::BadCookie,
                versions: SUPPORTED_VERSIONS,
                stream,
            }))?,
        ),
        (
            "keepalive",
            encode(&Message::Keepalive(Keepalive {
                stream,
                session: SESSION,
                highest_seq: 99,
                lost: 1,
                fec_repaired: 2,
                nack_repaired: 3,
                latency_us: 40_000,
            }))?,
        ),
        ("nack", encode(&Message::Nack(nack))?),
        (
            "leave",
            encode(&Message::Leave(Leave {
                reason: LeaveReason::EndOfStream,
                stream,
                session: SESSION,
            }))?,
        ),
        ("peers", encode(&Message::Peers(peers))?),
        (
            "peers-request",
            encode(&Message::Peers(Peers::new(stream, SESSION, 0)))?,
        ),
        (
            "have",
            encode(&Message::Have(Have {
                stream,
                session: SESSION,
                base: 16,
                mask: 0b1011,
            }))?,
        ),
        (
            "member",
            encode(&Message::Member(Member {
                stream,
                session: SESSION,
                clubs: 0b101,
                upload_kbps: 4000,
            }))?,
        ),
        (
            "member-viewer",
            encode(&Message::Member(Member {
                stream,
                session: SESSION,
                clubs: 0,
                upload_kbps: 0,
            }))?,
        ),
        (
            "introduce",
            encode(&Message::Introduce(Introduce {
                stream,
                session: SESSION,
                addr: SocketAddr::from(([192, 0, 2, 7], 5000)),
            }))?,
        ),
        (
            "introduce-v6",
            encode(&Message::Introduce(Introduce {
                stream,
                session: SESSION,
                addr: "[2001:db8::1]:6000".parse()?,
            }))?,
        ),
        (
            "punch",
            encode(&Message::Punch(Punch {
                stream,
                seen_as: std::net::SocketAddr::from(([192, 0, 2, 1], 4000)),
            }))?,
        ),
        ("query", encode(&Message::Query(Query { nonce: 11 }))?),
        (
            "about",
            encode(&Message::About(About {
                nonce: 11,
                http_port: 8080,
                page: b"http://192.0.2.1:8080/",
            }))?,
        ),
    ])
}

/// A short MPEG-TS stream: PAT, PMT (one video PID), then video packets
/// with a random access point every third packet, and one audio packet.
fn ts_stream() -> Vec<u8> {
    const PMT: u16 = 0x1000;
    const VIDEO: u16 = 0x100;
    const AUDIO: u16 = 0x101;
    let mut out = Vec::new();
    out.extend(pat_packet(0, 1, &[(1, PMT)]).expect("a short PAT"));
    let streams = [(STREAM_TYPE_H264, VIDEO), (STREAM_TYPE_AAC, AUDIO)];
    out.extend(pmt_packet(PMT, 0, 1, VIDEO, &streams).expect("a short PMT"));
    for i in 0..6u8 {
        out.extend(packet(VIDEO, i, i % 3 == 0));
    }
    out.extend(packet(AUDIO, 0, true));
    out
}

/// A video packet with a PCR and a PES header with PTS and DTS, an audio
/// one with a PTS, and a PAT (no clocks).
fn timed_packets() -> Vec<u8> {
    let mut video = packet(0x100, 0, false);
    video[3] |= 0x20;
    video[4..6].copy_from_slice(&[7, 0x50]);
    video[6..12].copy_from_slice(&pcr_field(65_880, 123));
    video[12..31].copy_from_slice(&[
        0, 0, 1, 0xE0, 0, 0, 0x80, 0xC0, 10, 0x31, 0, 0x07, 0xDE, 0xE1, 0x11, 0, 0x07, 0xD8, 0x61,
    ]);
    let mut audio = packet(0x101, 0, false);
    audio[4..18].copy_from_slice(&[
        0, 0, 1, 0xC0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 0x07, 0xD8, 0x61,
    ]);
    let mut out = Vec::new();
    out.extend(video);
    out.extend(audio);
    out.extend(pat_packet(0, 1, &[(1, 0x1000)]).expect("a short PAT"));
    out
}

fn packet(pid: u16, cc: u8, random_access: bool) -> [u8; TS_PACKET_LEN] {
    let header = Header {
        payload_unit_start: true,
        pid,
        adaptation_field: random_access,
        continuity_counter: cc,
    };
    let mut bytes = [0x11; TS_PACKET_LEN];
    bytes[..Header::LEN].copy_from_slice(&header.to_bytes());
    if random_access {
        // The adaptation field: one flags byte, random access.
        bytes[4..6].copy_from_slice(&[1, 0x40]);
    }
    bytes
}

/// A tiny published stream: its descriptor, then one block of four
/// 32-byte chunks with two parity symbols, its manifest sent first and
/// last as the publisher does.
fn publish(key: &PublisherKey) -> Result<Vec<Vec<u8>>> {
    let config = PublisherConfig {
        codec: Codec::Opaque,
        chunk_size: 32,
        clubs: 1,
        k: 4,
        m: 2,
        ..PublisherConfig::default()
    };
    publish_with(key, config, 128)
}

/// What a publisher with `config` sends for `len` bytes of input.
fn publish_with(key: &PublisherKey, config: PublisherConfig, len: u8) -> Result<Vec<Vec<u8>>> {
    let relay = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut publisher =
        Publisher::new(PublisherKey::from_seed(key.seed()), config, vec![relay], T0)?;
    let input: Vec<u8> = (0..len).collect();
    publisher.handle_input(T0 + Duration::from_millis(1), &input);
    let mut out = Vec::new();
    while let Some(t) = publisher.poll_transmit() {
        out.push(t.payload.to_vec());
    }
    assert_eq!(out.first().map(Vec::len), Some(DESCRIPTOR_LEN));
    Ok(out)
}

/// The window_ingest input format: `[control][len u16 BE][datagram]`.
fn records(datagrams: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(control, d) in datagrams {
        out.push(control);
        out.extend_from_slice(&(d.len() as u16).to_be_bytes());
        out.extend_from_slice(d);
    }
    out
}

/// Seeds for the state-machine targets: a handshake, a short stream, and
/// the usual ways a session goes wrong. Addresses are indices into each
/// target's table (see its docs).
fn state_machines(dir: &Path, key: &PublisherKey, stream: StreamId) -> Result {
    let small = |clubs| PublisherConfig {
        codec: Codec::Opaque,
        chunk_size: 16,
        clubs,
        k: 4,
        m: 2,
        ..PublisherConfig::default()
    };
    let one_club = publish_with(key, small(1), 64)?;
    let two_clubs = publish_with(key, small(2), 64)?;
    let cookie = Cookie {
        issued_at_us: T0.as_micros(),
        tag: [0; 16],
    };
    let hello = encode(&Message::Hello(Hello {
        versions: SUPPORTED_VERSIONS,
        nonce: 1,
        padded_len: 64,
    }))?;
    let challenge = encode(&Message::Challenge(Challenge { nonce: 0, cookie }))?;
    let subscribe = |clubs, start_seq| {
        encode(&Message::Subscribe(Subscribe {
            stream,
            clubs,
            start_seq,
            cookie,
            token: b"",
        }))
    };
    let accept = encode(&Message::Accept(Accept {
        keepalive_ms: 1000,
        stream,
        session: SESSION,
        start_seq: 0,
        observed: std::net::SocketAddr::from(([192, 0, 2, 1], 4000)),
    }))?;
    let reject = |reason| {
        encode(&Message::Reject(Reject {
            reason,
            versions: SUPPORTED_VERSIONS,
            stream,
        }))
    };
    let leave = |reason| {
        encode(&Message::Leave(Leave {
            reason,
            stream,
            session: SESSION,
        }))
    };
    let keepalive = encode(&Message::Keepalive(Keepalive {
        stream,
        session: SESSION,
        highest_seq: 3,
        lost: 0,
        fec_repaired: 0,
        nack_repaired: 0,
        latency_us: 1000,
    }))?;
    let mut nack = Nack::new(stream, SESSION);
    nack.push(NackEntry {
        kind: NackKind::Chunks,
        start: 0,
        len: 4,
    });
    nack.push(NackEntry {
        kind: NackKind::Manifests,
        start: 0,
        len: 1,
    });
    let nack = encode(&Message::Nack(nack))?;
    let peers_request = encode(&Message::Peers(Peers::new(stream, SESSION, 0)))?;
    let member = encode(&Message::Member(Member {
        stream,
        session: SESSION,
        clubs: 0b11,
        upload_kbps: 4000,
    }))?;
    let have = encode(&Message::Have(Have {
        stream,
        session: SESSION,
        base: 0,
        mask: 0b101,
    }))?;
    let mut old_hello = hello.clone();
    old_hello[0] = 9;

    // A step: control bits from `(source, fix, timers, advance)`.
    let c = |source, fix, timers, advance| control(source, fix, timers, advance);
    // The stream as published, from `source`, signatures fixed.
    let from = |source, published: &[Vec<u8>]| -> Vec<(u8, Vec<u8>)> {
        published
            .iter()
            .map(|d| (c(source, true, false, 1), d.clone()))
            .collect()
    };
    let owned = |steps: Vec<(u8, Vec<u8>)>| {
        let refs: Vec<(u8, &[u8])> = steps.iter().map(|(c, d)| (*c, &d[..])).collect();
        records(&refs)
    };

    // relay: source 0 publishes, 1 to 7 subscribe.
    let mut steps = vec![
        (c(1, false, false, 0), hello.clone()),
        (c(1, true, false, 1), subscribe(u64::MAX, None)?),
    ];
    steps.extend(from(0, &one_club));
    steps.extend([
        (c(1, true, true, 2), nack.clone()),
        (c(1, true, true, 5), keepalive.clone()),
        (c(1, true, true, 6), leave(LeaveReason::Done)?),
    ]);
    write(dir, "relay", "publish-subscribe", &owned(steps))?;
    let mut steps = vec![(c(0, false, false, 0), one_club[0].clone())];
    for s in [1, 2] {
        steps.push((c(s, false, false, 1), hello.clone()));
        steps.push((c(s, true, false, 1), subscribe(1, Some(0))?));
        steps.push((c(s, true, false, 1), member.clone()));
    }
    steps.extend(from(0, &one_club[1..]));
    steps.extend([
        (c(1, true, false, 1), peers_request.clone()),
        (
            c(1, true, false, 1),
            encode(&Message::Introduce(Introduce {
                stream,
                session: SESSION,
                addr: "198.51.100.1:1001".parse()?,
            }))?,
        ),
        (c(2, true, false, 1), have.clone()),
        (c(2, true, true, 7), keepalive.clone()),
    ]);
    write(dir, "relay", "two-subscribers", &owned(steps))?;
    let steps = vec![
        (c(3, false, false, 0), hello.clone()),
        (c(3, false, false, 0), subscribe(u64::MAX, None)?),
        (c(4, true, false, 1), keepalive.clone()),
        (c(5, true, false, 1), nack.clone()),
        (c(6, false, false, 1), old_hello.clone()),
        (c(7, true, true, 3), peers_request.clone()),
        (c(0, false, false, 1), one_club[1].clone()),
        (c(4, false, true, 7), hello.clone()),
        (c(4, true, true, 7), subscribe(u64::MAX, None)?),
    ];
    write(dir, "relay", "strangers", &owned(steps))?;

    // viewer: config byte, then records; sources 0 to 3 are the relay.
    let handshake = |source| {
        vec![
            (c(source, true, false, 2), challenge.clone()),
            (c(source, false, false, 2), accept.clone()),
        ]
    };
    let mut steps = handshake(0);
    steps.extend(from(0, &one_club));
    steps.extend([
        (c(0, true, true, 5), keepalive.clone()),
        (c(0, true, true, 2), leave(LeaveReason::EndOfStream)?),
    ]);
    write_with(dir, "viewer", "watch", &[0], &owned(steps))?;
    let mut steps = handshake(1);
    // Chunks 0 to 2 and the first manifest lost, more than FEC rebuilds:
    // NACKs, then gaps.
    steps.extend(
        from(4, &one_club)
            .into_iter()
            .enumerate()
            .filter(|&(i, _)| !matches!(i, 1..=4))
            .map(|(_, s)| s),
    );
    for advance in [2, 3, 3, 4, 5] {
        steps.push((c(0, true, true, advance), keepalive.clone()));
    }
    write_with(dir, "viewer", "lossy", &[0b110], &owned(steps))?;
    let mut steps = Vec::new();
    for reason in [
        RejectReason::BadCookie,
        RejectReason::Full,
        RejectReason::UnknownStream,
    ] {
        steps.extend(handshake(2));
        steps.push((c(2, false, true, 4), reject(reason)?));
    }
    steps.push((c(3, true, true, 6), leave(LeaveReason::ShuttingDown)?));
    steps.push((c(5, false, true, 7), challenge.clone()));
    write_with(dir, "viewer", "refused", &[1], &owned(steps))?;

    // client_session: sources 0 to 2 are the first upstream, 3 to 5 the
    // second.
    let mut steps = handshake(0);
    steps.extend(
        from(1, &one_club)
            .into_iter()
            .enumerate()
            .filter(|&(i, _)| i != 1 && i != 8)
            .map(|(_, s)| s),
    );
    for advance in [2, 3, 4, 5, 5] {
        steps.push((c(2, true, true, advance), nack.clone()));
    }
    steps.push((c(0, true, true, 6), leave(LeaveReason::ShuttingDown)?));
    write(dir, "client_session", "subscribe", &owned(steps))?;
    let mut steps = vec![
        (c(6, false, true, 5), hello.clone()),
        (c(0, false, true, 5), reject(RejectReason::Full)?),
        (c(7, false, true, 6), accept.clone()),
    ];
    steps.extend(handshake(3));
    steps.extend([
        (c(3, true, true, 6), keepalive.clone()),
        (c(4, false, true, 5), reject(RejectReason::NotSubscribed)?),
        (c(4, true, true, 2), challenge.clone()),
        (c(5, false, true, 2), reject(RejectReason::TokenInvalid)?),
        (c(5, true, true, 7), leave(LeaveReason::EndOfStream)?),
    ]);
    write(dir, "client_session", "failover", &owned(steps))?;

    // peer: upload byte, then records; 0 and 1 are the relay, 2 to 5 peers.
    let candidates = |club| -> Result<Vec<u8>> {
        let mut peers = Peers::new(stream, SESSION, club);
        for a in [
            "198.51.100.31:4000",
            "198.51.100.32:4000",
            "[2001:db8::33]:4000",
        ] {
            peers.push(a.parse()?);
        }
        encode(&Message::Peers(peers))
    };
    let mut steps = handshake(0);
    steps.push((c(0, false, false, 1), two_clubs[0].clone()));
    steps.extend([
        (c(1, true, true, 4), candidates(0)?),
        (c(1, true, true, 4), candidates(1)?),
        (c(2, true, false, 2), challenge.clone()),
        (c(2, false, false, 2), accept.clone()),
        (c(3, false, false, 1), hello.clone()),
        (c(3, true, false, 1), subscribe(0b1, None)?),
        (c(3, true, false, 1), have.clone()),
    ]);
    steps.extend(from(2, &two_clubs[1..]));
    steps.extend([
        (c(3, true, true, 3), nack.clone()),
        (
            c(0, true, true, 4),
            encode(&Message::Introduce(Introduce {
                stream,
                session: SESSION,
                addr: "198.51.100.31:4001".parse()?,
            }))?,
        ),
        (c(2, true, true, 5), leave(LeaveReason::Expired)?),
        (c(4, true, true, 6), keepalive.clone()),
    ]);
    write_with(dir, "peer", "neighbours", &[80], &owned(steps))?;
    let mut steps = handshake(1);
    steps.extend(from(0, &two_clubs));
    steps.extend([
        (c(6, false, false, 1), two_clubs[2].clone()),
        (c(7, false, true, 4), hello.clone()),
        (c(0, true, true, 5), leave(LeaveReason::EndOfStream)?),
    ]);
    write_with(dir, "peer", "viewer-only", &[0], &owned(steps))?;

    // publisher: two config bytes, then records; source 0 to 3 is input,
    // 4 to 6 a datagram, 7 the end.
    let input: Vec<u8> = (0..100).collect();
    let steps = vec![
        (c(0, false, false, 1), input.clone()),
        (c(4, true, false, 1), nack.clone()),
        (c(1, false, true, 3), input[..10].to_vec()),
        (c(6, false, true, 4), hello.clone()),
        (c(2, false, true, 5), input.clone()),
        (c(7, false, false, 1), Vec::new()),
    ];
    // Opaque, 32-byte chunks, 2 clubs; k = 4, m = 1.
    write_with(
        dir,
        "publisher",
        "opaque",
        &[0b0001_0100, 0x43],
        &owned(steps),
    )?;
    let steps = vec![
        (
            c(0, false, false, 1),
            ts_stream()[..5 * TS_PACKET_LEN].to_vec(),
        ),
        (c(5, true, true, 3), keepalive.clone()),
        (
            c(3, false, true, 4),
            ts_stream()[5 * TS_PACKET_LEN..].to_vec(),
        ),
        (c(0, false, true, 5), Vec::new()),
    ];
    // MPEG-TS, 376-byte chunks, 1 club; k = 2, m = 4.
    write_with(dir, "publisher", "ts", &[0b0000_0011, 0x81], &owned(steps))?;
    Ok(())
}

/// Writes `head` then `records` as one seed.
fn write_with(dir: &Path, target: &str, name: &str, head: &[u8], records: &[u8]) -> Result {
    write(dir, target, name, &[head, records].concat())
}
