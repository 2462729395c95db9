//! SPEC Appendix A.2 to A.4, pinned: the DESCRIPTOR, the block's parity
//! symbols and its MANIFEST, DATA and PARITY datagrams, and the full-size
//! parity the reference code makes must be the bytes the SPEC prints.

use super::*;
use crate::fec::{Encoder, symbol_len, write_symbol};
use crate::integrity::{PublisherKey, chunk_hash, parity_hash};

const SPEC: &str = include_str!("../../SPEC.md");
/// A.1's key, A.2's signing time and the run's epoch.
const SEED: [u8; 32] = [7; 32];
const T: u64 = 1_767_225_600_000_000;

/// `bytes` as the SPEC prints them: hex, 32 bytes a line.
fn spec_hex(bytes: &[u8]) -> String {
    bytes
        .chunks(32)
        .map(|line| line.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_in_spec(what: &str, bytes: &[u8]) {
    let hex = spec_hex(bytes);
    assert!(SPEC.contains(&hex), "{what} is not in SPEC.md:\n{hex}");
}

/// A line of a SPEC table, which must be in the SPEC as it is.
fn assert_line_in_spec(line: &str) {
    assert!(SPEC.contains(line), "not in SPEC.md:\n{line}");
}

#[test]
fn appendix_a2_descriptor() {
    let key = PublisherKey::from_seed(SEED);
    let d = Descriptor {
        codec: Codec::MpegTs,
        clubs: 8,
        k: 2,
        m: 2,
        chunk_size: 1316,
        stream: key.stream_id(),
        bitrate_bps: 3_000_000,
        revision: 1,
        block_ms: 50,
        issued_at_us: T,
        epoch: T,
        signature: [0; SIGNATURE_LEN],
    };
    let mut buf = [0u8; DESCRIPTOR_LEN];
    d.emit(&mut buf).expect("emit");
    key.sign_trailer(&mut buf);
    assert_in_spec("A.2 DESCRIPTOR", &buf);
}

#[test]
fn appendix_a3_block() {
    let key = PublisherKey::from_seed(SEED);
    let stream = key.stream_id();
    let chunks: [(u8, u64, &[u8]); 2] =
        [(0x01, T + 100_000, b"hello"), (0x02, T + 120_000, b"abc")];
    let len = symbol_len(5);
    let mut symbols = Vec::new();
    let mut hashes = Vec::new();
    for (flags, ts, payload) in chunks {
        let mut sym = vec![0u8; len];
        write_symbol(flags, ts, payload, &mut sym).expect("symbol");
        symbols.push(sym);
        hashes.extend_from_slice(&chunk_hash(flags, ts, payload));
    }
    let mut parity = Vec::new();
    Encoder::new()
        .encode(&symbols, 2, |_, p| parity.push(p.to_vec()))
        .expect("encode");
    for (j, p) in parity.iter().enumerate() {
        hashes.extend_from_slice(&parity_hash(p));
        assert_line_in_spec(&format!("parity symbol {j}  {}", spec_hex(p)));
        assert_line_in_spec(&format!("parity hash {j}    {}", spec_hex(&parity_hash(p))));
    }
    let man = Manifest {
        k: 2,
        m: 2,
        symbol_len: len as u16,
        stream,
        block: T,
        first_seq: T,
        epoch: T,
        timestamp_us: T + 130_000,
        hashes: &hashes,
        signature: [0; SIGNATURE_LEN],
    };
    let mut buf = vec![0u8; man.buffer_len()];
    man.emit(&mut buf).expect("emit");
    key.sign_trailer(&mut buf);
    assert_eq!(buf.len(), 200);
    assert_in_spec("A.3 MANIFEST", &buf);

    let (flags, ts, payload) = chunks[0];
    let data = Data {
        flags: DataFlags::from_bits(flags).expect("flags"),
        club: (T % 8) as u8,
        stream,
        seq: T,
        block: T,
        timestamp_us: ts,
        index: 0,
        payload,
    };
    let mut out = vec![0u8; data.buffer_len()];
    data.emit(&mut out).expect("emit");
    assert_in_spec("A.3 DATA", &out);

    let p = Parity {
        k: 2,
        m: 2,
        stream,
        block: T,
        first_seq: T,
        index: 0,
        symbol: &parity[0],
    };
    let mut out = vec![0u8; p.buffer_len()];
    p.emit(&mut out).expect("emit");
    assert_in_spec("A.3 PARITY", &out);
}

/// A.4: full-size symbols, a short last chunk and three parity symbols.
#[test]
fn appendix_a4_full_size_parity() {
    let lens = [1316, 1316, 1000, 188];
    let len = symbol_len(1316);
    let mut symbols = Vec::new();
    for (j, payload_len) in lens.into_iter().enumerate() {
        let payload: Vec<u8> = (0..payload_len)
            .map(|i| ((i + 31 * j) % 251) as u8)
            .collect();
        let mut sym = vec![0u8; len];
        write_symbol(0, 1000 * j as u64, &payload, &mut sym).expect("symbol");
        symbols.push(sym);
    }
    let mut parity = Vec::new();
    Encoder::new()
        .encode(&symbols, 3, |_, p| parity.push(p.to_vec()))
        .expect("encode");
    for (j, p) in parity.iter().enumerate() {
        assert_line_in_spec(&format!(
            "parity {j}          hash {}  first 16 bytes {}",
            spec_hex(&parity_hash(p)),
            spec_hex(&p[..16])
        ));
    }
}

/// A.5: the session datagrams, with the session id of A.5 and A.6.
#[test]
fn appendix_a5_session() {
    use crate::cookie::CookieJar;
    use std::net::SocketAddr;

    const SESSION: u64 = 0x0123_4567_89ab_cdef;
    let stream = PublisherKey::from_seed(SEED).stream_id();
    let emit = |what: &str, msg: Message<'_>| {
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf).expect("emit");
        assert_in_spec(what, &buf);
    };
    emit(
        "A.5 HELLO",
        Message::Hello(Hello {
            versions: SUPPORTED_VERSIONS,
            nonce: 0x0102_0304_0506_0708,
            padded_len: HELLO_MIN_LEN as u16,
        }),
    );
    let client: SocketAddr = "192.0.2.1:4000".parse().expect("addr");
    let cookie = CookieJar::new([3; 32]).issue(crate::Time::from_micros(T), client);
    emit(
        "A.5 CHALLENGE",
        Message::Challenge(Challenge {
            nonce: 0x0102_0304_0506_0708,
            cookie,
        }),
    );
    emit(
        "A.5 SUBSCRIBE",
        Message::Subscribe(Subscribe {
            stream,
            clubs: u64::MAX,
            start_seq: None,
            cookie,
            token: &[],
        }),
    );
    emit(
        "A.5 ACCEPT",
        Message::Accept(Accept {
            keepalive_ms: 1000,
            stream,
            session: SESSION,
            start_seq: 0,
            observed: client,
        }),
    );
    emit(
        "A.5 REJECT",
        Message::Reject(Reject {
            reason: RejectReason::UnsupportedVersion,
            versions: SUPPORTED_VERSIONS,
            stream: crate::StreamId([0; 32]),
        }),
    );
    emit(
        "A.5 KEEPALIVE",
        Message::Keepalive(Keepalive {
            stream,
            session: SESSION,
            highest_seq: 7,
            lost: 1,
            fec_repaired: 2,
            nack_repaired: 3,
            latency_us: 40_000,
        }),
    );
    let mut nack = Nack::new(stream, SESSION);
    for (kind, start, len) in [(NackKind::Chunks, 5, 3), (NackKind::Manifests, 1, 1)] {
        nack.push(NackEntry { kind, start, len });
    }
    emit("A.5 NACK", Message::Nack(nack));
    emit(
        "A.5 LEAVE",
        Message::Leave(Leave {
            reason: LeaveReason::EndOfStream,
            stream,
            session: SESSION,
        }),
    );
    let mut peers = Peers::new(stream, SESSION, 3);
    peers.push("192.0.2.7:5000".parse().expect("addr"));
    peers.push("[2001:db8::1]:6000".parse().expect("addr"));
    emit("A.5 PEERS", Message::Peers(peers));
}
