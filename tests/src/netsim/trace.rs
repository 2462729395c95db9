//! A running hash over everything that happens to datagrams, so that two
//! runs can be compared by one value.
//!
//! Each record is a tag byte and fixed-width fields, so no two different
//! event sequences feed the hasher the same bytes.
//!
//! A delivered datagram's bytes enter as a 64-bit [`digest`] rather than
//! whole: BLAKE3 over every delivered byte cost more than the protocol's own
//! chunk hashing. The digest still reads every byte, so the trace still
//! tells apart two runs that moved different bytes (up to a 2^-64 chance,
//! and never for a change confined to one aligned 8-byte word).
//!
//! Records are gathered in a buffer and hashed 16 KiB at a time: BLAKE3 fed
//! a few bytes per call spends its time in per-call overhead and hashes
//! one 64-byte block at a time, where a long input goes through its SIMD
//! lanes. The hashed bytes, and so the hash, are the same.

use std::fmt;
use std::net::SocketAddr;

use shoal_proto::Time;

use super::link::DropCause;

const DELIVERED: u8 = 1;
const UNDELIVERABLE: u8 = 2;
const DROPPED: u8 = 3;
const NAT_FILTERED: u8 = 4;

pub(super) struct Trace {
    hasher: blake3::Hasher,
    /// Records not yet hashed.
    pending: Vec<u8>,
}

/// How many bytes of records are gathered before they are hashed.
const BATCH: usize = 16 << 10;

impl Trace {
    pub(super) fn new() -> Self {
        Self {
            hasher: blake3::Hasher::new(),
            pending: Vec::with_capacity(BATCH + 128),
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= BATCH {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
    }

    fn hasher(&self) -> blake3::Hasher {
        let mut hasher = self.hasher.clone();
        hasher.update(&self.pending);
        hasher
    }

    /// A datagram was handed to a node.
    pub(super) fn delivered(&mut self, at: Time, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        self.header(DELIVERED, at, from, to, bytes.len());
        self.put(&digest(bytes).to_le_bytes());
    }

    /// A datagram arrived where no node was bound.
    pub(super) fn undeliverable(&mut self, at: Time, from: SocketAddr, to: SocketAddr, len: usize) {
        self.header(UNDELIVERABLE, at, from, to, len);
    }

    /// A datagram arrived but the NAT in front of the node dropped it.
    pub(super) fn nat_filtered(&mut self, at: Time, from: SocketAddr, to: SocketAddr, len: usize) {
        self.header(NAT_FILTERED, at, from, to, len);
    }

    /// A link dropped a datagram.
    pub(super) fn dropped(
        &mut self,
        at: Time,
        from: SocketAddr,
        to: SocketAddr,
        len: usize,
        cause: DropCause,
    ) {
        self.header(DROPPED, at, from, to, len);
        self.put(&[cause.code()]);
    }

    pub(super) fn hash(&self) -> [u8; 32] {
        *self.hasher().finalize().as_bytes()
    }

    fn header(&mut self, tag: u8, at: Time, from: SocketAddr, to: SocketAddr, len: usize) {
        self.put(&[tag]);
        self.put(&at.as_micros().to_le_bytes());
        self.addr(from);
        self.addr(to);
        self.put(&(len as u64).to_le_bytes());
    }

    fn addr(&mut self, addr: SocketAddr) {
        match addr {
            SocketAddr::V4(a) => {
                self.put(&[4]);
                self.put(&a.ip().octets());
            }
            SocketAddr::V6(a) => {
                self.put(&[6]);
                self.put(&a.ip().octets());
                self.put(&a.flowinfo().to_le_bytes());
                self.put(&a.scope_id().to_le_bytes());
            }
        }
        self.put(&addr.port().to_le_bytes());
    }
}

/// Odd multipliers (from xxHash and the golden ratio), one per lane.
const LANE_PRIMES: [u64; 4] = [
    0x9e37_79b9_7f4a_7c15,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
    0x85eb_ca77_c2b2_ae63,
];

/// A fast, deterministic, non-cryptographic 64-bit digest of `bytes`.
///
/// Four independent lanes each take one 8-byte word of every 32 bytes: xor,
/// multiply by an odd constant, rotate. Each step is a bijection of the
/// lane's state for a given word, and of the word for a given state, so a
/// change in one word always changes its lane's final state. The lanes and
/// the length are then folded and mixed (the murmur3 finalizer).
fn digest(bytes: &[u8]) -> u64 {
    let mut lanes = LANE_PRIMES;
    let mut blocks = bytes.chunks_exact(32);
    let mut step = |block: &[u8]| {
        for (lane, (word, prime)) in lanes.iter_mut().zip(block.chunks_exact(8).zip(LANE_PRIMES)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            *lane = (*lane ^ u64::from_le_bytes(w))
                .wrapping_mul(prime)
                .rotate_left(31);
        }
    };
    for block in &mut blocks {
        step(block);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 32];
        last[..rest.len()].copy_from_slice(rest);
        step(&last);
    }
    let mut h = (bytes.len() as u64).wrapping_mul(LANE_PRIMES[0]);
    for lane in lanes {
        h = (h ^ lane).wrapping_mul(LANE_PRIMES[1]).rotate_left(27);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Trace({})", self.hasher().finalize().to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn hash_depends_on_every_field() {
        let t = Time::from_micros(5);
        let base = {
            let mut trace = Trace::new();
            trace.delivered(t, addr(1), addr(2), b"hi");
            trace.hash()
        };
        let variants = [
            (Time::from_micros(6), addr(1), addr(2), &b"hi"[..]),
            (t, addr(3), addr(2), b"hi"),
            (t, addr(1), addr(3), b"hi"),
            (t, addr(1), addr(2), b"ho"),
        ];
        for (at, from, to, bytes) in variants {
            let mut trace = Trace::new();
            trace.delivered(at, from, to, bytes);
            assert_ne!(trace.hash(), base);
        }
        let mut trace = Trace::new();
        trace.undeliverable(t, addr(1), addr(2), 2);
        let undeliverable = trace.hash();
        assert_ne!(undeliverable, base);
        let mut trace = Trace::new();
        trace.nat_filtered(t, addr(1), addr(2), 2);
        assert_ne!(trace.hash(), base);
        assert_ne!(trace.hash(), undeliverable);
    }

    #[test]
    fn drop_cause_is_hashed() {
        let t = Time::from_micros(5);
        let hash = |cause| {
            let mut trace = Trace::new();
            trace.dropped(t, addr(1), addr(2), 10, cause);
            trace.hash()
        };
        assert_ne!(hash(DropCause::Random), hash(DropCause::Burst));
    }

    #[test]
    fn digest_sees_every_byte_and_the_length() {
        let base: Vec<u8> = (0..1400u32).map(|i| (i * 7 + 3) as u8).collect();
        let d = digest(&base);
        for i in (0..base.len()).step_by(13).chain([base.len() - 1]) {
            for flip in [1u8, 0x80] {
                let mut v = base.clone();
                v[i] ^= flip;
                assert_ne!(digest(&v), d, "byte {i}");
            }
        }
        assert_ne!(digest(&base[..1399]), d);
        let mut padded = base.clone();
        padded.push(0);
        assert_ne!(digest(&padded), d);
        assert_ne!(digest(b""), digest(b"\0"));
        let mut swapped = base.clone();
        swapped.swap(0, 8);
        assert_ne!(digest(&swapped), d);
    }

    /// Records are hashed in batches: reading the hash mid-run, across
    /// batch boundaries, changes nothing, and every record still counts.
    #[test]
    fn batching_is_invisible() {
        let t = Time::from_micros(5);
        let run = |peek: bool, skip: Option<usize>| {
            let mut trace = Trace::new();
            for i in 0..2_000 {
                if Some(i) != skip {
                    trace.delivered(t, addr(1), addr(2), &[i as u8; 40]);
                }
                if peek && i % 97 == 0 {
                    let _ = trace.hash();
                }
            }
            trace.hash()
        };
        // About 40 bytes a record: 2,000 span several batches.
        let plain = run(false, None);
        assert_eq!(run(true, None), plain);
        assert_ne!(run(false, Some(3)), plain);
        assert_ne!(run(false, Some(1_999)), plain);
    }
}
