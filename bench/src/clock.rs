//! One clock for the whole run, and the ring in which the source leaves
//! each chunk's send time for the viewers to read.
//!
//! Times are nanoseconds since the run's start on the monotonic clock, so
//! every thread measures against the same origin and a one-way latency is
//! one subtraction.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Slots in the ring: the seqs of about 11 s at 1 Gbit/s of 1316-byte
/// chunks, far more than any chunk spends in flight.
const SLOTS_LOG2: u32 = 20;
const SLOTS: usize = 1 << SLOTS_LOG2;
/// Low bits of a slot: which lap of the ring (`seq >> SLOTS_LOG2`) wrote
/// it, so a stale slot is told from a current one.
const LAP_BITS: u32 = 64 - TIME_BITS;
/// High bits of a slot: the send time plus one (zero marks an empty slot);
/// 44 bits of nanoseconds are 4.8 hours.
const TIME_BITS: u32 = 44;
const LAP_MASK: u64 = (1 << LAP_BITS) - 1;

/// The run's clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Nanoseconds since the start.
    pub fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Send time per sequence number, written by the source thread only and
/// read by any viewer thread, without locks: each slot is one atomic word
/// holding the time and the lap, so a reader never sees half a write.
pub struct SendTimes {
    slots: Box<[AtomicU64]>,
}

impl std::fmt::Debug for SendTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendTimes")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl Default for SendTimes {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl SendTimes {
    /// Records that `seq` was sent at `nanos` (see [`Clock::now`]). A time
    /// past the 44-bit range is not recorded.
    pub fn record(&self, seq: u64, nanos: u64) {
        let Some(time) = nanos.checked_add(1).filter(|t| t >> TIME_BITS == 0) else {
            return;
        };
        let word = (time << LAP_BITS) | lap(seq);
        // Release: a viewer that sees this word also sees everything the
        // source did before sending the chunk.
        self.slots[slot(seq)].store(word, Ordering::Release);
    }

    /// When `seq` was sent, if the ring still holds it.
    pub fn sent_at(&self, seq: u64) -> Option<u64> {
        let word = self.slots[slot(seq)].load(Ordering::Acquire);
        let time = word >> LAP_BITS;
        (time != 0 && word & LAP_MASK == lap(seq)).then(|| time - 1)
    }
}

fn slot(seq: u64) -> usize {
    (seq as usize) & (SLOTS - 1)
}

fn lap(seq: u64) -> u64 {
    (seq >> SLOTS_LOG2) & LAP_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_seq_reads_back() {
        let ring = SendTimes::default();
        assert_eq!(ring.sent_at(7), None);
        ring.record(7, 0);
        ring.record(8, 123_456_789);
        assert_eq!(ring.sent_at(7), Some(0));
        assert_eq!(ring.sent_at(8), Some(123_456_789));
        assert_eq!(ring.sent_at(9), None);
    }

    #[test]
    fn a_later_lap_replaces_and_hides_the_earlier() {
        let ring = SendTimes::default();
        let seq = 5;
        let next_lap = seq + SLOTS as u64;
        ring.record(seq, 1_000);
        assert_eq!(ring.sent_at(next_lap), None, "not sent yet");
        ring.record(next_lap, 2_000);
        assert_eq!(ring.sent_at(next_lap), Some(2_000));
        assert_eq!(ring.sent_at(seq), None, "overwritten: unknown, not wrong");
    }

    #[test]
    fn times_past_the_range_are_dropped() {
        let ring = SendTimes::default();
        ring.record(1, (1 << TIME_BITS) - 2);
        assert_eq!(ring.sent_at(1), Some((1 << TIME_BITS) - 2));
        ring.record(2, 1 << TIME_BITS);
        assert_eq!(ring.sent_at(2), None);
    }

    #[test]
    fn readers_on_other_threads_see_the_writes() {
        let ring = std::sync::Arc::new(SendTimes::default());
        let writer = {
            let ring = std::sync::Arc::clone(&ring);
            std::thread::spawn(move || {
                for seq in 0..100_000u64 {
                    ring.record(seq, seq * 10);
                }
            })
        };
        writer.join().expect("writer");
        for seq in (0..100_000u64).step_by(997) {
            assert_eq!(ring.sent_at(seq), Some(seq * 10));
        }
    }
}
