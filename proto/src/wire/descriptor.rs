//! DESCRIPTOR: the stream's signed parameters.
//!
//! ```text
//!  0       1       2       3
//! +-------+-------+-------+-------+
//! |version| 0x04  | codec | clubs |
//! +-------+-------+-------+-------+
//! |   k   |   m   | chunk_size u16|  4..8
//! |  stream id (32 bytes)         |  8..40
//! |  bitrate_bps u64              | 40..48
//! |  revision u32                 | 48..52
//! |  block_ms u16 | reserved u16  | 52..56
//! |  issued_at_us u64             | 56..64
//! |  epoch u64                    | 64..72
//! |  ed25519 signature (64 bytes) | 72..136
//! ```
//!
//! `epoch` names the publisher's run (SPEC §8.1): its wall clock in
//! microseconds when the run started, and the run's first `seq` and block.

use super::cursor::{BufferTooSmall, Writer};
use super::manifest::SIGNATURE_LEN;
use super::{DecodeError, MAX_CHUNK_SIZE, MessageType, header, put_header};
use crate::StreamId;
use crate::fec::{MAX_K, MAX_M};

/// Where the stream id starts.
pub(crate) const DESCRIPTOR_STREAM_AT: usize = 8;

/// Length of a DESCRIPTOR datagram.
pub const DESCRIPTOR_LEN: usize = 136;

/// Largest club count: club sets travel as a 64-bit mask.
pub const MAX_CLUBS: u8 = 64;

/// What the chunks carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Codec {
    /// Opaque bytes.
    Opaque = 0,
    /// MPEG transport stream: chunks end on 188-byte packet boundaries.
    MpegTs = 1,
}

/// The stream's parameters, signed by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// What the chunks carry.
    pub codec: Codec,
    /// Number of clubs (substreams), 1..=64; a chunk's club is `seq % clubs`.
    pub clubs: u8,
    /// DATA chunks per full FEC block, 1..=64.
    pub k: u8,
    /// Parity symbols per block, 0..=16.
    pub m: u8,
    /// Largest chunk payload, 1..=1380.
    pub chunk_size: u16,
    /// The stream.
    pub stream: StreamId,
    /// Nominal bitrate in bits per second.
    pub bitrate_bps: u64,
    /// Increases whenever the parameters change; a lower revision is stale.
    pub revision: u32,
    /// Longest time the publisher takes to close a block, in milliseconds.
    pub block_ms: u16,
    /// Publisher's clock when signed, in microseconds.
    pub issued_at_us: u64,
    /// The publisher's run: its clock in microseconds when the run
    /// started, also the run's first `seq` and first block. A later run
    /// has a higher epoch and supersedes every earlier one (SPEC §8.1).
    pub epoch: u64,
    /// Signature over bytes 0..72.
    pub signature: [u8; SIGNATURE_LEN],
}

impl Descriptor {
    /// Parses and checks the layout (not the signature).
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Descriptor)?;
        let codec = match r.u8()? {
            0 => Codec::Opaque,
            1 => Codec::MpegTs,
            _ => return Err(DecodeError::Field("codec")),
        };
        let clubs = r.u8()?;
        let k = r.u8()?;
        let m = r.u8()?;
        let chunk_size = r.u16()?;
        let stream = StreamId(r.array()?);
        let bitrate_bps = r.u64()?;
        let revision = r.u32()?;
        let block_ms = r.u16()?;
        r.reserved(2)?;
        let issued_at_us = r.u64()?;
        let epoch = r.u64()?;
        let signature = r.array()?;
        r.finish()?;
        if clubs == 0 || clubs > MAX_CLUBS {
            return Err(DecodeError::Field("clubs"));
        }
        if k == 0 || usize::from(k) > MAX_K {
            return Err(DecodeError::Field("k"));
        }
        if usize::from(m) > MAX_M {
            return Err(DecodeError::Field("m"));
        }
        if chunk_size == 0 || usize::from(chunk_size) > MAX_CHUNK_SIZE {
            return Err(DecodeError::Field("chunk_size"));
        }
        if block_ms == 0 {
            return Err(DecodeError::Field("block_ms"));
        }
        Ok(Self {
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
        })
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, DESCRIPTOR_LEN)?;
        put_header(&mut w, MessageType::Descriptor);
        w.u8(self.codec as u8);
        w.u8(self.clubs);
        w.u8(self.k);
        w.u8(self.m);
        w.u16(self.chunk_size);
        w.put(self.stream.as_bytes());
        w.u64(self.bitrate_bps);
        w.u32(self.revision);
        w.u16(self.block_ms);
        w.zeros(2);
        w.u64(self.issued_at_us);
        w.u64(self.epoch);
        w.put(&self.signature);
        Ok(w.finish())
    }

    /// The club of chunk `seq`.
    pub fn club_of(&self, seq: u64) -> u8 {
        // clubs >= 1 after parse; the remainder is below 64.
        (seq % u64::from(self.clubs.max(1))) as u8
    }
}
