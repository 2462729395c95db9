//! The window: a stream's recent chunks, manifests and parity, verified.
//!
//! Relays and viewers both ingest through a [`Window`]. It checks every
//! datagram once (a signature per block, a hash per chunk), holds chunks that
//! arrive before their manifest for at most `manifest_wait`, rebuilds lost
//! chunks from parity, and reports each newly verified item through
//! [`Window::poll_ready`]. Nothing unverified ever leaves it.
//!
//! Buffers: every slot owns one datagram-sized buffer, allocated the first
//! time the slot is used and reused for ever after, so once the window has
//! wrapped, ingest does not allocate. A datagram is copied once, from the
//! caller's receive buffer into its slot; senders then borrow the slot's
//! bytes for every subscriber.

mod guard;
mod rebuild;
mod run;
mod slots;

use std::collections::VecDeque;
use std::time::Duration;

use crate::integrity::{Rejection, StreamKey, chunk_hash, parity_hash};
use crate::transmit::SharedBuf;
use crate::wire::{
    DataView, DecodeError, Descriptor, ManifestView, MessageType, ParityView, peek_type,
};
use crate::{StreamId, Time, fec};
pub(crate) use guard::Guard;
pub use guard::{FAILED_BURST, FAILED_PER_SEC, TRIES_PER_BLOCK};
pub use run::{CLOCK_SKEW, MAX_AGE, is_fresh};
use run::{Run, Standing};
use slots::{BlockSlot, ChunkSlot, SlotState};

/// Window sizes and timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// Chunks kept; older ones are forgotten. Blocks kept: a quarter of it.
    pub capacity: usize,
    /// How long a chunk or parity symbol may wait for its block's manifest.
    pub manifest_wait: Duration,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            capacity: 2048,
            manifest_wait: Duration::from_millis(500),
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

/// A mirror keeps this fraction of its window less than the owner (1/8):
/// it lets go of each buffer before the owner wants it back for a newer
/// chunk, so the owner's slots are reused rather than reallocated.
const MIRROR_MARGIN: u64 = 8;

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
    /// The DATA datagram.
    pub datagram: &'a [u8],
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
    rebuild: rebuild::Rebuilder,
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
            rebuild: rebuild::Rebuilder::default(),
            stats: WindowStats::default(),
        }
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

    /// Takes an item that another window of the same stream (the one that
    /// ingests it) already verified, sharing its buffer rather than copying
    /// or checking it again: how the workers of one relay mirror the
    /// ingesting worker's window. The item becomes ready here as it did
    /// there. Only for buffers from [`Window::ready_buf`] or
    /// [`Window::descriptor_buf`] of a window with the same key and
    /// capacity. A mirror holds the newest seven eighths of the window
    /// ([`MIRROR_MARGIN`]).
    pub fn adopt(&mut self, now: Time, item: Adopt, buf: SharedBuf) -> Result<(), Rejection> {
        match item {
            Adopt::Descriptor => {
                let d = Descriptor::parse(&buf)?;
                // Follow the owner's run, so that a subscriber here starts
                // where one on the owner would.
                if self.run.standing(d.epoch) == Standing::NewRun {
                    self.run = Run {
                        epoch: Some(d.epoch),
                        floor_seq: d.epoch,
                        floor_block: d.epoch,
                    };
                }
                self.descriptor = Some((d, buf));
            }
            Adopt::Ready(Ready::Manifest { block }) => {
                let man = *ManifestView::new_checked(&buf)?.fields();
                let bi = (block % self.blocks.len() as u64) as usize;
                self.blocks[bi].claim(block);
                self.blocks[bi].adopt_manifest(SharedBuf::clone(&buf), &man);
                // Chunks adopted before their manifest are in the window
                // already: mark them present.
                for i in 0..man.k {
                    let seq = man.first_seq + u64::from(i);
                    if self.chunk(seq).is_some() {
                        self.blocks[bi].have_data |= 1u64 << i;
                    }
                }
                self.stats.manifests_verified += 1;
                self.note_manifest(block);
                self.ready.push_back(Ready::Manifest { block });
                let n = self.blocks.len() as u64;
                // Block ids and sequence numbers are the publisher's word,
                // up to u64::MAX: no release near the top.
                let old = block
                    .checked_add(n / MIRROR_MARGIN)
                    .and_then(|b| b.checked_sub(n));
                if let Some(old) = old {
                    let slot = &mut self.blocks[(old % n) as usize];
                    if slot.block == old {
                        slot.release();
                    }
                }
            }
            Adopt::Ready(Ready::Data { seq, rebuilt }) => {
                let view = DataView::new_checked(&buf)?;
                let d = view.fields();
                let (block, keyframe) = (d.block, d.flags.keyframe());
                let ci = (seq % self.chunks.len() as u64) as usize;
                self.chunks[ci].adopt(seq, SharedBuf::clone(&buf), now, rebuilt);
                self.on_chunk_verified(seq, block, keyframe, rebuilt);
                let n = self.chunks.len() as u64;
                let old = seq
                    .checked_add(n / MIRROR_MARGIN)
                    .and_then(|s| s.checked_sub(n));
                if let Some(old) = old {
                    let slot = &mut self.chunks[(old % n) as usize];
                    if slot.seq == old {
                        slot.release();
                    }
                }
            }
            Adopt::Ready(Ready::Parity { block, index }) => {
                let bi = (block % self.blocks.len() as u64) as usize;
                self.blocks[bi].claim(block);
                self.blocks[bi].adopt_parity(usize::from(index), buf);
                self.ready.push_back(Ready::Parity { block, index });
            }
            // A mirror follows its owner's run by the items it adopts:
            // a later run's sequence numbers sort after the earlier's.
            Adopt::Ready(Ready::AwaitingManifest { .. } | Ready::Reset { .. }) => {}
        }
        Ok(())
    }

    fn chunk_slot(&self, seq: u64) -> Option<&ChunkSlot> {
        self.chunks.get((seq % self.chunks.len() as u64) as usize)
    }

    fn block_slot(&self, block: u64) -> Option<&BlockSlot> {
        self.blocks.get((block % self.blocks.len() as u64) as usize)
    }

    /// Ingests one datagram of type DATA, PARITY, MANIFEST or DESCRIPTOR
    /// from a trusted source.
    pub fn ingest(&mut self, now: Time, bytes: &[u8]) -> Result<Ingested, Rejection> {
        self.ingest_from(now, bytes, true)
    }

    /// Ingests one datagram; `trusted` says whether its sender is known to
    /// carry the stream. DATA and PARITY from an untrusted sender are taken
    /// only once their block's MANIFEST is verified (so they are checked at
    /// once): before that they would sit unchecked in a slot, where a
    /// forger could overwrite a real chunk or move the slot to another
    /// block ([`Rejection::Unproven`]).
    pub fn ingest_from(
        &mut self,
        now: Time,
        bytes: &[u8],
        trusted: bool,
    ) -> Result<Ingested, Rejection> {
        match peek_type(bytes)? {
            MessageType::Data => self.ingest_data(now, DataView::new_checked(bytes)?, trusted),
            MessageType::Parity => {
                self.ingest_parity(now, ParityView::new_checked(bytes)?, trusted)
            }
            MessageType::Manifest => self.ingest_manifest(now, ManifestView::new_checked(bytes)?),
            MessageType::Descriptor => self.ingest_descriptor(now, bytes),
            other => Err(Rejection::Malformed(DecodeError::UnknownType(other as u8))),
        }
    }

    fn ingest_descriptor(&mut self, now: Time, bytes: &[u8]) -> Result<Ingested, Rejection> {
        let d = Descriptor::parse(bytes)?;
        let standing = self.run.standing(d.epoch);
        match standing {
            Standing::Behind => return Err(Rejection::Replayed),
            Standing::Current => {
                if let Some((current, raw)) = &self.descriptor {
                    if raw.as_slice() == bytes {
                        return Err(Rejection::Duplicate);
                    }
                    if d.epoch == current.epoch
                        && (d.revision, d.issued_at_us) <= (current.revision, current.issued_at_us)
                    {
                        return Err(Rejection::Replayed);
                    }
                }
            }
            Standing::NewRun => {}
        }
        self.checked(now, None, false, |key| key.verify_descriptor(bytes, &d))?;
        if standing == Standing::NewRun {
            if !is_fresh(now, d.issued_at_us) {
                return Err(Rejection::Stale);
            }
            self.start_run(d.epoch, d.epoch, d.epoch);
        }
        // Reuse the previous descriptor's buffer when nobody else holds it.
        let mut buf = self.descriptor.take().map(|(_, b)| b).unwrap_or_default();
        slots::writable(&mut buf).extend_from_slice(bytes);
        self.descriptor = Some((d, buf));
        Ok(Ingested::Descriptor)
    }

    /// Runs a signature check if the guard allows it (see [`guard`]).
    fn checked(
        &mut self,
        now: Time,
        block: Option<u64>,
        evidence: bool,
        check: impl FnOnce(&StreamKey) -> Result<(), Rejection>,
    ) -> Result<(), Rejection> {
        if !self.guard.may_check(now, block, evidence) {
            self.stats.throttled += 1;
            return Err(Rejection::Throttled);
        }
        let result = check(&self.key);
        if result == Err(Rejection::Forged) {
            self.guard.failed(block);
            self.stats.failed_checks += 1;
        }
        result
    }

    /// Follows run `epoch` from `floor_seq` and `floor_block` on, forgetting
    /// everything held (see [`run`]). Slots keep their buffers.
    fn start_run(&mut self, epoch: u64, floor_seq: u64, floor_block: u64) {
        let had_run = self.run.epoch.is_some();
        self.run = Run {
            epoch: Some(epoch),
            floor_seq,
            floor_block,
        };
        if self
            .descriptor
            .as_ref()
            .is_some_and(|(d, _)| d.epoch < epoch)
        {
            self.descriptor = None;
        }
        if !had_run {
            // The first run seen: nothing to forget but items held, which
            // the floor and the manifests still sort out.
            return;
        }
        for c in &mut self.chunks {
            c.state = SlotState::Empty;
        }
        for b in &mut self.blocks {
            b.forget();
        }
        let previous = self.newest_seq.take();
        self.newest_block = None;
        self.latest_keyframe = None;
        self.pending.clear();
        // Items of the old run not yet drained are gone with it.
        self.ready.clear();
        self.stats.resets += 1;
        self.ready.push_back(Ready::Reset {
            epoch,
            floor_seq,
            previous,
        });
    }

    /// Whether `seq` is inside what the window may hold: not older than its
    /// tail and not absurdly far ahead of its head.
    fn seq_in_range(&self, seq: u64) -> bool {
        if seq < self.run.floor_seq {
            return false;
        }
        match self.newest_seq {
            None => true,
            Some(newest) => {
                seq >= self.oldest_seq()
                    && seq <= newest.saturating_add(self.config.capacity as u64)
            }
        }
    }

    fn ingest_data(
        &mut self,
        now: Time,
        view: DataView<'_>,
        trusted: bool,
    ) -> Result<Ingested, Rejection> {
        let data = *view.fields();
        if data.stream != self.key.id() {
            return Err(Rejection::WrongStream);
        }
        if let Some((d, _)) = &self.descriptor
            && data.club != d.club_of(data.seq)
        {
            return Err(Rejection::WrongStream);
        }
        if !self.seq_in_range(data.seq) || self.run.below_floor(data.seq, data.block) {
            return Err(Rejection::Replayed);
        }
        let cap = self.chunks.len() as u64;
        let ci = (data.seq % cap) as usize;
        let bi = (data.block % self.blocks.len() as u64) as usize;
        {
            let slot = &self.chunks[ci];
            if slot.seq == data.seq && slot.state == SlotState::Verified {
                // A copy that differs from the verified chunk was altered
                // on its way: blame its sender rather than excuse it as a
                // duplicate.
                return Err(if slot.is_copy(view.as_bytes()) {
                    Rejection::Duplicate
                } else {
                    Rejection::Corrupted
                });
            }
            if slot.state == SlotState::Verified
                && self.newest_seq.is_some_and(|n| slot.seq + cap > n)
                && slot.seq > data.seq
            {
                return Err(Rejection::Replayed);
            }
        }
        let block = &self.blocks[bi];
        if block.block == data.block && block.manifest_verified {
            let expected = block
                .data_hash(data.seq, data.index)
                .ok_or(Rejection::Corrupted)?;
            if chunk_hash(data.flags.bits(), data.timestamp_us, data.payload) != expected {
                return Err(Rejection::Corrupted);
            }
            self.chunks[ci].store(data.seq, view.as_bytes(), now, SlotState::Verified, false);
            self.on_chunk_verified(data.seq, data.block, data.flags.keyframe(), false);
            self.try_rebuild(now, data.block);
            Ok(Ingested::Verified)
        } else {
            if block.block > data.block && block.manifest_verified {
                // The block's slot has moved on: this chunk is too old to check.
                return Err(Rejection::Replayed);
            }
            if !trusted {
                return Err(Rejection::Unproven);
            }
            if self.too_far_ahead(data.block) {
                return Err(Rejection::Replayed);
            }
            let first_wait = !(self.blocks[bi].block == data.block && self.blocks[bi].awaiting);
            self.blocks[bi].claim(data.block);
            self.blocks[bi].awaiting = true;
            if first_wait {
                self.ready
                    .push_back(Ready::AwaitingManifest { block: data.block });
            }
            self.chunks[ci].store(data.seq, view.as_bytes(), now, SlotState::Pending, false);
            self.chunks[ci].pending_hash =
                chunk_hash(data.flags.bits(), data.timestamp_us, data.payload);
            self.pending
                .push_back((now + self.config.manifest_wait, data.seq, data.block));
            Ok(Ingested::Pending)
        }
    }

    fn note_manifest(&mut self, block: u64) {
        if self.newest_block.is_none_or(|b| block > b) {
            self.newest_block = Some(block);
        }
    }

    /// Whether an unverified DATA or PARITY of `block` is too far ahead to
    /// hold: it would claim the slot of a block still in flight (slots are
    /// reused modulo their count), so a forger could make the window
    /// refuse that block's real MANIFEST. Real traffic runs at most a block
    /// or two ahead of the newest MANIFEST.
    fn too_far_ahead(&self, block: u64) -> bool {
        let lookahead = self.blocks.len() as u64 / 2;
        self.newest_block
            .is_some_and(|b| block > b.saturating_add(lookahead))
    }

    fn on_chunk_verified(&mut self, seq: u64, block: u64, keyframe: bool, rebuilt: bool) {
        if self.newest_seq.is_none_or(|n| seq > n) {
            self.newest_seq = Some(seq);
        }
        if keyframe && self.latest_keyframe.is_none_or(|k| seq > k) {
            self.latest_keyframe = Some(seq);
        }
        let bi = (block % self.blocks.len() as u64) as usize;
        if let Some(b) = self.blocks.get_mut(bi)
            && b.block == block
            && let Some(i) = seq.checked_sub(b.first_seq)
        {
            b.have_data |= 1u64.checked_shl(i as u32).unwrap_or(0);
        }
        if rebuilt {
            self.stats.chunks_rebuilt += 1;
        } else {
            self.stats.chunks_verified += 1;
        }
        self.ready.push_back(Ready::Data { seq, rebuilt });
    }

    fn ingest_parity(
        &mut self,
        now: Time,
        view: ParityView<'_>,
        trusted: bool,
    ) -> Result<Ingested, Rejection> {
        let p = *view.fields();
        if p.stream != self.key.id() {
            return Err(Rejection::WrongStream);
        }
        if !self.seq_in_range(p.first_seq) || self.run.below_floor(p.first_seq, p.block) {
            return Err(Rejection::Replayed);
        }
        let bi = (p.block % self.blocks.len() as u64) as usize;
        let slot = &mut self.blocks[bi];
        if slot.block > p.block && (slot.manifest_verified || slot.awaiting) {
            return Err(Rejection::Replayed);
        }
        if !(trusted || slot.block == p.block && slot.manifest_verified) {
            return Err(Rejection::Unproven);
        }
        let far = self.too_far_ahead(p.block);
        let slot = &mut self.blocks[bi];
        if !(slot.block == p.block && slot.manifest_verified) && far {
            return Err(Rejection::Replayed);
        }
        slot.claim(p.block);
        let idx = usize::from(p.index);
        if slot.manifest_verified {
            if p.k != slot.k
                || p.m != slot.m
                || p.first_seq != slot.first_seq
                || p.symbol.len() != usize::from(slot.symbol_len)
            {
                return Err(Rejection::Corrupted);
            }
            if slot
                .parity
                .get(idx)
                .is_some_and(|s| s.state == SlotState::Verified)
            {
                return Err(Rejection::Duplicate);
            }
            if Some(parity_hash(p.symbol)) != slot.parity_hash(idx) {
                return Err(Rejection::Corrupted);
            }
            slot.store_parity(idx, view.as_bytes(), SlotState::Verified);
            self.ready.push_back(Ready::Parity {
                block: p.block,
                index: p.index,
            });
            self.try_rebuild(now, p.block);
            Ok(Ingested::Verified)
        } else {
            let first_wait = !slot.awaiting;
            slot.awaiting = true;
            slot.store_parity(idx, view.as_bytes(), SlotState::Pending);
            if let Some(ps) = slot.parity.get_mut(idx) {
                ps.pending_hash = parity_hash(p.symbol);
            }
            if first_wait {
                self.ready
                    .push_back(Ready::AwaitingManifest { block: p.block });
            }
            self.pending
                .push_back((now + self.config.manifest_wait, u64::MAX, p.block));
            Ok(Ingested::Pending)
        }
    }

    fn ingest_manifest(
        &mut self,
        now: Time,
        view: ManifestView<'_>,
    ) -> Result<Ingested, Rejection> {
        let man = *view.fields();
        if man.stream != self.key.id() {
            return Err(Rejection::WrongStream);
        }
        let mut standing = self.run.standing(man.epoch);
        if standing == Standing::Current {
            if self.run.below_floor(man.first_seq, man.block) {
                return Err(Rejection::Replayed);
            }
            // Beyond the window ahead: only the publisher can sign it, so
            // the run has moved on; the window follows if it is fresh.
            let ahead = self
                .newest_seq
                .is_some_and(|n| man.first_seq > n.saturating_add(self.config.capacity as u64));
            if ahead {
                standing = Standing::NewRun;
            }
        }
        let bi = (man.block % self.blocks.len() as u64) as usize;
        match standing {
            Standing::Behind => return Err(Rejection::Replayed),
            Standing::Current => {
                if !self.seq_in_range(man.first_seq) {
                    return Err(Rejection::Replayed);
                }
                let slot = &self.blocks[bi];
                if slot.block == man.block && slot.manifest_verified {
                    return Err(Rejection::Duplicate);
                }
                if slot.block > man.block && (slot.manifest_verified || slot.awaiting) {
                    return Err(Rejection::Replayed);
                }
            }
            Standing::NewRun => {}
        }
        // One signature check per block, and only for a block not yet
        // held; a flood of forgeries is bounded by the guard.
        let (block, evidence) = match standing {
            Standing::Current => (
                Some(man.block),
                self.blocks[bi].agrees_with_pending(&man, &self.chunks),
            ),
            _ => (None, false),
        };
        self.checked(now, block, evidence, |key| key.verify_manifest(&view))?;
        if standing == Standing::NewRun {
            if !is_fresh(now, man.timestamp_us) {
                return Err(Rejection::Stale);
            }
            if self.run.standing(man.epoch) == Standing::NewRun {
                // A later run (or the first seen) starts at its epoch.
                self.start_run(man.epoch, man.epoch, man.epoch);
            } else {
                self.start_run(man.epoch, man.first_seq, man.block);
            }
        }
        let slot = &mut self.blocks[bi];
        slot.claim(man.block);
        slot.set_manifest(view.as_bytes(), &man);
        self.stats.manifests_verified += 1;
        self.note_manifest(man.block);
        self.ready.push_back(Ready::Manifest { block: man.block });
        self.verify_waiting(man.block, bi);
        self.try_rebuild(now, man.block);
        Ok(Ingested::Verified)
    }

    /// Checks chunks and parity that arrived before their manifest.
    fn verify_waiting(&mut self, block: u64, bi: usize) {
        let (first_seq, k, m) = {
            let b = &self.blocks[bi];
            (b.first_seq, b.k, b.m)
        };
        let cap = self.chunks.len() as u64;
        for seq in first_seq..first_seq + u64::from(k) {
            let ci = (seq % cap) as usize;
            let slot = &self.chunks[ci];
            if slot.seq != seq || slot.state != SlotState::Pending {
                continue;
            }
            // The chunk's hash was computed when it arrived (`pending_hash`).
            let ok = DataView::new_checked(&slot.bytes).ok().is_some_and(|v| {
                let d = v.fields();
                d.block == block
                    && self.blocks[bi].data_hash(seq, d.index) == Some(slot.pending_hash)
            });
            if ok {
                let keyframe = slot.as_ref().keyframe;
                self.chunks[ci].state = SlotState::Verified;
                self.on_chunk_verified(seq, block, keyframe, false);
            } else {
                self.chunks[ci].state = SlotState::Empty;
            }
        }
        for index in 0..m {
            let b = &self.blocks[bi];
            let Some(p) = b.parity.get(usize::from(index)) else {
                continue;
            };
            if p.state != SlotState::Pending {
                continue;
            }
            let ok = ParityView::new_checked(&p.bytes).ok().is_some_and(|v| {
                let f = v.fields();
                f.first_seq == b.first_seq
                    && f.k == b.k
                    && f.m == b.m
                    && f.symbol.len() == usize::from(b.symbol_len)
                    && Some(p.pending_hash) == b.parity_hash(usize::from(index))
            });
            let b = &mut self.blocks[bi];
            if let Some(p) = b.parity.get_mut(usize::from(index)) {
                p.state = if ok {
                    SlotState::Verified
                } else {
                    SlotState::Empty
                };
            }
            if ok {
                self.ready.push_back(Ready::Parity { block, index });
            }
        }
        self.blocks[bi].awaiting = false;
    }

    /// Rebuilds the block's lost chunks when enough symbols are present.
    fn try_rebuild(&mut self, now: Time, block: u64) {
        let bi = (block % self.blocks.len() as u64) as usize;
        let clubs = self.descriptor.as_ref().map_or(1, |(d, _)| d.clubs);
        let rebuilt = self.rebuild.run(
            &mut self.blocks[bi],
            &mut self.chunks,
            now,
            self.key.id(),
            clubs,
        );
        for (seq, keyframe) in rebuilt {
            self.on_chunk_verified(seq, block, keyframe, true);
        }
    }

    /// When [`Window::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.pending.front().map(|&(t, _, _)| t)
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
