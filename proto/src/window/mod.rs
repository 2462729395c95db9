//! The window: a stream's recent chunks, manifests and parity, verified.
//!
//! Relays and viewers both ingest through a [`Window`]. It checks every
//! datagram once (a signature per block, a hash per chunk), holds chunks that
//! arrive before their manifest for at most `manifest_wait`, rebuilds lost
//! chunks from parity, and reports each newly verified item through
//! [`Window::poll_ready`]. Nothing unverified ever leaves it.
//!
//! This file holds the window and what it lends out; DATA and PARITY
//! come in through [`ingest`], what the publisher signs (DESCRIPTOR,
//! MANIFEST, the runs they start) through [`signed`], and items another
//! window verified through [`mirror`].
//!
//! Buffers: every slot owns one datagram-sized buffer, allocated the first
//! time the slot is used and reused for ever after, so once the window has
//! wrapped, ingest does not allocate. A datagram is copied once, from the
//! caller's receive buffer into its slot; senders then borrow the slot's
//! bytes for every subscriber. A caller that holds the datagram in a
//! [`SharedBuf`] already ([`Window::ingest_shared`]: the simulator, where
//! thousands of windows hold the same chunk) hands it over instead, and
//! the slot keeps that buffer rather than a copy (see [`incoming`]).

mod guard;
mod incoming;
mod ingest;
mod mirror;
mod rebuild;
mod run;
mod signed;
mod slots;

use std::collections::VecDeque;
use std::time::Duration;

use crate::integrity::StreamKey;
use crate::transmit::SharedBuf;
use crate::wire::Descriptor;
use crate::{StreamId, Time, WallClock, fec};
pub(crate) use guard::Guard;
pub use guard::{FAILED_BURST, FAILED_PER_SEC, TRIES_PER_BLOCK};
pub(crate) use incoming::Incoming;
use run::Run;
pub use run::{CLOCK_SKEW, MAX_AGE, is_fresh};
use slots::{BlockSlot, ChunkSlot, SlotState};

/// Window sizes and timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// Chunks kept; older ones are forgotten. Blocks kept: a quarter of it.
    pub capacity: usize,
    /// How long a chunk or parity symbol may wait for its block's manifest.
    pub manifest_wait: Duration,
    /// The receiver's wall clock, against which signed times are judged
    /// fresh ([`is_fresh`]); the default maps `Time` *t* to `WallTime` *t*.
    pub wall_clock: WallClock,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            capacity: 2048,
            manifest_wait: Duration::from_millis(500),
            wall_clock: WallClock::default(),
        }
    }
}

/// Something that just became verified and may be forwarded or played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// A block's manifest.
    Manifest {
        /// The block.
        block: u64,
    },
    /// A DATA chunk, received or rebuilt.
    Data {
        /// Its sequence number.
        seq: u64,
        /// Rebuilt from parity rather than received.
        rebuilt: bool,
    },
    /// A parity symbol.
    Parity {
        /// The block.
        block: u64,
        /// Its index among the block's parity.
        index: u8,
    },
    /// A chunk or symbol is waiting for the manifest of this block, which
    /// has not arrived: the owner may ask for it.
    AwaitingManifest {
        /// The block.
        block: u64,
    },
    /// The window moved to a later run of the publisher, or jumped ahead
    /// within its run (see [`run`]): everything it held is gone, and
    /// nothing below `floor_seq` will be taken again. A player resumes
    /// there after a gap.
    Reset {
        /// The run now followed.
        epoch: u64,
        /// Where the window now starts.
        floor_seq: u64,
        /// The newest `seq` held before.
        previous: Option<u64>,
    },
}
/// An item handed from the window that verified it to a mirror (see
/// [`Window::adopt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopt {
    /// A verified chunk, manifest or parity symbol.
    Ready(Ready),
    /// The stream's newest verified descriptor.
    Descriptor,
}

/// What ingest did with a datagram it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Verified and stored.
    Verified,
    /// Stored until its manifest arrives.
    Pending,
    /// The stream's descriptor was updated.
    Descriptor,
    /// An exact copy of something already verified (network duplication,
    /// the publisher's repeated manifest, a repair that crossed the
    /// original): harmless, and nothing changed. Not a refusal, so not a
    /// drop; counted apart.
    Duplicate,
}

/// Counters of what the window did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowStats {
    /// Chunks verified on arrival.
    pub chunks_verified: u64,
    /// Chunks rebuilt from parity.
    pub chunks_rebuilt: u64,
    /// Manifests whose signature verified.
    pub manifests_verified: u64,
    /// Chunks or symbols dropped because their manifest never came.
    pub manifest_missing: u64,
    /// Times the window moved to a later run or jumped ahead in its run.
    pub resets: u64,
    /// Signature checks that failed (forged MANIFESTs and DESCRIPTORs).
    pub failed_checks: u64,
    /// MANIFESTs and DESCRIPTORs refused unchecked (THROTTLED).
    pub throttled: u64,
}

/// A verified chunk, borrowed from the window.
#[derive(Debug, Clone, Copy)]
pub struct ChunkRef<'a> {
    /// The DATA datagram, as the window holds it (shared: keeping it
    /// costs a reference count, not a copy).
    pub datagram: &'a SharedBuf,
    /// Sequence number.
    pub seq: u64,
    /// Keyframe flag.
    pub keyframe: bool,
    /// End-of-stream flag.
    pub end_of_stream: bool,
    /// Publisher timestamp.
    pub timestamp_us: u64,
    /// When it was verified (or rebuilt) here.
    pub arrived: Time,
    /// Rebuilt from parity.
    pub rebuilt: bool,
    /// The block it belongs to.
    pub block: u64,
}

impl ChunkRef<'_> {
    /// The chunk's payload.
    pub fn payload(&self) -> &[u8] {
        self.datagram
            .get(crate::wire::DATA_HEADER_LEN..)
            .unwrap_or_default()
    }
}

/// One stream's verified window. See the module docs.
#[derive(Debug)]
pub struct Window {
    key: StreamKey,
    config: WindowConfig,
    descriptor: Option<(Descriptor, SharedBuf)>,
    chunks: Vec<ChunkSlot>,
    blocks: Vec<BlockSlot>,
    newest_seq: Option<u64>,
    /// The newest block whose MANIFEST verified: unverified items may not
    /// claim a block slot more than half the slots beyond it.
    newest_block: Option<u64>,
    latest_keyframe: Option<u64>,
    /// The publisher's run followed, and where it starts.
    run: Run,
    /// Bounds the signature checks that fail.
    guard: Guard,
    pending: VecDeque<(Time, u64, u64)>,
    ready: VecDeque<Ready>,
    stats: WindowStats,
}

impl Window {
    /// An empty window for the stream `key` names.
    pub fn new(key: StreamKey, config: WindowConfig) -> Self {
        let capacity = config.capacity.max(fec::MAX_K * 2);
        let blocks = (capacity / 4).max(16);
        Self {
            key,
            config: WindowConfig { capacity, ..config },
            descriptor: None,
            chunks: (0..capacity).map(|_| ChunkSlot::default()).collect(),
            blocks: (0..blocks).map(|_| BlockSlot::default()).collect(),
            newest_seq: None,
            newest_block: None,
            latest_keyframe: None,
            run: Run::default(),
            guard: Guard::default(),
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            stats: WindowStats::default(),
        }
    }

    /// Sets the wall clock signed times are judged by: see
    /// [`WindowConfig::wall_clock`].
    pub fn set_wall_clock(&mut self, clock: WallClock) {
        self.config.wall_clock = clock;
    }

    /// The wall clock signed times are judged by.
    pub fn wall_clock(&self) -> WallClock {
        self.config.wall_clock
    }

    /// The stream.
    pub fn stream(&self) -> StreamId {
        self.key.id()
    }

    /// The latest verified descriptor and its datagram.
    pub fn descriptor(&self) -> Option<(&Descriptor, &[u8])> {
        self.descriptor.as_ref().map(|(d, b)| (d, b.as_slice()))
    }

    /// Counters.
    pub fn stats(&self) -> WindowStats {
        self.stats
    }

    /// Highest verified sequence number.
    pub fn newest_seq(&self) -> Option<u64> {
        self.newest_seq
    }

    /// Highest verified keyframe still in the window.
    pub fn latest_keyframe(&self) -> Option<u64> {
        self.latest_keyframe.filter(|&s| self.chunk(s).is_some())
    }

    /// Oldest sequence number the window can still hold.
    pub fn oldest_seq(&self) -> u64 {
        self.newest_seq.map_or(self.run.floor_seq, |n| {
            (n + 1)
                .saturating_sub(self.config.capacity as u64)
                .max(self.run.floor_seq)
        })
    }

    /// The publisher's run the window follows (its epoch), once a
    /// DESCRIPTOR or MANIFEST verified.
    pub fn epoch(&self) -> Option<u64> {
        self.run.epoch
    }

    /// The next verified item to forward or play.
    pub fn poll_ready(&mut self) -> Option<Ready> {
        self.ready.pop_front()
    }

    /// A verified chunk.
    pub fn chunk(&self, seq: u64) -> Option<ChunkRef<'_>> {
        let slot = self.chunk_slot(seq)?;
        (slot.seq == seq && slot.state == SlotState::Verified).then(|| slot.as_ref())
    }

    /// A verified manifest's datagram.
    pub fn manifest(&self, block: u64) -> Option<&[u8]> {
        let slot = self.block_slot(block)?;
        (slot.block == block && slot.manifest_verified).then_some(slot.manifest.as_slice())
    }

    /// The last sequence number the newest verified MANIFEST lists: a
    /// chunk up to it may be missing even when nothing newer has come.
    pub fn newest_listed_seq(&self) -> Option<u64> {
        let (first, k) = self.block_span(self.newest_block?)?;
        first.checked_add(u64::from(k).checked_sub(1)?)
    }

    /// A verified manifest's first sequence number and chunk count.
    pub fn block_span(&self, block: u64) -> Option<(u64, u8)> {
        let slot = self.block_slot(block)?;
        (slot.block == block && slot.manifest_verified).then_some((slot.first_seq, slot.k))
    }

    /// A verified parity symbol's datagram.
    pub fn parity(&self, block: u64, index: u8) -> Option<&[u8]> {
        self.parity_buf(block, index).map(|b| b.as_slice())
    }

    /// The shared buffer holding a verified chunk's DATA datagram, for
    /// senders that must keep it past the next call (see [`SharedBuf`]).
    pub fn chunk_buf(&self, seq: u64) -> Option<&SharedBuf> {
        let slot = self.chunk_slot(seq)?;
        (slot.seq == seq && slot.state == SlotState::Verified).then_some(&slot.bytes)
    }

    /// The shared buffer holding a verified manifest.
    pub fn manifest_buf(&self, block: u64) -> Option<&SharedBuf> {
        let slot = self.block_slot(block)?;
        (slot.block == block && slot.manifest_verified).then_some(&slot.manifest)
    }

    /// The shared buffer holding a verified parity symbol.
    pub fn parity_buf(&self, block: u64, index: u8) -> Option<&SharedBuf> {
        let slot = self.block_slot(block)?;
        if slot.block != block {
            return None;
        }
        let p = slot.parity.get(usize::from(index))?;
        (p.state == SlotState::Verified).then_some(&p.bytes)
    }

    /// The shared buffer holding the verified descriptor.
    pub fn descriptor_buf(&self) -> Option<&SharedBuf> {
        self.descriptor.as_ref().map(|(_, b)| b)
    }

    /// The shared buffer behind a ready item, to hand to a mirror.
    pub fn ready_buf(&self, ready: Ready) -> Option<&SharedBuf> {
        match ready {
            Ready::Manifest { block } => self.manifest_buf(block),
            Ready::Data { seq, .. } => self.chunk_buf(seq),
            Ready::Parity { block, index } => self.parity_buf(block, index),
            Ready::AwaitingManifest { .. } | Ready::Reset { .. } => None,
        }
    }

    fn chunk_slot(&self, seq: u64) -> Option<&ChunkSlot> {
        self.chunks.get((seq % self.chunks.len() as u64) as usize)
    }

    fn block_slot(&self, block: u64) -> Option<&BlockSlot> {
        self.blocks.get((block % self.blocks.len() as u64) as usize)
    }

    /// When [`Window::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.pending.front().map(|&(t, _, _)| t)
    }

    /// Forgets the deadlines at the front of the queue that nothing waits
    /// on any more (the MANIFEST came, or the slot moved on), which
    /// [`Window::handle_timeout`] would pass over: left there, each would
    /// wake the owner for nothing half a second after its chunk came.
    pub(super) fn prune_pending(&mut self) {
        while let Some(&(_, seq, block)) = self.pending.front() {
            let waiting = if seq == u64::MAX {
                self.block_slot(block)
                    .is_some_and(|b| b.block == block && !b.manifest_verified)
            } else {
                self.chunk_slot(seq)
                    .is_some_and(|c| c.seq == seq && c.state == SlotState::Pending)
            };
            if waiting {
                break;
            }
            self.pending.pop_front();
        }
    }

    /// Drops chunks and symbols whose manifest did not come in time.
    pub fn handle_timeout(&mut self, now: Time) {
        while let Some(&(deadline, seq, block)) = self.pending.front() {
            if deadline > now {
                break;
            }
            self.pending.pop_front();
            if seq == u64::MAX {
                let bi = (block % self.blocks.len() as u64) as usize;
                let b = &mut self.blocks[bi];
                if b.block == block && !b.manifest_verified {
                    for p in &mut b.parity {
                        if p.state == SlotState::Pending {
                            p.state = SlotState::Empty;
                            self.stats.manifest_missing += 1;
                        }
                    }
                    b.awaiting = false;
                }
                continue;
            }
            let ci = (seq % self.chunks.len() as u64) as usize;
            let slot = &mut self.chunks[ci];
            if slot.seq == seq && slot.state == SlotState::Pending {
                slot.state = SlotState::Empty;
                self.stats.manifest_missing += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod run_tests;

#[cfg(test)]
mod flood_tests;

#[cfg(test)]
mod shared_tests;
