//! Rebuilding lost chunks of a block from its parity.

use std::cell::RefCell;

use super::slots::{BlockSlot, ChunkSlot, SlotState};
use crate::fec::{self, read_symbol, write_symbol};
use crate::integrity::symbol_hash;
use crate::wire::{DATA_HEADER_LEN, Data, DataFlags, PARITY_HEADER_LEN};
use crate::{StreamId, Time};

/// Decoder and scratch symbols, kept between blocks so a rebuild allocates
/// only the first time: one per thread, shared by every window the thread
/// runs (a relay's worker holds a window per stream, the simulator one per
/// peer; per window they were about 18 KB each, a tenth of a simulated
/// peer).
#[derive(Debug, Default)]
pub(super) struct Rebuilder {
    decoder: fec::Decoder,
    symbols: Vec<Vec<u8>>,
}

thread_local! {
    static REBUILDER: RefCell<Rebuilder> = RefCell::new(Rebuilder::default());
}

/// Runs `f` with this thread's [`Rebuilder`]. Not re-entrant: nothing a
/// rebuild calls rebuilds.
pub(super) fn with_rebuilder<R>(f: impl FnOnce(&mut Rebuilder) -> R) -> R {
    REBUILDER.with(|r| f(&mut r.borrow_mut()))
}

impl Rebuilder {
    /// Rebuilds what is missing of `block` when at least k of its k + m
    /// symbols are verified. Returns the rebuilt chunks' (seq, keyframe);
    /// a rebuilt symbol whose hash disagrees with the manifest is dropped.
    pub(super) fn run(
        &mut self,
        block: &mut BlockSlot,
        chunks: &mut [ChunkSlot],
        now: Time,
        stream: StreamId,
        clubs: u8,
    ) -> Vec<(u64, bool)> {
        let k = usize::from(block.k);
        let have = block.have_data.count_ones() as usize;
        if !block.manifest_verified
            || block.m == 0
            || have >= k
            || have + block.verified_parity() < k
        {
            return Vec::new();
        }
        let symbol_len = usize::from(block.symbol_len);
        let cap = chunks.len() as u64;
        if self.symbols.len() < fec::MAX_K {
            self.symbols.resize_with(fec::MAX_K, Vec::new);
        }
        for i in 0..k {
            if block.have_data & (1 << i) == 0 {
                continue;
            }
            let seq = block.first_seq + i as u64;
            let Some(slot) = chunks.get((seq % cap) as usize) else {
                continue;
            };
            let flags = slot.bytes.get(2).copied().unwrap_or(0);
            let ts = slot.as_ref().timestamp_us;
            let buf = &mut self.symbols[i];
            buf.clear();
            buf.resize(symbol_len, 0);
            if write_symbol(flags, ts, slot.payload(), buf).is_err() {
                return Vec::new();
            }
        }
        let originals = (0..k)
            .filter(|i| block.have_data & (1 << i) != 0)
            .map(|i| (i, self.symbols[i].as_slice()));
        let parity = block
            .parity
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == SlotState::Verified)
            .filter_map(|(i, p)| Some((i, p.bytes.get(PARITY_HEADER_LEN..)?)));
        let mut out = Vec::new();
        let block_id = block.block;
        let first_seq = block.first_seq;
        let hashes = &*block;
        let _ = self.decoder.decode(
            k,
            usize::from(block.m),
            symbol_len,
            originals,
            parity,
            |i, symbol| {
                let seq = first_seq + i as u64;
                let Ok(index) = u8::try_from(i) else { return };
                if symbol_hash(symbol) != hashes.data_hash(seq, index) {
                    return;
                }
                let Ok(sym) = read_symbol(symbol) else { return };
                let Some(flags) = DataFlags::from_bits(sym.flags) else {
                    return;
                };
                let data = Data {
                    flags,
                    club: (seq % u64::from(clubs.max(1))) as u8,
                    stream,
                    seq,
                    block: block_id,
                    timestamp_us: sym.timestamp_us,
                    index,
                    payload: sym.payload,
                };
                let Some(slot) = chunks.get_mut((seq % cap) as usize) else {
                    return;
                };
                let buf = slot.buffer_for(seq, now);
                buf.resize(DATA_HEADER_LEN + sym.payload.len(), 0);
                if data.emit(buf).is_ok() {
                    slot.state = SlotState::Verified;
                    out.push((seq, flags.keyframe()));
                }
            },
        );
        out
    }
}
