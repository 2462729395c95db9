//! What the publisher signs: DESCRIPTORs and MANIFESTs, the runs they
//! start, and the chunks and parity that waited for them.
//!
//! One signature check per block, and only for a block not yet held; the
//! checks that fail are bounded by the [`Guard`](super::Guard). A signed
//! item from a later run of the publisher (a higher epoch) moves the window
//! to that run if its signed time is fresh (see [`super::run`]).

use super::incoming::Incoming;
use super::run::{Run, Standing, is_fresh};
use super::slots::SlotState;
use super::{Ingested, Ready, Window};
use crate::integrity::{Rejection, StreamKey, VerifiedDescriptor};
use crate::wire::{DataView, Descriptor, ManifestView, ParityView};
use crate::{Time, WallTime};

impl Window {
    /// Takes descriptor `d`, read from `datagram`; its signature is checked
    /// unless `verified` proves it was.
    pub(super) fn ingest_descriptor(
        &mut self,
        now: Time,
        d: Descriptor,
        datagram: Incoming<'_>,
        verified: Option<VerifiedDescriptor<'_>>,
    ) -> Result<Ingested, Rejection> {
        let bytes = datagram.bytes();
        let standing = self.run.standing(d.epoch);
        match standing {
            Standing::Behind => return Err(Rejection::Replayed),
            Standing::Current => {
                if let Some((current, raw)) = &self.descriptor {
                    if raw.as_slice() == bytes {
                        return Ok(Ingested::Duplicate);
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
        match verified {
            // Verified under the key of the stream it names: this one's?
            Some(v) if v.descriptor().stream != self.key.id() => {
                return Err(Rejection::WrongStream);
            }
            Some(_) => {}
            None => self.checked(now, None, false, |key| key.verify_descriptor(bytes, &d))?,
        }
        if standing == Standing::NewRun {
            if !is_fresh(
                self.wall_clock().wall_at(now),
                WallTime::from_micros(d.issued_at_us),
            ) {
                return Err(Rejection::Stale);
            }
            self.start_run(d.epoch, d.epoch, d.epoch);
        }
        // Reuse the previous descriptor's buffer when nobody else holds it.
        let mut buf = self.descriptor.take().map(|(_, b)| b).unwrap_or_default();
        datagram.keep_in(&mut buf);
        self.descriptor = Some((d, buf));
        Ok(Ingested::Descriptor)
    }

    /// `view` reads `datagram`.
    pub(super) fn ingest_manifest(
        &mut self,
        now: Time,
        view: ManifestView<'_>,
        datagram: Incoming<'_>,
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
                    return Ok(Ingested::Duplicate);
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
            if !is_fresh(
                self.wall_clock().wall_at(now),
                WallTime::from_micros(man.timestamp_us),
            ) {
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
        slot.set_manifest(datagram, &man);
        self.stats.manifests_verified += 1;
        self.note_manifest(man.block);
        self.ready.push_back(Ready::Manifest { block: man.block });
        self.verify_waiting(man.block, bi);
        self.prune_pending();
        self.try_rebuild(now, man.block);
        Ok(Ingested::Verified)
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

    pub(super) fn note_manifest(&mut self, block: u64) {
        if self.newest_block.is_none_or(|b| block > b) {
            self.newest_block = Some(block);
        }
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
}
