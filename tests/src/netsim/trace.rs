//! A hash over everything that happens to datagrams, so that two runs can
//! be compared by one value.
//!
//! Each record is a tag byte and fixed-width fields, so no two different
//! records are the same bytes. A delivered datagram's bytes enter as a
//! 64-bit [`digest`] rather than whole: BLAKE3 over every delivered byte
//! cost more than the protocol's own chunk hashing. The digest still reads
//! every byte, so the trace still tells apart two runs that moved different
//! bytes (up to a 2^-64 chance, and never for a change confined to one
//! aligned 8-byte word).
//!
//! # A hash of the set, not of the sequence
//!
//! The trace is the sum (mod 2^128) of a 128-bit digest of each record, and
//! the count of records: the hash of a multiset. A network split over
//! threads keeps one trace per shard and adds them up; the sum does not
//! depend on how the records were split or in which order each shard saw
//! them. Every record carries its instant, sender and receiver, so two runs
//! with the same sum moved the same datagrams at the same times; what it
//! cannot see is the order of two records of the same instant, which the
//! network fixes by itself (`shard::order`). The per-record digest is not
//! cryptographic: the runs compared are the simulator's own, not an
//! attacker's.

use std::fmt;
use std::net::SocketAddr;

use shoal_proto::Time;

use super::link::DropCause;

const DELIVERED: u8 = 1;
const UNDELIVERABLE: u8 = 2;
const DROPPED: u8 = 3;
const NAT_FILTERED: u8 = 4;

#[derive(Clone, Default)]
pub(super) struct Trace {
    /// The sum of every record's digest.
    sum: u128,
    records: u64,
    /// The record being written (kept for its capacity).
    record: Vec<u8>,
}

impl Trace {
    pub(super) fn new() -> Self {
        Self::default()
    }

    fn put(&mut self, bytes: &[u8]) {
        self.record.extend_from_slice(bytes);
    }

    /// Adds the record written since the last one.
    fn close(&mut self) {
        let low = digest_with(&self.record, LANE_PRIMES);
        let high = digest_with(&self.record, SECOND_LANES);
        self.sum = self
            .sum
            .wrapping_add(u128::from(high) << 64 | u128::from(low));
        self.records += 1;
        self.record.clear();
    }

    /// A datagram was handed to a node.
    pub(super) fn delivered(&mut self, at: Time, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        self.header(DELIVERED, at, from, to, bytes.len());
        self.put(&digest(bytes).to_le_bytes());
        self.close();
    }

    /// A datagram arrived where no node was bound.
    pub(super) fn undeliverable(&mut self, at: Time, from: SocketAddr, to: SocketAddr, len: usize) {
        self.header(UNDELIVERABLE, at, from, to, len);
        self.close();
    }

    /// A datagram arrived but the NAT in front of the node dropped it.
    pub(super) fn nat_filtered(&mut self, at: Time, from: SocketAddr, to: SocketAddr, len: usize) {
        self.header(NAT_FILTERED, at, from, to, len);
        self.close();
    }

    /// A link (or the receiver's access link) dropped a datagram.
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
        self.close();
    }

    /// Adds `other`'s records to these.
    pub(super) fn absorb(&mut self, other: &Trace) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.records += other.records;
    }

    pub(super) fn hash(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.sum.to_le_bytes());
        hasher.update(&self.records.to_le_bytes());
        *hasher.finalize().as_bytes()
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

/// The starting lanes of a record's second digest: other odd constants
/// (from SplitMix64 and murmur3), so the two halves are independent.
const SECOND_LANES: [u64; 4] = [
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
    0xff51_afd7_ed55_8ccd,
    0xc4ce_b9fe_1a85_ec53,
];

/// A fast, deterministic, non-cryptographic 64-bit digest of `bytes`.
///
/// Four independent lanes each take one 8-byte word of every 32 bytes: xor,
/// multiply by an odd constant, rotate. Each step is a bijection of the
/// lane's state for a given word, and of the word for a given state, so a
/// change in one word always changes its lane's final state. The lanes and
/// the length are then folded and mixed (the murmur3 finalizer).
fn digest(bytes: &[u8]) -> u64 {
    digest_with(bytes, LANE_PRIMES)
}

/// [`digest`] from other starting lanes.
fn digest_with(bytes: &[u8], start: [u64; 4]) -> u64 {
    let mut lanes = start;
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
        write!(f, "Trace({} records, {:032x})", self.records, self.sum)
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

    /// The hash is of the set of records: split over traces and in any
    /// order it is the same, and every record still counts, twice as
    /// much as once.
    #[test]
    fn order_and_split_are_invisible_but_every_record_counts() {
        let t = Time::from_micros(5);
        let run = |order: &[usize], split: usize| {
            let mut traces = [Trace::new(), Trace::new()];
            for (n, &i) in order.iter().enumerate() {
                traces[usize::from(n >= split)].delivered(t, addr(1), addr(2), &[i as u8; 40]);
            }
            let [mut a, b] = traces;
            a.absorb(&b);
            a.hash()
        };
        let forward: Vec<usize> = (0..200).collect();
        let backward: Vec<usize> = (0..200).rev().collect();
        let plain = run(&forward, 200);
        assert_eq!(run(&backward, 200), plain);
        assert_eq!(run(&forward, 77), plain);
        assert_ne!(run(&forward[1..], 200), plain);
        let mut twice = forward.clone();
        twice.push(3);
        assert_ne!(run(&twice, 200), plain);
    }
}
