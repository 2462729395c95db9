//! The DHT entry record: where to join a stream, found by its key alone
//! (SPEC §16).
//!
//! A publisher stores one BEP 44 mutable item on the BitTorrent Mainline
//! DHT, signed by its stream key under the salt [`RECORD_SALT`], listing
//! the relays to join through. The DHT only gives hints: an entry point is
//! just an address to try, and everything a viewer plays is still verified
//! by the stream key (MANIFEST, DESCRIPTOR). A record's signature only
//! stops strangers from steering viewers to their own addresses.
//!
//! This module is sans-IO: the codec of the item's value, the bytes BEP 44
//! signs, and [`RecordBook`], which judges each item a DHT lookup returns.
//! Looking items up and storing them is the relay crate's job.
//!
//! The value (all integers big-endian, as in the wire format):
//!
//! | size | field |
//! |---|---|
//! | 1 | version, [`RECORD_VERSION`] |
//! | 32 | [`descriptor_hash`] of the current DESCRIPTOR, zero if unknown |
//! | 8 | expires: Unix seconds, the first second the record is stale |
//! | 1 | count: 1..=[`MAX_ENTRY_POINTS`] |
//! | count × 7 or 19 | family (4 or 6), address (4 or 16), port (2) |

use std::net::{IpAddr, SocketAddr};

use ed25519_dalek::{Signature, VerifyingKey};

use crate::StreamId;
use crate::integrity::PublisherKey;
use crate::wire::{Descriptor, SIGNATURE_LEN};

/// BEP 44 salt of the entry record. Its target is SHA-1(stream key ||
/// salt), computed by the relay crate.
pub const RECORD_SALT: &[u8] = b"shoal/entry/1";

/// Relays announce themselves (BEP 5 `announce_peer`) under SHA-1(stream
/// key || this), the same formula as a BEP 44 target.
pub const ANNOUNCE_SALT: &[u8] = b"shoal/relays/1";

/// Most entry points in one record.
pub const MAX_ENTRY_POINTS: usize = 32;

/// The record format this module reads and writes.
pub const RECORD_VERSION: u8 = 1;

/// Longest value BEP 44 lets a node store.
pub const BEP44_MAX_VALUE_LEN: usize = 1000;

/// Longest encoded record: [`MAX_ENTRY_POINTS`] IPv6 entry points.
pub const MAX_RECORD_LEN: usize = HEADER_LEN + MAX_ENTRY_POINTS * ENTRY_V6_LEN;

const HEADER_LEN: usize = 1 + 32 + 8 + 1;
const ENTRY_V4_LEN: usize = 1 + 4 + 2;
const ENTRY_V6_LEN: usize = 1 + 16 + 2;
const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;
const DESCRIPTOR_HASH_CONTEXT: &str = "shoal v1 2026-11 descriptor hash";

const _: () = assert!(MAX_RECORD_LEN < BEP44_MAX_VALUE_LEN);
const _: () = assert!(MAX_ENTRY_POINTS <= u8::MAX as usize);

/// The content of the entry record.
///
/// BEP 44 limits a value to 1000 bytes; with [`MAX_ENTRY_POINTS`] IPv6
/// entries the encoding is [`MAX_RECORD_LEN`] (650) bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryRecord {
    /// [`descriptor_hash`] of the stream's current DESCRIPTOR, all zero if
    /// unknown.
    pub descriptor_hash: [u8; 32],
    /// Unix seconds from which the record is stale.
    pub expires: u64,
    /// Relays to join through, in the publisher's order of preference;
    /// IPv4 and IPv6. An IPv6 address's flow info and scope id are not
    /// carried (they decode as 0).
    pub entry_points: Vec<SocketAddr>,
}

/// Why a record could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RecordError {
    /// The version byte is not [`RECORD_VERSION`].
    #[error("unknown record version {0}")]
    Version(u8),
    /// The bytes end before the last field the record needs.
    #[error("the record is truncated")]
    Truncated,
    /// Bytes follow the last entry point.
    #[error("bytes follow the last entry point")]
    TrailingBytes,
    /// The record lists no entry point.
    #[error("the record lists no entry point")]
    NoEntryPoints,
    /// The record lists more than [`MAX_ENTRY_POINTS`].
    #[error("the record lists {0} entry points, more than 32")]
    TooMany(usize),
    /// An entry point's family byte is neither 4 nor 6.
    #[error("an entry point has the unknown address family {0}")]
    Family(u8),
    /// An entry point has port 0.
    #[error("an entry point has port 0")]
    PortZero,
    /// An entry point has the unspecified address (`0.0.0.0` or `::`).
    #[error("an entry point has the unspecified address")]
    Unspecified,
}

impl EntryRecord {
    /// The record's bytes, the value to store on the DHT. Refuses what
    /// [`decode`](Self::decode) would refuse: no entry point, more than
    /// [`MAX_ENTRY_POINTS`], port 0, an unspecified address.
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        let count = self.entry_points.len();
        if count == 0 {
            return Err(RecordError::NoEntryPoints);
        }
        let count_byte = u8::try_from(count)
            .ok()
            .filter(|_| count <= MAX_ENTRY_POINTS)
            .ok_or(RecordError::TooMany(count))?;
        let mut out = Vec::with_capacity(HEADER_LEN + count * ENTRY_V6_LEN);
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.descriptor_hash);
        out.extend_from_slice(&self.expires.to_be_bytes());
        out.push(count_byte);
        for addr in &self.entry_points {
            check_entry_point(addr)?;
            match addr.ip() {
                IpAddr::V4(ip) => {
                    out.push(FAMILY_V4);
                    out.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    out.push(FAMILY_V6);
                    out.extend_from_slice(&ip.octets());
                }
            }
            out.extend_from_slice(&addr.port().to_be_bytes());
        }
        Ok(out)
    }

    /// Reads a record. Never panics; every accepted input is canonical
    /// (it encodes back to the same bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut rest = bytes;
        let [version] = take(&mut rest)?;
        if version != RECORD_VERSION {
            return Err(RecordError::Version(version));
        }
        let descriptor_hash = take(&mut rest)?;
        let expires = u64::from_be_bytes(take(&mut rest)?);
        let [count] = take(&mut rest)?;
        let count = usize::from(count);
        if count == 0 {
            return Err(RecordError::NoEntryPoints);
        }
        if count > MAX_ENTRY_POINTS {
            return Err(RecordError::TooMany(count));
        }
        let mut entry_points = Vec::with_capacity(count);
        for _ in 0..count {
            let ip = match take(&mut rest)? {
                [FAMILY_V4] => IpAddr::from(take::<4>(&mut rest)?),
                [FAMILY_V6] => IpAddr::from(take::<16>(&mut rest)?),
                [family] => return Err(RecordError::Family(family)),
            };
            let addr = SocketAddr::new(ip, u16::from_be_bytes(take(&mut rest)?));
            check_entry_point(&addr)?;
            entry_points.push(addr);
        }
        if !rest.is_empty() {
            return Err(RecordError::TrailingBytes);
        }
        Ok(Self {
            descriptor_hash,
            expires,
            entry_points,
        })
    }

    /// Length of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        let entries: usize = self
            .entry_points
            .iter()
            .map(|a| match a {
                SocketAddr::V4(_) => ENTRY_V4_LEN,
                SocketAddr::V6(_) => ENTRY_V6_LEN,
            })
            .sum();
        HEADER_LEN + entries
    }
}

/// The next `N` bytes of `rest`.
fn take<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], RecordError> {
    let (head, tail) = rest
        .split_first_chunk::<N>()
        .ok_or(RecordError::Truncated)?;
    *rest = tail;
    Ok(*head)
}

fn check_entry_point(addr: &SocketAddr) -> Result<(), RecordError> {
    if addr.port() == 0 {
        return Err(RecordError::PortZero);
    }
    if addr.ip().is_unspecified() {
        return Err(RecordError::Unspecified);
    }
    Ok(())
}

/// Names a DESCRIPTOR's parameters, whatever its signing time: BLAKE3 in
/// derive-key mode (context `shoal v1 2026-11 descriptor hash`) over its
/// bytes 2..54 as the wire format lays them out (codec, clubs, k, m,
/// chunk_size, stream id, bitrate_bps, revision, block_ms), i.e. every
/// field except `issued_at_us` and the signature, which change each time
/// the publisher re-signs it.
pub fn descriptor_hash(d: &Descriptor) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(DESCRIPTOR_HASH_CONTEXT);
    h.update(&[d.codec as u8, d.clubs, d.k, d.m]);
    h.update(&d.chunk_size.to_be_bytes());
    h.update(d.stream.as_bytes());
    h.update(&d.bitrate_bps.to_be_bytes());
    h.update(&d.revision.to_be_bytes());
    h.update(&d.block_ms.to_be_bytes());
    *h.finalize().as_bytes()
}

/// The exact bytes BEP 44 signs: `4:salt<len>:<salt>` if a salt is given
/// and not empty, then `3:seqi<seq>e1:v<len>:<value>`. `value` is the raw
/// value; it is written as a bencoded byte string, as the `mainline` crate
/// stores it (BEP 44's example value `12:Hello World!` is `b"Hello
/// World!"` here).
pub fn signable(seq: i64, salt: Option<&[u8]>, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + salt.map_or(0, <[u8]>::len) + value.len());
    if let Some(salt) = salt.filter(|s| !s.is_empty()) {
        out.extend_from_slice(format!("4:salt{}:", salt.len()).as_bytes());
        out.extend_from_slice(salt);
    }
    out.extend_from_slice(format!("3:seqi{seq}e1:v{}:", value.len()).as_bytes());
    out.extend_from_slice(value);
    out
}

/// The BEP 44 signature of an entry record's bytes `value` at `seq`, made
/// with the stream key: over `signable(seq, Some(RECORD_SALT), value)`.
/// The signed bytes begin with `4:salt`, never with a datagram's version
/// byte or a token's context string, so it passes as neither.
pub fn sign_record(key: &PublisherKey, seq: i64, value: &[u8]) -> [u8; SIGNATURE_LEN] {
    key.sign(&signable(seq, Some(RECORD_SALT), value))
}

/// One mutable item as a DHT lookup returned it (fields as BEP 44 names
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundItem<'a> {
    /// `k`: the ed25519 public key it claims to be signed by.
    pub key: [u8; 32],
    /// `salt`, if any.
    pub salt: Option<&'a [u8]>,
    /// `seq`.
    pub seq: i64,
    /// `v`, without its bencoding: the record's bytes.
    pub value: &'a [u8],
    /// `sig`.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why an item found on the DHT was ignored. Displays as a clause to
/// follow "ignored the DHT record: ".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    /// Its key is not the stream's.
    #[error("signed by another key")]
    OtherKey,
    /// Its salt is not [`RECORD_SALT`].
    #[error("wrong salt")]
    WrongSalt,
    /// Its signature is not the stream key's.
    #[error("its signature does not verify with the stream key")]
    BadSignature,
    /// Signed, but its value is not a record this module reads.
    #[error("malformed: {0}")]
    Malformed(RecordError),
    /// A newer record was accepted before.
    #[error("seq {seq} is older than seq {seen} already seen")]
    Older {
        /// The item's seq.
        seq: i64,
        /// The newest seq accepted.
        seen: i64,
    },
    /// Past its `expires`.
    #[error("it expired {ago_s} s ago")]
    Expired {
        /// Seconds since it expired.
        ago_s: u64,
    },
}

/// Keeps the newest record seen for one stream and judges each new one.
///
/// Feed it every item a lookup returns, in any order; several nodes
/// returning the same item is normal, so a seq equal to the newest is
/// accepted again.
#[derive(Debug, Clone)]
pub struct RecordBook {
    stream: StreamId,
    /// `None` if the stream id is not a valid ed25519 key: nothing verifies.
    key: Option<VerifyingKey>,
    newest: Option<i64>,
}

impl RecordBook {
    /// A book for `stream`, having seen nothing.
    pub fn new(stream: StreamId) -> Self {
        Self {
            stream,
            key: VerifyingKey::from_bytes(stream.as_bytes()).ok(),
            newest: None,
        }
    }

    /// The stream it judges records for.
    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// Judges `item` at wall-clock `now_unix` (Unix seconds). Checks, in
    /// this order: its key is the stream's, its salt is [`RECORD_SALT`],
    /// its signature verifies (strictly) with the stream key, its value
    /// decodes, its seq is not below the newest accepted, and it has not
    /// expired (`now_unix < expires`). On success remembers its seq and
    /// returns the record.
    pub fn consider(
        &mut self,
        now_unix: u64,
        item: &FoundItem<'_>,
    ) -> Result<EntryRecord, Ignored> {
        if item.key != *self.stream.as_bytes() {
            return Err(Ignored::OtherKey);
        }
        if item.salt != Some(RECORD_SALT) {
            return Err(Ignored::WrongSalt);
        }
        let key = self.key.as_ref().ok_or(Ignored::BadSignature)?;
        key.verify_strict(
            &signable(item.seq, item.salt, item.value),
            &Signature::from_bytes(&item.signature),
        )
        .map_err(|_| Ignored::BadSignature)?;
        let record = EntryRecord::decode(item.value).map_err(Ignored::Malformed)?;
        if let Some(seen) = self.newest
            && item.seq < seen
        {
            return Err(Ignored::Older {
                seq: item.seq,
                seen,
            });
        }
        if now_unix >= record.expires {
            return Err(Ignored::Expired {
                ago_s: now_unix - record.expires,
            });
        }
        self.newest = Some(item.seq);
        Ok(record)
    }

    /// The seq of the newest record accepted, if any.
    pub fn newest_seq(&self) -> Option<i64> {
        self.newest
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::wire::Codec;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn key() -> PublisherKey {
        PublisherKey::from_seed([7; 32])
    }

    fn v4() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 5000))
    }

    fn v6() -> SocketAddr {
        SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 6000))
    }

    fn record(expires: u64) -> EntryRecord {
        EntryRecord {
            descriptor_hash: [9; 32],
            expires,
            entry_points: vec![v4(), v6()],
        }
    }

    /// The A.2 DESCRIPTOR.
    fn descriptor() -> Descriptor {
        Descriptor {
            codec: Codec::MpegTs,
            clubs: 8,
            k: 2,
            m: 2,
            chunk_size: 1316,
            stream: key().stream_id(),
            bitrate_bps: 3_000_000,
            revision: 1,
            block_ms: 50,
            issued_at_us: 1_767_225_600_000_000,
            epoch: 1_767_225_600_000_000,
            signature: [0; 64],
        }
    }

    fn item<'a>(seq: i64, value: &'a [u8]) -> FoundItem<'a> {
        FoundItem {
            key: *key().stream_id().as_bytes(),
            salt: Some(RECORD_SALT),
            seq,
            value,
            signature: sign_record(&key(), seq, value),
        }
    }

    #[test]
    fn round_trips_ipv4_and_ipv6() {
        let r = record(1000);
        let bytes = r.encode().expect("encodes");
        assert_eq!(bytes.len(), HEADER_LEN + ENTRY_V4_LEN + ENTRY_V6_LEN);
        assert_eq!(bytes.len(), r.encoded_len());
        assert_eq!(EntryRecord::decode(&bytes), Ok(r));
    }

    #[test]
    fn thirty_two_ipv6_entry_points_fit_in_a_bep44_value() {
        let r = EntryRecord {
            descriptor_hash: [0xff; 32],
            expires: u64::MAX,
            entry_points: vec![v6(); MAX_ENTRY_POINTS],
        };
        let bytes = r.encode().expect("encodes");
        assert_eq!(bytes.len(), MAX_RECORD_LEN);
        assert!(bytes.len() < BEP44_MAX_VALUE_LEN);
        assert_eq!(EntryRecord::decode(&bytes), Ok(r));
    }

    #[test]
    fn encode_refuses_what_decode_would() {
        let with = |entry_points: Vec<SocketAddr>| EntryRecord {
            entry_points,
            ..record(1)
        };
        assert_eq!(with(vec![]).encode(), Err(RecordError::NoEntryPoints));
        assert_eq!(
            with(vec![v4(); MAX_ENTRY_POINTS + 1]).encode(),
            Err(RecordError::TooMany(33))
        );
        assert_eq!(
            with(vec![v4(); 300]).encode(),
            Err(RecordError::TooMany(300))
        );
        assert_eq!(
            with(vec![SocketAddr::from(([192, 0, 2, 1], 0))]).encode(),
            Err(RecordError::PortZero)
        );
        assert_eq!(
            with(vec![v4(), SocketAddr::from((Ipv6Addr::UNSPECIFIED, 9))]).encode(),
            Err(RecordError::Unspecified)
        );
    }

    #[test]
    fn decode_rejects_each_fault() {
        let good = record(1000).encode().expect("encodes");
        let with = |offset: usize, byte: u8| {
            let mut b = good.clone();
            b[offset] = byte;
            EntryRecord::decode(&b)
        };
        // Entry 0 (IPv4) starts at 42, entry 1 (IPv6) at 49.
        assert_eq!(with(0, 2), Err(RecordError::Version(2)));
        assert_eq!(with(0, 0), Err(RecordError::Version(0)));
        assert_eq!(with(41, 0), Err(RecordError::NoEntryPoints));
        assert_eq!(with(41, 33), Err(RecordError::TooMany(33)));
        assert_eq!(with(41, 3), Err(RecordError::Truncated));
        assert_eq!(with(41, 1), Err(RecordError::TrailingBytes));
        assert_eq!(with(42, 5), Err(RecordError::Family(5)));
        assert_eq!(with(49, 0), Err(RecordError::Family(0)));
        let mut port0 = good.clone();
        port0[47..49].copy_from_slice(&[0, 0]);
        assert_eq!(EntryRecord::decode(&port0), Err(RecordError::PortZero));
        let mut unspec = good.clone();
        unspec[50..66].fill(0);
        assert_eq!(EntryRecord::decode(&unspec), Err(RecordError::Unspecified));
        let mut unspec4 = good.clone();
        unspec4[43..47].fill(0);
        assert_eq!(EntryRecord::decode(&unspec4), Err(RecordError::Unspecified));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            EntryRecord::decode(&trailing),
            Err(RecordError::TrailingBytes)
        );
        for len in 0..good.len() {
            assert_eq!(
                EntryRecord::decode(&good[..len]),
                Err(RecordError::Truncated),
                "length {len}"
            );
        }
    }

    #[test]
    fn errors_read_as_clauses() {
        assert_eq!(
            Ignored::Malformed(RecordError::Truncated).to_string(),
            "malformed: the record is truncated"
        );
        assert_eq!(
            Ignored::Older { seq: 5, seen: 9 }.to_string(),
            "seq 5 is older than seq 9 already seen"
        );
        assert_eq!(
            Ignored::Expired { ago_s: 120 }.to_string(),
            "it expired 120 s ago"
        );
        assert_eq!(
            Ignored::BadSignature.to_string(),
            "its signature does not verify with the stream key"
        );
    }

    #[test]
    fn the_book_accepts_a_signed_record_and_the_same_seq_again() {
        let value = record(1000).encode().expect("encodes");
        let mut book = RecordBook::new(key().stream_id());
        assert_eq!(book.newest_seq(), None);
        assert_eq!(book.consider(999, &item(3, &value)), Ok(record(1000)));
        assert_eq!(book.newest_seq(), Some(3));
        assert_eq!(book.consider(999, &item(3, &value)), Ok(record(1000)));
        assert_eq!(book.consider(0, &item(4, &value)), Ok(record(1000)));
        assert_eq!(book.newest_seq(), Some(4));
    }

    #[test]
    fn the_book_ignores_each_fault() {
        let value = record(1000).encode().expect("encodes");
        let stream = key().stream_id();
        let mut book = RecordBook::new(stream);

        for i in 0..SIGNATURE_LEN * 8 {
            let mut bad = item(3, &value);
            bad.signature[i / 8] ^= 1 << (i % 8);
            assert_eq!(
                book.consider(0, &bad),
                Err(Ignored::BadSignature),
                "bit {i}"
            );
        }
        let mut flipped = value.clone();
        flipped[60] ^= 1;
        let forged = FoundItem {
            value: &flipped,
            ..item(3, &value)
        };
        assert_eq!(book.consider(0, &forged), Err(Ignored::BadSignature));
        let other_seq = FoundItem {
            seq: 4,
            ..item(3, &value)
        };
        assert_eq!(book.consider(0, &other_seq), Err(Ignored::BadSignature));

        let other = PublisherKey::from_seed([8; 32]);
        let theirs = FoundItem {
            key: *other.stream_id().as_bytes(),
            signature: sign_record(&other, 3, &value),
            ..item(3, &value)
        };
        assert_eq!(book.consider(0, &theirs), Err(Ignored::OtherKey));
        // Their signature, our key: forged.
        let stolen = FoundItem {
            signature: sign_record(&other, 3, &value),
            ..item(3, &value)
        };
        assert_eq!(book.consider(0, &stolen), Err(Ignored::BadSignature));

        let unsalted = FoundItem {
            salt: None,
            signature: key().sign(&signable(3, None, &value)),
            ..item(3, &value)
        };
        assert_eq!(book.consider(0, &unsalted), Err(Ignored::WrongSalt));
        let relays = FoundItem {
            salt: Some(ANNOUNCE_SALT),
            signature: key().sign(&signable(3, Some(ANNOUNCE_SALT), &value)),
            ..item(3, &value)
        };
        assert_eq!(book.consider(0, &relays), Err(Ignored::WrongSalt));

        let junk = [RECORD_VERSION, 1, 2];
        assert_eq!(
            book.consider(0, &item(3, &junk)),
            Err(Ignored::Malformed(RecordError::Truncated))
        );
        assert_eq!(
            book.consider(1000, &item(3, &value)),
            Err(Ignored::Expired { ago_s: 0 })
        );
        assert_eq!(
            book.consider(1120, &item(3, &value)),
            Err(Ignored::Expired { ago_s: 120 })
        );
        // Nothing ignored changed the book.
        assert_eq!(book.newest_seq(), None);

        assert!(book.consider(0, &item(9, &value)).is_ok());
        assert_eq!(
            book.consider(0, &item(5, &value)),
            Err(Ignored::Older { seq: 5, seen: 9 })
        );
        assert_eq!(book.newest_seq(), Some(9));
    }

    #[test]
    fn a_book_for_an_invalid_key_accepts_nothing() {
        // Not a point on the curve.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let stream = StreamId(bytes);
        assert!(VerifyingKey::from_bytes(&bytes).is_err());
        let value = record(1000).encode().expect("encodes");
        let mut book = RecordBook::new(stream);
        let it = FoundItem {
            key: bytes,
            ..item(3, &value)
        };
        assert_eq!(book.consider(0, &it), Err(Ignored::BadSignature));
    }

    #[test]
    fn descriptor_hash_names_the_parameters_only() {
        let d = descriptor();
        let h = descriptor_hash(&d);
        let resigned = Descriptor {
            issued_at_us: d.issued_at_us + 1_000_000,
            signature: [5; 64],
            ..d
        };
        assert_eq!(descriptor_hash(&resigned), h);
        for changed in [
            Descriptor { revision: 2, ..d },
            Descriptor {
                bitrate_bps: 3_000_001,
                ..d
            },
            Descriptor {
                codec: Codec::Opaque,
                ..d
            },
            Descriptor { clubs: 9, ..d },
            Descriptor { k: 3, ..d },
            Descriptor { m: 3, ..d },
            Descriptor {
                chunk_size: 1315,
                ..d
            },
            Descriptor {
                stream: StreamId([1; 32]),
                ..d
            },
            Descriptor { block_ms: 51, ..d },
        ] {
            assert_ne!(descriptor_hash(&changed), h, "{changed:?}");
        }
        // It is the hash of the datagram's bytes 2..54.
        let mut datagram = [0u8; crate::wire::DESCRIPTOR_LEN];
        d.emit(&mut datagram).expect("fits");
        let direct = blake3::Hasher::new_derive_key(DESCRIPTOR_HASH_CONTEXT)
            .update(&datagram[2..54])
            .finalize();
        assert_eq!(h, *direct.as_bytes());
    }

    /// BEP 44's test vectors 1 and 2: the signed bytes, and its signatures
    /// verify over them.
    #[test]
    fn signable_matches_bep44() {
        assert_eq!(
            signable(1, None, b"Hello World!"),
            b"3:seqi1e1:v12:Hello World!"
        );
        assert_eq!(
            signable(1, Some(b"foobar"), b"Hello World!"),
            b"4:salt6:foobar3:seqi1e1:v12:Hello World!"
        );
        assert_eq!(signable(-3, Some(b""), b""), b"3:seqi-3e1:v0:");
        let pk: [u8; 32] =
            unhex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
                .try_into()
                .expect("32 bytes");
        let key = VerifyingKey::from_bytes(&pk).expect("valid key");
        for (salt, sig) in [
            (
                None,
                "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff\
                 1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01",
            ),
            (
                Some(&b"foobar"[..]),
                "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d\
                 df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08",
            ),
        ] {
            let sig: [u8; 64] = unhex(sig).try_into().expect("64 bytes");
            key.verify_strict(
                &signable(1, salt, b"Hello World!"),
                &Signature::from_bytes(&sig),
            )
            .expect("BEP 44's signature verifies");
        }
    }

    fn entry_point() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), 1..=u16::MAX)
                .prop_map(|(ip, port)| SocketAddr::from((Ipv4Addr::from(ip), port))),
            (any::<[u8; 16]>(), 1..=u16::MAX)
                .prop_map(|(ip, port)| SocketAddr::from((Ipv6Addr::from(ip), port))),
        ]
        .prop_filter("specified", |a| !a.ip().is_unspecified())
    }

    proptest! {
        #[test]
        fn any_record_round_trips(
            descriptor_hash: [u8; 32],
            expires: u64,
            entry_points in proptest::collection::vec(entry_point(), 1..=MAX_ENTRY_POINTS),
        ) {
            let r = EntryRecord { descriptor_hash, expires, entry_points };
            let bytes = r.encode()?;
            prop_assert_eq!(bytes.len(), r.encoded_len());
            prop_assert!(bytes.len() <= MAX_RECORD_LEN);
            prop_assert_eq!(EntryRecord::decode(&bytes)?, r);
        }

        #[test]
        fn decode_never_panics_and_accepts_only_canonical_bytes(
            head in proptest::collection::vec(any::<u8>(), 42),
            count in 0..=34u8,
            tail in proptest::collection::vec(any::<u8>(), 0..=700),
        ) {
            let mut bytes = head;
            bytes[0] = RECORD_VERSION;
            bytes[41] = count;
            bytes.extend_from_slice(&tail);
            for len in [bytes.len(), 42 + tail.len() / 2] {
                if let Ok(r) = EntryRecord::decode(&bytes[..len]) {
                    prop_assert_eq!(r.encode()?, &bytes[..len]);
                }
            }
        }
    }

    /// SPEC Appendix A.8.
    #[test]
    fn test_vector() {
        let key = key();
        let r = EntryRecord {
            descriptor_hash: descriptor_hash(&descriptor()),
            expires: 1_767_229_200,
            entry_points: vec![v4(), v6()],
        };
        assert_eq!(hex(&r.descriptor_hash), VECTOR_DESCRIPTOR_HASH);
        let value = r.encode().expect("encodes");
        assert_eq!(hex(&value), VECTOR_VALUE.concat());
        let sig = sign_record(&key, VECTOR_SEQ, &value);
        assert_eq!(hex(&sig), VECTOR_SIGNATURE.concat());
        let mut book = RecordBook::new(key.stream_id());
        let found = FoundItem {
            key: *key.stream_id().as_bytes(),
            salt: Some(RECORD_SALT),
            seq: VECTOR_SEQ,
            value: &value,
            signature: sig,
        };
        assert_eq!(book.consider(1_767_225_600, &found), Ok(r));
    }

    const VECTOR_SEQ: i64 = 1_767_225_600;
    const VECTOR_DESCRIPTOR_HASH: &str =
        "484d015d22de3ebbd6572c8a1f63ade89f2049dd68a451d6481118cb0932248f";
    const VECTOR_VALUE: [&str; 3] = [
        "01484d015d22de3ebbd6572c8a1f63ade89f2049dd68a451d6481118cb093224",
        "8f000000006955c7100204c000020713880620010db800000000000000000000",
        "00011770",
    ];
    const VECTOR_SIGNATURE: [&str; 2] = [
        "d6a9214d19eda5d85b3d178b5b32726dfc88a9f107d4da94f1f4dea2333d3c7a",
        "7f72eccf957aa965f3b4fbc42dd60e5a0e401f09a1738f7810b27f97b053ba05",
    ];
}
