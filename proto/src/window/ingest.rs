//! Ingest: DATA and PARITY checked against their block's signed manifest,
//! or held until it comes.
//!
//! A chunk whose MANIFEST is held is checked at once (a hash) and becomes
//! ready; one that arrives first waits in its slot for at most
//! `manifest_wait`, and only if its sender is trusted to carry the stream:
//! an unchecked chunk from anyone else could overwrite a real one. When
//! enough of a block is present, its lost chunks are rebuilt from parity.

use super::incoming::Incoming;
use super::rebuild;
use super::slots::SlotState;
use super::{Ingested, Ready, Window};
use crate::Time;
use crate::integrity::{Rejection, VerifiedDescriptor, chunk_hash, parity_hash};
use crate::transmit::SharedBuf;
use crate::wire::{
    DataView, DecodeError, Descriptor, ManifestView, MessageType, ParityView, StreamHeader,
    peek_type,
};

impl Window {
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
        self.ingest_incoming(now, Incoming::Borrowed(bytes), trusted)
    }

    /// As [`Window::ingest_from`], for a datagram in a shared buffer: a
    /// chunk, manifest or parity symbol kept is that buffer, not a copy of
    /// it (one more reference; the window never writes into it). Checked
    /// exactly as a borrowed datagram is.
    pub fn ingest_shared(
        &mut self,
        now: Time,
        buf: &SharedBuf,
        trusted: bool,
    ) -> Result<Ingested, Rejection> {
        self.ingest_incoming(now, Incoming::Shared(buf), trusted)
    }

    /// Ingests a datagram borrowed or shared (see [`Incoming`]).
    pub(crate) fn ingest_incoming(
        &mut self,
        now: Time,
        datagram: Incoming<'_>,
        trusted: bool,
    ) -> Result<Ingested, Rejection> {
        self.ingest_typed(now, peek_type(datagram.bytes())?, datagram, trusted)
    }

    /// As [`Window::ingest_from`], for a datagram whose header the caller
    /// already read (a relay routes by it): the rest is parsed here, once.
    pub fn ingest_header(
        &mut self,
        now: Time,
        header: StreamHeader<'_>,
        trusted: bool,
    ) -> Result<Ingested, Rejection> {
        let datagram = Incoming::Borrowed(header.as_bytes());
        self.ingest_typed(now, header.message_type(), datagram, trusted)
    }

    fn ingest_typed(
        &mut self,
        now: Time,
        ty: MessageType,
        datagram: Incoming<'_>,
        trusted: bool,
    ) -> Result<Ingested, Rejection> {
        let bytes = datagram.bytes();
        match ty {
            MessageType::Data => {
                self.ingest_data(now, DataView::new_checked(bytes)?, datagram, trusted)
            }
            MessageType::Parity => {
                self.ingest_parity(now, ParityView::new_checked(bytes)?, datagram, trusted)
            }
            MessageType::Manifest => {
                self.ingest_manifest(now, ManifestView::new_checked(bytes)?, datagram)
            }
            MessageType::Descriptor => {
                self.ingest_descriptor(now, Descriptor::parse(bytes)?, datagram, None)
            }
            other => Err(Rejection::Malformed(DecodeError::UnknownType(other as u8))),
        }
    }

    /// Ingests a DESCRIPTOR whose signature was checked already (a relay
    /// checks a new stream's first one before it creates the window): its
    /// signature is not checked again, everything else is.
    pub fn ingest_verified(
        &mut self,
        now: Time,
        descriptor: VerifiedDescriptor<'_>,
    ) -> Result<Ingested, Rejection> {
        let (d, bytes) = (*descriptor.descriptor(), descriptor.as_bytes());
        self.ingest_descriptor(now, d, Incoming::Borrowed(bytes), Some(descriptor))
    }

    /// `view` reads `datagram`.
    fn ingest_data(
        &mut self,
        now: Time,
        view: DataView<'_>,
        datagram: Incoming<'_>,
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
                return if slot.is_copy(view.as_bytes()) {
                    Ok(Ingested::Duplicate)
                } else {
                    Err(Rejection::Corrupted)
                };
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
            if !self.key.chunk_matches(
                data.flags.bits(),
                data.timestamp_us,
                data.payload,
                &expected,
            ) {
                return Err(Rejection::Corrupted);
            }
            self.chunks[ci].store(data.seq, datagram, now, SlotState::Verified, false);
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
            self.chunks[ci].store(data.seq, datagram, now, SlotState::Pending, false);
            self.chunks[ci].pending_hash =
                chunk_hash(data.flags.bits(), data.timestamp_us, data.payload);
            self.pending
                .push_back((now + self.config.manifest_wait, data.seq, data.block));
            Ok(Ingested::Pending)
        }
    }

    /// `view` reads `datagram`.
    fn ingest_parity(
        &mut self,
        now: Time,
        view: ParityView<'_>,
        datagram: Incoming<'_>,
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
                return Ok(Ingested::Duplicate);
            }
            if Some(parity_hash(p.symbol)) != slot.parity_hash(idx) {
                return Err(Rejection::Corrupted);
            }
            slot.store_parity(idx, datagram, SlotState::Verified);
            self.ready.push_back(Ready::Parity {
                block: p.block,
                index: p.index,
            });
            self.try_rebuild(now, p.block);
            Ok(Ingested::Verified)
        } else {
            let first_wait = !slot.awaiting;
            slot.awaiting = true;
            slot.store_parity(idx, datagram, SlotState::Pending);
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

    /// Whether `seq` is inside what the window may hold: not older than its
    /// tail and not absurdly far ahead of its head.
    pub(super) fn seq_in_range(&self, seq: u64) -> bool {
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

    pub(super) fn on_chunk_verified(
        &mut self,
        seq: u64,
        block: u64,
        keyframe: bool,
        rebuilt: bool,
    ) {
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

    /// Rebuilds the block's lost chunks when enough symbols are present.
    pub(super) fn try_rebuild(&mut self, now: Time, block: u64) {
        let bi = (block % self.blocks.len() as u64) as usize;
        let clubs = self.descriptor.as_ref().map_or(1, |(d, _)| d.clubs);
        let rebuilt = rebuild::with_rebuilder(|r| {
            r.run(
                &mut self.blocks[bi],
                &mut self.chunks,
                now,
                self.key.id(),
                clubs,
            )
        });
        for (seq, keyframe) in rebuilt {
            self.on_chunk_verified(seq, block, keyframe, true);
        }
    }
}
