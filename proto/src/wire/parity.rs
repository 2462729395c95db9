//! PARITY: one Reed-Solomon repair symbol of a block.
//!
//! ```text
//!  0       1       2       3
//! +-------+-------+-------+-------+
//! |version| 0x02  |   k   |   m   |
//! +-------+-------+-------+-------+
//! |  stream id (32 bytes)         |  4..36
//! |  block      u64               | 36..44
//! |  first_seq  u64               | 44..52
//! | index |  symbol ...           | 52, 53..
//! ```
//!
//! `k` is the number of DATA chunks in this block (a block may be short),
//! `m` the number of parity symbols, `index` this symbol's position (< m).
//! The symbol's length is the block's symbol length (see [`crate::fec`]).

use super::cursor::{BufferTooSmall, Writer};
use super::{DecodeError, MessageType, header, put_header};
use crate::StreamId;
use crate::fec::{MAX_K, MAX_M, SYMBOL_HEADER_LEN};

/// Where the stream id starts.
pub(crate) const PARITY_STREAM_AT: usize = 4;

/// Bytes before the symbol.
pub const PARITY_HEADER_LEN: usize = 53;

/// A parsed PARITY datagram; the symbol borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parity<'a> {
    /// DATA chunks in the block.
    pub k: u8,
    /// Parity symbols in the block.
    pub m: u8,
    /// The stream.
    pub stream: StreamId,
    /// The block.
    pub block: u64,
    /// Sequence number of the block's first chunk.
    pub first_seq: u64,
    /// This symbol's position among the block's parity.
    pub index: u8,
    /// The repair symbol.
    pub symbol: &'a [u8],
}

impl<'a> Parity<'a> {
    /// Parses and checks a PARITY datagram.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Parity)?;
        let k = r.u8()?;
        let m = r.u8()?;
        let stream = StreamId(r.array()?);
        let block = r.u64()?;
        let first_seq = r.u64()?;
        let index = r.u8()?;
        let symbol = r.rest();
        check_block_shape(k, m)?;
        // A block must end inside the sequence space (no wrap: SPEC).
        if first_seq.checked_add(u64::from(k)).is_none() {
            return Err(DecodeError::Field("first_seq"));
        }
        if index >= m {
            return Err(DecodeError::Field("index"));
        }
        if symbol.len() < SYMBOL_HEADER_LEN || symbol.len() % 2 != 0 {
            return Err(DecodeError::Field("symbol"));
        }
        Ok(Self {
            k,
            m,
            stream,
            block,
            first_seq,
            index,
            symbol,
        })
    }

    /// Bytes [`Parity::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        PARITY_HEADER_LEN + self.symbol.len()
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, self.buffer_len())?;
        put_header(&mut w, MessageType::Parity);
        w.u8(self.k);
        w.u8(self.m);
        w.put(self.stream.as_bytes());
        w.u64(self.block);
        w.u64(self.first_seq);
        w.u8(self.index);
        w.put(self.symbol);
        Ok(w.finish())
    }
}

/// k in 1..=64 and m in 1..=16 for a block that has parity.
pub(crate) fn check_block_shape(k: u8, m: u8) -> Result<(), DecodeError> {
    if k == 0 || usize::from(k) > MAX_K {
        return Err(DecodeError::Field("k"));
    }
    if m == 0 || usize::from(m) > MAX_M {
        return Err(DecodeError::Field("m"));
    }
    Ok(())
}

/// A checked, zero-copy view of a PARITY datagram.
#[derive(Debug, Clone, Copy)]
pub struct ParityView<'a>(Parity<'a>, &'a [u8]);

impl<'a> ParityView<'a> {
    /// Checks every field once.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(Self(Parity::parse(bytes)?, bytes))
    }

    /// The parsed fields (borrowing from the datagram).
    pub fn fields(&self) -> &Parity<'a> {
        &self.0
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.1
    }
}
