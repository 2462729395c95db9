//! Mirrors: windows that take items another window of the same stream
//! already verified, sharing its buffers.
//!
//! A multi-threaded relay verifies each stream in one worker; the others
//! adopt what it verified without copying or checking it again. A mirror
//! holds the newest seven eighths of the window ([`MIRROR_MARGIN`]), so it
//! lets go of each buffer before the owner wants it back.

use super::run::{Run, Standing};
use super::{Adopt, Ready, Window};
use crate::Time;
use crate::integrity::Rejection;
use crate::transmit::SharedBuf;
use crate::wire::{DataView, Descriptor, ManifestView};

/// A mirror keeps this fraction of its window less than the owner (1/8):
/// it lets go of each buffer before the owner wants it back for a newer
/// chunk, so the owner's slots are reused rather than reallocated.
const MIRROR_MARGIN: u64 = 8;

impl Window {
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
}
