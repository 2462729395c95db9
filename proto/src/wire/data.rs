//! DATA: one chunk of the stream.
//!
//! ```text
//!  0       1       2       3
//! +-------+-------+-------+-------+
//! |version| 0x01  | flags | club  |
//! +-------+-------+-------+-------+
//! |  stream id (32 bytes)         |  4..36
//! |  seq        u64               | 36..44
//! |  block      u64               | 44..52
//! |  timestamp  u64 (us)          | 52..60
//! | index |  payload ...          | 60, 61..
//! ```

use super::cursor::{BufferTooSmall, Writer};
use super::{DecodeError, MAX_CHUNK_SIZE, MessageType, header, put_header};
use crate::StreamId;
use crate::fec::MAX_K;

/// Bytes before the payload.
pub const DATA_HEADER_LEN: usize = 61;

/// Where the flags byte sits.
const DATA_FLAGS_AT: usize = 2;
/// Where the stream id starts.
pub(crate) const DATA_STREAM_AT: usize = 4;
/// Where the block number starts.
const DATA_BLOCK_AT: usize = 44;
/// Where the timestamp starts.
const DATA_TIMESTAMP_AT: usize = 52;

/// DATA flag bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DataFlags(u8);

impl DataFlags {
    /// The chunk starts a group of pictures: a viewer may start playing here.
    pub const KEYFRAME: u8 = 0x01;
    /// The last chunk of the stream.
    pub const END_OF_STREAM: u8 = 0x02;
    const KNOWN: u8 = Self::KEYFRAME | Self::END_OF_STREAM;

    /// Flags from their bits; `None` if an undefined bit is set.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        if bits & !Self::KNOWN == 0 {
            Some(Self(bits))
        } else {
            None
        }
    }

    /// The flag byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Flags with the keyframe and end-of-stream bits as given.
    pub const fn new(keyframe: bool, end_of_stream: bool) -> Self {
        Self(((keyframe as u8) * Self::KEYFRAME) | ((end_of_stream as u8) * Self::END_OF_STREAM))
    }

    /// Whether the chunk starts a group of pictures.
    pub const fn keyframe(self) -> bool {
        self.0 & Self::KEYFRAME != 0
    }

    /// Whether this is the stream's last chunk.
    pub const fn end_of_stream(self) -> bool {
        self.0 & Self::END_OF_STREAM != 0
    }
}

/// A parsed DATA datagram; the payload borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a> {
    /// Keyframe / end-of-stream flags.
    pub flags: DataFlags,
    /// Club (substream): `seq % clubs` from the stream's descriptor.
    pub club: u8,
    /// The stream.
    pub stream: StreamId,
    /// Sequence number; starts at 0, increases by 1 per chunk, never wraps.
    pub seq: u64,
    /// FEC block the chunk belongs to.
    pub block: u64,
    /// Publisher's clock when the chunk was cut, in microseconds.
    pub timestamp_us: u64,
    /// Position in the block, below the block's k.
    pub index: u8,
    /// The chunk's bytes.
    pub payload: &'a [u8],
}

impl<'a> Data<'a> {
    /// Parses and checks a DATA datagram.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Data)?;
        let flags = DataFlags::from_bits(r.u8()?).ok_or(DecodeError::Reserved)?;
        let club = r.u8()?;
        let stream = StreamId(r.array()?);
        let seq = r.u64()?;
        let block = r.u64()?;
        let timestamp_us = r.u64()?;
        let index = r.u8()?;
        if usize::from(index) >= MAX_K {
            return Err(DecodeError::Field("index"));
        }
        let payload = r.rest();
        if payload.len() > MAX_CHUNK_SIZE {
            return Err(DecodeError::Field("payload"));
        }
        Ok(Self {
            flags,
            club,
            stream,
            seq,
            block,
            timestamp_us,
            index,
            payload,
        })
    }

    /// Bytes [`Data::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        DATA_HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, self.buffer_len())?;
        put_header(&mut w, MessageType::Data);
        w.u8(self.flags.bits());
        w.u8(self.club);
        w.put(self.stream.as_bytes());
        w.u64(self.seq);
        w.u64(self.block);
        w.u64(self.timestamp_us);
        w.u8(self.index);
        w.put(self.payload);
        Ok(w.finish())
    }
}

/// A DATA datagram checked when it was stored ([`DataView::new_checked`]),
/// whose fields are read at their offsets without checking it again: how a
/// window reads the chunks it holds. Bytes missing from a short buffer
/// read as zeros.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredData<'a>(pub(crate) &'a [u8]);

impl StoredData<'_> {
    /// The flags.
    pub(crate) fn flags(&self) -> DataFlags {
        let bits = self.0.get(DATA_FLAGS_AT).copied().unwrap_or(0);
        DataFlags::from_bits(bits).unwrap_or_default()
    }

    /// The block.
    pub(crate) fn block(&self) -> u64 {
        self.u64_at(DATA_BLOCK_AT)
    }

    /// The publisher's timestamp.
    pub(crate) fn timestamp_us(&self) -> u64 {
        self.u64_at(DATA_TIMESTAMP_AT)
    }

    fn u64_at(&self, at: usize) -> u64 {
        let mut b = [0; 8];
        if let Some(src) = self.0.get(at..at + 8) {
            b.copy_from_slice(src);
        }
        u64::from_be_bytes(b)
    }
}

/// A checked, zero-copy view of a DATA datagram: the parsed fields and the
/// exact bytes, for forwarding without re-encoding.
#[derive(Debug, Clone, Copy)]
pub struct DataView<'a>(Data<'a>, &'a [u8]);

impl<'a> DataView<'a> {
    /// Checks every field once; afterwards no accessor can fail.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(Self(Data::parse(bytes)?, bytes))
    }

    /// The parsed fields (borrowing from the datagram).
    pub fn fields(&self) -> &Data<'a> {
        &self.0
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.1
    }
}
