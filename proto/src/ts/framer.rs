//! Finding transport packets in a byte stream that arrives in arbitrary
//! pieces and may lose sync.
//!
//! A packet is accepted only when it is framed: it starts with a sync byte
//! and so does the byte [`TS_PACKET_LEN`] later, where the next packet should
//! start (at the end of input, where there is no later byte, a whole packet
//! is enough). Checking the far end too is what keeps a packet cut short by
//! lost bytes from reaching a chunk with the next packet's head glued on.
//! Anything else is skipped up to the next sync byte and counted as
//! discarded; resynchronisation is the same rule applied from there.
//!
//! The price is that a packet waits for the first byte of its successor:
//! one packet time on a live stream. Decisions are made only once the bytes
//! they look at have arrived, so the packets found do not depend on how the
//! input was split.

use std::mem;

use super::packet::{Packet, SYNC_BYTE, TS_PACKET_LEN};

/// Bytes that decide whether a packet starts here: the packet and the first
/// byte after it.
const FRAMED_LEN: usize = TS_PACKET_LEN + 1;

#[derive(Debug, Default)]
pub(super) struct Framer {
    /// Input not yet decided: empty, or a sync byte that may start a packet
    /// and at most [`TS_PACKET_LEN`] bytes in all.
    pending: Vec<u8>,
    /// Whether the last decision accepted a packet; losing sync is counted
    /// on the way out of this state.
    synced: bool,
    discarded: u64,
    sync_losses: u64,
}

impl Framer {
    /// Bytes skipped because they were not part of a framed packet.
    pub(super) fn discarded_bytes(&self) -> u64 {
        self.discarded
    }

    /// Times the stream went from accepted packets to skipped bytes.
    pub(super) fn sync_losses(&self) -> u64 {
        self.sync_losses
    }

    /// Bytes held back until later input decides them.
    #[cfg(test)]
    fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Hands every packet that `input` completes to `on_packet`, in order.
    pub(super) fn feed(&mut self, input: &[u8], on_packet: &mut impl FnMut(Packet<'_>)) {
        // Bytes carried over from the previous call: top them up only as far
        // as a decision needs, so the bulk of `input` is read in place.
        let mut start = 0;
        while !self.pending.is_empty() {
            let carried = self.pending.len();
            let rest = input.get(start..).unwrap_or_default();
            let take = FRAMED_LEN
                .saturating_sub(carried)
                .clamp(1, rest.len().max(1));
            let Some(top_up) = rest.get(..take) else {
                return; // `input` is used up; keep waiting.
            };
            self.pending.extend_from_slice(top_up);
            let pending = mem::take(&mut self.pending);
            let used = self.scan(&pending, false, on_packet);
            self.pending = pending;
            if used >= carried {
                // Every carried byte is decided: go on from `input` itself.
                self.pending.clear();
                start += used - carried;
            } else {
                self.pending.drain(..used);
                start += take;
            }
        }
        let rest = input.get(start..).unwrap_or_default();
        let used = self.scan(rest, false, on_packet);
        self.pending
            .extend_from_slice(rest.get(used..).unwrap_or_default());
    }

    /// End of input: a whole packet still pending is accepted without its
    /// successor, a partial one is discarded. Input fed afterwards must
    /// find sync again.
    pub(super) fn finish(&mut self, on_packet: &mut impl FnMut(Packet<'_>)) {
        let pending = mem::take(&mut self.pending);
        let used = self.scan(&pending, true, on_packet);
        self.discard(pending.len().saturating_sub(used));
        self.pending = pending;
        self.pending.clear();
        self.synced = false;
    }

    /// Decides as much of `bytes` as it can; returns how many bytes were
    /// accepted or discarded, always a prefix of `bytes`.
    fn scan(
        &mut self,
        bytes: &[u8],
        at_end: bool,
        on_packet: &mut impl FnMut(Packet<'_>),
    ) -> usize {
        let mut pos = 0;
        loop {
            let rest = bytes.get(pos..).unwrap_or_default();
            let Some(&first) = rest.first() else {
                return pos;
            };
            if first == SYNC_BYTE {
                let framed = match rest.get(TS_PACKET_LEN) {
                    Some(&next) => next == SYNC_BYTE,
                    None if at_end => rest.len() == TS_PACKET_LEN,
                    None => return pos,
                };
                if framed
                    && let Some(packet) = rest.get(..TS_PACKET_LEN)
                    && let Ok(packet) = Packet::new_checked(packet)
                {
                    self.synced = true;
                    on_packet(packet);
                    pos += TS_PACKET_LEN;
                    continue;
                }
            }
            let skip = rest
                .iter()
                .skip(1)
                .position(|&b| b == SYNC_BYTE)
                .map_or(rest.len(), |i| i + 1);
            self.discard(skip);
            pos += skip;
        }
    }

    fn discard(&mut self, len: usize) {
        if len == 0 {
            return;
        }
        if mem::replace(&mut self.synced, false) {
            self.sync_losses += 1;
        }
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        self.discarded = self.discarded.saturating_add(len);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{packet, stream};
    use super::*;

    /// Feeds `pieces` then finishes; returns the packets found.
    fn frame(framer: &mut Framer, pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut collect = |p: Packet<'_>| out.extend_from_slice(p.as_bytes());
        for piece in pieces {
            framer.feed(piece, &mut collect);
        }
        framer.finish(&mut collect);
        out
    }

    #[test]
    fn clean_stream_passes_whole() {
        let ts = stream(&[(0x100, false); 10]);
        let mut framer = Framer::default();
        assert_eq!(frame(&mut framer, &[&ts]), ts);
        assert_eq!(framer.discarded_bytes(), 0);
        assert_eq!(framer.sync_losses(), 0);
    }

    #[test]
    fn packet_waits_for_its_successor() {
        let ts = stream(&[(0x100, false); 2]);
        let mut framer = Framer::default();
        let mut seen = 0;
        framer.feed(&ts[..188], &mut |_| seen += 1);
        assert_eq!((seen, framer.pending_len()), (0, 188));
        framer.feed(&ts[188..189], &mut |_| seen += 1);
        assert_eq!((seen, framer.pending_len()), (1, 1));
        framer.feed(&ts[189..], &mut |_| seen += 1);
        assert_eq!((seen, framer.pending_len()), (1, 188));
        framer.finish(&mut |_| seen += 1);
        assert_eq!((seen, framer.pending_len()), (2, 0));
    }

    #[test]
    fn garbage_is_skipped_and_counted() {
        let ts = stream(&[(0x100, false); 6]);
        let mut input = vec![0x00; 50];
        input.extend_from_slice(&ts);
        // Trailing garbage that starts like a packet.
        input.extend_from_slice(&[SYNC_BYTE, 0x12, SYNC_BYTE, 0x56]);
        let mut framer = Framer::default();
        assert_eq!(frame(&mut framer, &[&input]), ts);
        assert_eq!(framer.discarded_bytes(), 50 + 4);
        // Garbage before the first packet is not a loss of sync.
        assert_eq!(framer.sync_losses(), 1);
    }

    #[test]
    fn packet_before_inserted_garbage_is_dropped() {
        // Packet 1 is whole, but with no sync byte after it there is no
        // telling it from a packet that lost its tail.
        let ts = stream(&[(0x100, false); 4]);
        let mut input = ts[..376].to_vec();
        input.extend_from_slice(&[0x12, SYNC_BYTE, 0x34, 0x56]);
        input.extend_from_slice(&ts[376..]);
        let mut expected = ts[..188].to_vec();
        expected.extend_from_slice(&ts[376..]);
        let mut framer = Framer::default();
        assert_eq!(frame(&mut framer, &[&input]), expected);
        assert_eq!(framer.discarded_bytes(), 188 + 4);
        assert_eq!(framer.sync_losses(), 1);
    }

    #[test]
    fn truncated_packet_is_dropped() {
        let ts = stream(&[(0x100, false); 4]);
        let mut input = ts[..188].to_vec();
        input.extend_from_slice(&ts[188..288]); // packet 1 loses its tail
        input.extend_from_slice(&ts[376..]);
        let mut framer = Framer::default();
        let mut expected = ts[..188].to_vec();
        expected.extend_from_slice(&ts[376..]);
        assert_eq!(frame(&mut framer, &[&input]), expected);
        assert_eq!(framer.discarded_bytes(), 100);
        assert_eq!(framer.sync_losses(), 1);
    }

    #[test]
    fn partial_packet_at_the_end_is_discarded() {
        let ts = stream(&[(0x100, false); 3]);
        let mut framer = Framer::default();
        assert_eq!(frame(&mut framer, &[&ts[..500]]), ts[..376]);
        assert_eq!(framer.discarded_bytes(), 500 - 376);
    }

    #[test]
    fn every_split_finds_the_same_packets() {
        let mut input = vec![0x01; 7];
        input.extend_from_slice(&stream(&[(0x100, false); 3]));
        input.extend_from_slice(&packet(0x100, 5, false)[..90]);
        input.push(SYNC_BYTE);
        input.extend_from_slice(&stream(&[(0x101, true); 3]));
        let mut whole = Framer::default();
        let expected = frame(&mut whole, &[&input]);
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            let mut split = Framer::default();
            assert_eq!(frame(&mut split, &[a, b]), expected, "cut at {cut}");
            assert_eq!(split.discarded_bytes(), whole.discarded_bytes());
            assert_eq!(split.sync_losses(), whole.sync_losses());
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let mut bytewise = Framer::default();
        assert_eq!(frame(&mut bytewise, &bytes), expected);
    }
}
