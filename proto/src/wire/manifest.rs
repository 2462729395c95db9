//! MANIFEST: the signed hashes of one block's chunks and parity.
//!
//! ```text
//!  0       1       2       3
//! +-------+-------+-------+-------+
//! |version| 0x03  |   k   |   m   |
//! +-------+-------+-------+-------+
//! |  symbol_len u16 | reserved u16|  4..8
//! |  stream id (32 bytes)         |  8..40
//! |  block      u64               | 40..48
//! |  first_seq  u64               | 48..56
//! |  epoch      u64               | 56..64
//! |  timestamp_us u64             | 64..72
//! |  (k + m) x 16-byte hashes     | 72..
//! |  ed25519 signature (64 bytes) |
//! ```
//!
//! `epoch` names the publisher's run (as in the DESCRIPTOR) and
//! `timestamp_us` is the publisher's clock when it signed the block: a
//! receiver takes a new run only from a fresh MANIFEST or DESCRIPTOR, so
//! recorded data cannot be replayed as live (SPEC §9.2).
//!
//! The first k hashes are the DATA chunks by index, the next m the PARITY
//! symbols by index. The signature covers every byte before it.

use super::cursor::{BufferTooSmall, Writer};
use super::{DecodeError, MessageType, header, put_header};
use crate::StreamId;
use crate::fec::{MAX_K, MAX_M, SYMBOL_HEADER_LEN};

/// Where the stream id starts.
pub(crate) const MANIFEST_STREAM_AT: usize = 8;

/// Length of one truncated BLAKE3 hash.
pub const HASH_LEN: usize = 16;

/// Bytes before the hashes.
pub const MANIFEST_HEADER_LEN: usize = 72;

/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// A parsed MANIFEST datagram; the hashes borrow from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest<'a> {
    /// DATA chunks in the block (1..=64).
    pub k: u8,
    /// Parity symbols in the block (0..=16).
    pub m: u8,
    /// FEC symbol length of the block (0 when m = 0).
    pub symbol_len: u16,
    /// The stream.
    pub stream: StreamId,
    /// The block.
    pub block: u64,
    /// Sequence number of the block's first chunk.
    pub first_seq: u64,
    /// The publisher's run (SPEC §8.1).
    pub epoch: u64,
    /// Publisher's clock when the block was signed, in microseconds.
    pub timestamp_us: u64,
    /// `(k + m) * 16` bytes of hashes.
    pub hashes: &'a [u8],
    /// Signature over every byte before it.
    pub signature: [u8; SIGNATURE_LEN],
}

impl<'a> Manifest<'a> {
    /// Parses and checks the layout of a MANIFEST datagram (not its
    /// signature: see [`crate::integrity`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Manifest)?;
        let k = r.u8()?;
        let m = r.u8()?;
        let symbol_len = r.u16()?;
        r.reserved(2)?;
        let stream = StreamId(r.array()?);
        let block = r.u64()?;
        let first_seq = r.u64()?;
        let epoch = r.u64()?;
        let timestamp_us = r.u64()?;
        if k == 0 || usize::from(k) > MAX_K {
            return Err(DecodeError::Field("k"));
        }
        if usize::from(m) > MAX_M {
            return Err(DecodeError::Field("m"));
        }
        let symbol_ok = if m == 0 {
            symbol_len == 0
        } else {
            usize::from(symbol_len) >= SYMBOL_HEADER_LEN && symbol_len % 2 == 0
        };
        if !symbol_ok {
            return Err(DecodeError::Field("symbol_len"));
        }
        // A block must end inside the sequence space (no wrap: SPEC).
        if first_seq.checked_add(u64::from(k)).is_none() {
            return Err(DecodeError::Field("first_seq"));
        }
        // A run starts at its epoch: nothing of it lies before.
        if first_seq < epoch || block < epoch {
            return Err(DecodeError::Field("epoch"));
        }
        let hashes = r.take((usize::from(k) + usize::from(m)) * HASH_LEN)?;
        let signature = r.array()?;
        r.finish()?;
        Ok(Self {
            k,
            m,
            symbol_len,
            stream,
            block,
            first_seq,
            epoch,
            timestamp_us,
            hashes,
            signature,
        })
    }

    /// Bytes [`Manifest::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        MANIFEST_HEADER_LEN + self.hashes.len() + SIGNATURE_LEN
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, self.buffer_len())?;
        put_header(&mut w, MessageType::Manifest);
        w.u8(self.k);
        w.u8(self.m);
        w.u16(self.symbol_len);
        w.zeros(2);
        w.put(self.stream.as_bytes());
        w.u64(self.block);
        w.u64(self.first_seq);
        w.u64(self.epoch);
        w.u64(self.timestamp_us);
        w.put(self.hashes);
        w.put(&self.signature);
        Ok(w.finish())
    }

    /// The hash of DATA chunk `index`, if in range.
    pub fn data_hash(&self, index: usize) -> Option<&'a [u8]> {
        if index >= usize::from(self.k) {
            return None;
        }
        self.hashes.get(index * HASH_LEN..(index + 1) * HASH_LEN)
    }

    /// The hash of parity symbol `index`, if in range.
    pub fn parity_hash(&self, index: usize) -> Option<&'a [u8]> {
        if index >= usize::from(self.m) {
            return None;
        }
        let at = (usize::from(self.k) + index) * HASH_LEN;
        self.hashes.get(at..at + HASH_LEN)
    }

    /// Whether `seq` falls in this block.
    pub fn contains(&self, seq: u64) -> bool {
        seq.checked_sub(self.first_seq)
            .is_some_and(|i| i < u64::from(self.k))
    }
}

/// A checked, zero-copy view of a MANIFEST datagram.
#[derive(Debug, Clone, Copy)]
pub struct ManifestView<'a>(Manifest<'a>, &'a [u8]);

impl<'a> ManifestView<'a> {
    /// Checks the layout once.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(Self(Manifest::parse(bytes)?, bytes))
    }

    /// The parsed fields.
    pub fn fields(&self) -> &Manifest<'a> {
        &self.0
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.1
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> &'a [u8] {
        self.1
            .get(..self.1.len().saturating_sub(SIGNATURE_LEN))
            .unwrap_or_default()
    }
}
