//! The publisher's chunker: a live byte stream in, chunks of at most
//! `chunk_size` bytes out.

use std::collections::VecDeque;
use std::mem;

use super::framer::Framer;
use super::packet::{Packet, TS_PACKET_LEN};
use super::psi::VideoPids;

/// Default chunk size: seven transport packets, 1316 bytes, the payload
/// size of TS over UDP and RTP.
pub const DEFAULT_CHUNK_SIZE: usize = 7 * TS_PACKET_LEN;

/// Largest chunk size: a chunk's payload length travels in 16 bits (see
/// [`crate::fec::symbol`]).
pub const MAX_CHUNK_SIZE: usize = u16::MAX as usize;

/// Emitted buffers [`Chunker::recycle`] keeps for reuse.
const SPARE_BUFFERS: usize = 8;

/// How the input is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// An MPEG transport stream: chunks hold whole 188-byte packets, bytes
    /// out of sync are dropped, and every video random access point starts
    /// a chunk flagged as a keyframe.
    MpegTs,
    /// Any byte stream: chunks of exactly `chunk_size` bytes, the last one
    /// before a flush shorter. Only the stream's first chunk is flagged as a
    /// keyframe: nothing is known about where decoding may start, and a
    /// viewer has to be allowed to start somewhere.
    Opaque,
}

/// A piece of the stream, ready to be published.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chunk {
    /// The chunk's bytes: 1 to `chunk_size` of them, whole packets in
    /// [`Mode::MpegTs`]. Give the buffer back with [`Chunker::recycle`] when
    /// done with it.
    pub payload: Vec<u8>,
    /// A viewer may start here. In [`Mode::MpegTs`]: the chunk starts with a
    /// video random access point (a packet with the random_access_indicator
    /// set), or is the stream's first chunk. In [`Mode::Opaque`]: it is the
    /// stream's first chunk.
    pub keyframe: bool,
}

/// Why a chunker could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkerError {
    /// A chunk must hold at least one byte.
    #[error("chunk size must be at least 1 byte")]
    ChunkSizeZero,
    /// The chunk size exceeds [`MAX_CHUNK_SIZE`].
    #[error("chunk size {chunk_size} exceeds the maximum of {MAX_CHUNK_SIZE} bytes")]
    ChunkSizeTooLarge {
        /// The size asked for.
        chunk_size: usize,
    },
    /// In [`Mode::MpegTs`] a chunk holds whole packets, so its size must be
    /// a multiple of [`TS_PACKET_LEN`].
    #[error("chunk size {chunk_size} is not a multiple of the 188-byte MPEG-TS packet")]
    ChunkSizeNotPacketMultiple {
        /// The size asked for.
        chunk_size: usize,
    },
}

/// Cuts a live byte stream into [`Chunk`]s.
///
/// Feed input with [`handle_input`](Self::handle_input) in whatever pieces
/// it arrives; the chunks do not depend on how it was split. After every
/// call to `handle_input`, [`flush`](Self::flush) or
/// [`finish`](Self::finish), drain [`poll_chunk`](Self::poll_chunk) until it
/// returns `None`.
///
/// A full chunk is ready at once. To bound latency on a slow stream, keep a
/// deadline for the partial chunk and call `flush` when it passes. The
/// partial chunk is new, so its deadline starts, after any call that leaves
/// [`partial_len`](Self::partial_len) non-zero and either made a chunk ready
/// or began with `partial_len` zero; `partial_len` zero means no deadline.
///
/// In [`Mode::MpegTs`] a packet is only taken once the first byte of the
/// next packet has arrived (see the framing rule below), so a flush leaves
/// the newest packet buffered; it goes into the next chunk.
///
/// # MPEG-TS framing
///
/// A packet is accepted when it starts with the sync byte and the byte 188
/// later does too (at [`finish`](Self::finish), a whole last packet needs no
/// successor). Other bytes are skipped up to the next sync byte and counted
/// in [`discarded_bytes`](Self::discarded_bytes). So a packet that lost
/// bytes is not passed on with its successor's head glued on (unless a 0x47
/// happens to sit where a sync byte would); the cost is that a whole packet
/// followed by inserted garbage is dropped too.
///
/// # Keyframes
///
/// A packet with the random_access_indicator set on a video PID closes the
/// chunk being filled and starts the next, so a viewer joining at a keyframe
/// chunk gets the access unit from its first packet. Video PIDs are learned
/// from the PAT and PMT; until they are known, or if no program lists
/// video, every random access point counts (muxers such as FFmpeg also flag
/// every audio PES start, which would otherwise split chunks many times a
/// second).
#[derive(Debug)]
pub struct Chunker {
    mode: Mode,
    framer: Framer,
    video: VideoPids,
    assembler: Assembler,
}

impl Chunker {
    /// A chunker cutting chunks of at most `chunk_size` bytes.
    ///
    /// Fails if `chunk_size` is zero, above [`MAX_CHUNK_SIZE`], or in
    /// [`Mode::MpegTs`] not a multiple of [`TS_PACKET_LEN`].
    pub fn new(mode: Mode, chunk_size: usize) -> Result<Self, ChunkerError> {
        if chunk_size == 0 {
            return Err(ChunkerError::ChunkSizeZero);
        }
        if chunk_size > MAX_CHUNK_SIZE {
            return Err(ChunkerError::ChunkSizeTooLarge { chunk_size });
        }
        if mode == Mode::MpegTs && !chunk_size.is_multiple_of(TS_PACKET_LEN) {
            return Err(ChunkerError::ChunkSizeNotPacketMultiple { chunk_size });
        }
        Ok(Self {
            mode,
            framer: Framer::default(),
            video: VideoPids::default(),
            assembler: Assembler::new(chunk_size),
        })
    }

    /// How the input is cut.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Largest chunk, in bytes.
    pub fn chunk_size(&self) -> usize {
        self.assembler.chunk_size
    }

    /// Takes the next bytes of the stream.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        match self.mode {
            Mode::MpegTs => {
                let Self {
                    framer,
                    video,
                    assembler,
                    ..
                } = self;
                framer.feed(bytes, &mut on_packet(video, assembler));
            }
            Mode::Opaque => self.assembler.push_bytes(bytes),
        }
    }

    /// The oldest chunk ready to be published.
    pub fn poll_chunk(&mut self) -> Option<Chunk> {
        self.assembler.ready.pop_front()
    }

    /// Makes the partial chunk ready now, short but valid (whole packets in
    /// [`Mode::MpegTs`]); for bounding latency. Input not yet taken stays
    /// buffered. Does nothing if no chunk is being filled.
    pub fn flush(&mut self) {
        self.assembler.emit();
    }

    /// End of input: takes what can still be taken, discards the rest (in
    /// [`Mode::MpegTs`], a trailing partial packet, counted in
    /// [`discarded_bytes`](Self::discarded_bytes)) and flushes. Input given
    /// afterwards is cut as a continuation of the same stream, except that
    /// MPEG-TS sync must be found again.
    pub fn finish(&mut self) {
        if self.mode == Mode::MpegTs {
            let Self {
                framer,
                video,
                assembler,
                ..
            } = self;
            framer.finish(&mut on_packet(video, assembler));
        }
        self.assembler.emit();
    }

    /// Gives back a chunk's payload for reuse, sparing an allocation per
    /// chunk. Optional.
    pub fn recycle(&mut self, mut payload: Vec<u8>) {
        let assembler = &mut self.assembler;
        if assembler.spare.len() < SPARE_BUFFERS && payload.capacity() >= assembler.chunk_size {
            payload.clear();
            assembler.spare.push(payload);
        }
    }

    /// Bytes in the chunk being filled: what [`flush`](Self::flush) would
    /// make ready now.
    pub fn partial_len(&self) -> usize {
        self.assembler.current.len()
    }

    /// Input bytes skipped because they were not part of a framed MPEG-TS
    /// packet. Always zero in [`Mode::Opaque`].
    pub fn discarded_bytes(&self) -> u64 {
        self.framer.discarded_bytes()
    }

    /// Times the MPEG-TS input went out of sync after packets had been
    /// accepted. Always zero in [`Mode::Opaque`].
    pub fn sync_losses(&self) -> u64 {
        self.framer.sync_losses()
    }
}

/// What happens to each packet the framer accepts.
fn on_packet<'s>(
    video: &'s mut VideoPids,
    assembler: &'s mut Assembler,
) -> impl FnMut(Packet<'_>) + 's {
    |packet| {
        video.handle_packet(packet);
        let keyframe = packet.random_access_indicator() && video.is_keyframe_pid(packet.pid());
        assembler.push_packet(packet.as_bytes(), keyframe);
    }
}

/// Fills chunks and queues them.
#[derive(Debug)]
struct Assembler {
    chunk_size: usize,
    /// The chunk being filled; never `chunk_size` bytes or more between
    /// calls.
    current: Vec<u8>,
    current_keyframe: bool,
    /// Whether a chunk has been made ready: the first is a keyframe.
    started: bool,
    ready: VecDeque<Chunk>,
    spare: Vec<Vec<u8>>,
}

impl Assembler {
    fn new(chunk_size: usize) -> Self {
        Self {
            chunk_size,
            current: Vec::with_capacity(chunk_size),
            current_keyframe: false,
            started: false,
            ready: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    fn push_packet(&mut self, packet: &[u8], keyframe: bool) {
        if keyframe {
            self.emit();
            self.current_keyframe = true;
        }
        self.current.extend_from_slice(packet);
        if self.current.len() >= self.chunk_size {
            self.emit();
        }
    }

    fn push_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = self.chunk_size.saturating_sub(self.current.len());
            let (head, tail) = bytes.split_at(room.min(bytes.len()));
            self.current.extend_from_slice(head);
            bytes = tail;
            if self.current.len() >= self.chunk_size {
                self.emit();
            }
        }
    }

    /// Makes the chunk being filled ready, if it has any bytes.
    fn emit(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let fresh = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.chunk_size));
        let payload = mem::replace(&mut self.current, fresh);
        let keyframe = mem::take(&mut self.current_keyframe) || !self.started;
        self.started = true;
        self.ready.push_back(Chunk { payload, keyframe });
    }
}

#[cfg(test)]
mod tests;
