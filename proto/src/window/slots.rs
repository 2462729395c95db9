//! The window's storage: one slot per chunk, one per block.

use std::sync::Arc;

use super::ChunkRef;
use super::incoming::Incoming;
use crate::Time;
use crate::fec::MAX_M;
use crate::transmit::SharedBuf;
use crate::wire::{
    DATA_HEADER_LEN, HASH_LEN, MANIFEST_HEADER_LEN, MAX_DATAGRAM_LEN, Manifest, StoredData,
};

/// What a slot holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum SlotState {
    /// Nothing usable.
    #[default]
    Empty,
    /// Received, waiting for its manifest; never forwarded in this state.
    Pending,
    /// Checked against its signed manifest.
    Verified,
}

/// The slot's buffer, emptied, to write into. A buffer that an IO shell
/// still holds (sending it, or another worker's mirror of this window) is
/// left to them and replaced by a fresh one: a slot is only ever rewritten
/// once nobody else can see it.
pub(super) fn writable(buf: &mut SharedBuf) -> &mut Vec<u8> {
    if Arc::get_mut(buf).is_none() {
        *buf = SharedBuf::default();
    }
    let v = Arc::make_mut(buf);
    if v.capacity() == 0 {
        v.reserve_exact(MAX_DATAGRAM_LEN);
    }
    v.clear();
    v
}

/// An empty shared buffer, for slots that let go of theirs.
fn empty() -> SharedBuf {
    static EMPTY: std::sync::OnceLock<SharedBuf> = std::sync::OnceLock::new();
    SharedBuf::clone(EMPTY.get_or_init(SharedBuf::default))
}

/// One chunk: its DATA datagram and what was read from it.
#[derive(Debug)]
pub(super) struct ChunkSlot {
    pub(super) seq: u64,
    pub(super) state: SlotState,
    /// While pending: its chunk hash, computed once on arrival, so that a
    /// MANIFEST can be told to agree with it without hashing (see
    /// `guard`).
    pub(super) pending_hash: [u8; HASH_LEN],
    pub(super) bytes: SharedBuf,
    arrived: Time,
    rebuilt: bool,
}

impl ChunkSlot {
    /// Stores a DATA datagram that already parsed: a copy, or the shared
    /// buffer itself (see [`Incoming`]).
    pub(super) fn store(
        &mut self,
        seq: u64,
        datagram: Incoming<'_>,
        now: Time,
        state: SlotState,
        rebuilt: bool,
    ) {
        datagram.keep_in(&mut self.bytes);
        self.seq = seq;
        self.state = state;
        self.arrived = now;
        self.rebuilt = rebuilt;
    }

    /// Whether `datagram` is a copy of the chunk held. A rebuilt chunk is
    /// given the benefit of the doubt: its bytes were made here.
    pub(super) fn is_copy(&self, datagram: &[u8]) -> bool {
        self.rebuilt || self.bytes.as_slice() == datagram
    }

    /// A buffer to write a rebuilt datagram into.
    pub(super) fn buffer_for(&mut self, seq: u64, now: Time) -> &mut Vec<u8> {
        self.seq = seq;
        self.state = SlotState::Empty;
        self.arrived = now;
        self.rebuilt = true;
        writable(&mut self.bytes)
    }

    /// Lets go of the buffer (a mirror does, ahead of the window that
    /// owns it, so the owner can reuse it).
    pub(super) fn release(&mut self) {
        self.state = SlotState::Empty;
        self.bytes = empty();
    }

    /// Takes a verified DATA datagram another window checked, sharing its
    /// buffer.
    pub(super) fn adopt(&mut self, seq: u64, datagram: SharedBuf, now: Time, rebuilt: bool) {
        self.bytes = datagram;
        self.seq = seq;
        self.state = SlotState::Verified;
        self.arrived = now;
        self.rebuilt = rebuilt;
    }

    pub(super) fn as_ref(&self) -> ChunkRef<'_> {
        let stored = StoredData(&self.bytes);
        let flags = stored.flags();
        ChunkRef {
            datagram: &self.bytes,
            seq: self.seq,
            keyframe: flags.keyframe(),
            end_of_stream: flags.end_of_stream(),
            timestamp_us: stored.timestamp_us(),
            arrived: self.arrived,
            rebuilt: self.rebuilt,
            block: stored.block(),
        }
    }

    /// The payload of the stored datagram.
    pub(super) fn payload(&self) -> &[u8] {
        self.bytes.get(DATA_HEADER_LEN..).unwrap_or_default()
    }
}

/// One parity symbol's PARITY datagram.
#[derive(Debug)]
pub(super) struct ParitySlot {
    pub(super) state: SlotState,
    /// While pending: its parity hash (see [`ChunkSlot::pending_hash`]).
    pub(super) pending_hash: [u8; HASH_LEN],
    pub(super) bytes: SharedBuf,
}

// Empty slots share one empty buffer: a slot allocates its own on first
// use, and an unused one costs nothing.
impl Default for ParitySlot {
    fn default() -> Self {
        Self {
            state: SlotState::Empty,
            pending_hash: [0; HASH_LEN],
            bytes: empty(),
        }
    }
}

impl Default for ChunkSlot {
    fn default() -> Self {
        Self {
            seq: 0,
            state: SlotState::Empty,
            pending_hash: [0; HASH_LEN],
            bytes: empty(),
            arrived: Time::ZERO,
            rebuilt: false,
        }
    }
}

/// One block: its manifest, which data it has, its parity.
#[derive(Debug, Default)]
pub(super) struct BlockSlot {
    pub(super) block: u64,
    pub(super) manifest: SharedBuf,
    pub(super) manifest_verified: bool,
    /// Something of this block waits for the manifest.
    pub(super) awaiting: bool,
    pub(super) k: u8,
    pub(super) m: u8,
    pub(super) first_seq: u64,
    pub(super) symbol_len: u16,
    /// Bit i: DATA chunk i is verified in the window.
    pub(super) have_data: u64,
    pub(super) parity: Vec<ParitySlot>,
}

impl BlockSlot {
    /// Makes the slot hold `block`, forgetting an older block.
    pub(super) fn claim(&mut self, block: u64) {
        if self.block == block {
            return;
        }
        self.block = block;
        // The old manifest's bytes stay until a new one is written over
        // them; unverified, nothing reads them.
        self.manifest_verified = false;
        self.awaiting = false;
        self.have_data = 0;
        for p in &mut self.parity {
            p.state = SlotState::Empty;
        }
    }

    /// Forgets what the slot holds, keeping its buffers (the window moved
    /// to another run).
    pub(super) fn forget(&mut self) {
        self.manifest_verified = false;
        self.awaiting = false;
        self.have_data = 0;
        for p in &mut self.parity {
            p.state = SlotState::Empty;
        }
    }

    pub(super) fn set_manifest(&mut self, datagram: Incoming<'_>, man: &Manifest<'_>) {
        datagram.keep_in(&mut self.manifest);
        self.set_fields(man);
    }

    /// Lets go of the manifest and parity buffers (see [`ChunkSlot::release`]).
    pub(super) fn release(&mut self) {
        self.manifest = empty();
        self.manifest_verified = false;
        self.have_data = 0;
        for p in &mut self.parity {
            p.state = SlotState::Empty;
            p.bytes = empty();
        }
    }

    /// Takes a manifest another window verified, sharing its buffer.
    pub(super) fn adopt_manifest(&mut self, datagram: SharedBuf, man: &Manifest<'_>) {
        self.manifest = datagram;
        self.set_fields(man);
    }

    fn set_fields(&mut self, man: &Manifest<'_>) {
        self.manifest_verified = true;
        self.k = man.k;
        self.m = man.m;
        self.first_seq = man.first_seq;
        self.symbol_len = man.symbol_len;
        self.have_data = 0;
    }

    fn hash_at(&self, i: usize) -> Option<[u8; HASH_LEN]> {
        let at = MANIFEST_HEADER_LEN + i * HASH_LEN;
        let mut out = [0; HASH_LEN];
        out.copy_from_slice(self.manifest.get(at..at + HASH_LEN)?);
        Some(out)
    }

    /// The hash the manifest gives for chunk `seq` claiming index `index`;
    /// `None` when seq and index disagree with the manifest.
    pub(super) fn data_hash(&self, seq: u64, index: u8) -> Option<[u8; HASH_LEN]> {
        if !self.manifest_verified
            || index >= self.k
            || self.first_seq.checked_add(u64::from(index)) != Some(seq)
        {
            return None;
        }
        self.hash_at(usize::from(index))
    }

    /// Whether `man` agrees with a chunk or symbol held for this block
    /// while it waits for its MANIFEST: the evidence that lets a MANIFEST
    /// be checked whatever the guard's budget. Compares stored hashes
    /// only; hashes nothing.
    pub(super) fn agrees_with_pending(&self, man: &Manifest<'_>, chunks: &[ChunkSlot]) -> bool {
        if self.block != man.block || !self.awaiting || chunks.is_empty() {
            return false;
        }
        let cap = chunks.len() as u64;
        let chunk = (0..man.k).any(|i| {
            let seq = man.first_seq + u64::from(i);
            let c = &chunks[(seq % cap) as usize];
            c.seq == seq
                && c.state == SlotState::Pending
                && man.data_hash(usize::from(i)) == Some(&c.pending_hash[..])
        });
        chunk
            || self.parity.iter().enumerate().any(|(j, p)| {
                p.state == SlotState::Pending && man.parity_hash(j) == Some(&p.pending_hash[..])
            })
    }

    pub(super) fn parity_hash(&self, index: usize) -> Option<[u8; HASH_LEN]> {
        if !self.manifest_verified || index >= usize::from(self.m) {
            return None;
        }
        self.hash_at(usize::from(self.k) + index)
    }

    pub(super) fn store_parity(&mut self, index: usize, datagram: Incoming<'_>, state: SlotState) {
        if self.parity.is_empty() {
            self.parity.resize_with(MAX_M, ParitySlot::default);
        }
        if let Some(p) = self.parity.get_mut(index) {
            datagram.keep_in(&mut p.bytes);
            p.state = state;
        }
    }

    /// Takes a verified PARITY datagram another window checked.
    pub(super) fn adopt_parity(&mut self, index: usize, datagram: SharedBuf) {
        if self.parity.is_empty() {
            self.parity.resize_with(MAX_M, ParitySlot::default);
        }
        if let Some(p) = self.parity.get_mut(index) {
            p.bytes = datagram;
            p.state = SlotState::Verified;
        }
    }

    pub(super) fn verified_parity(&self) -> usize {
        self.parity
            .iter()
            .filter(|p| p.state == SlotState::Verified)
            .count()
    }
}
