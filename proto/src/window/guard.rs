//! How many signature checks a window spends on what fails them.
//!
//! A MANIFEST or DESCRIPTOR costs an ed25519 verification (about 50 us)
//! before the window knows whether it is real, and anyone can send a
//! forged one with the real stream id, a plausible block and a random
//! signature. Unchecked, 100,000 of them a second saturate a core. The
//! guard bounds the checks that fail, whatever arrives, and keeps the
//! real stream flowing:
//!
//! - **Per block**: a block id whose MANIFEST failed [`TRIES_PER_BLOCK`]
//!   times is not checked again unless the candidate agrees with a chunk
//!   or parity symbol already held for that block (see below).
//! - **Per stream**: failed checks draw on a bucket of
//!   [`FAILED_PER_SEC`] a second (burst [`FAILED_BURST`]); when it is
//!   empty, nothing more is checked but candidates with such evidence.
//!   Checks that pass cost nothing: a real block verifies once and its
//!   later copies are DUPLICATE before any check.
//! - **Evidence**: a MANIFEST whose hash entry matches a chunk or symbol
//!   held (waiting) for its block, from a proven source, is checked
//!   whatever the budget: a forger cannot produce it without the real
//!   chunks, and the publisher sends every MANIFEST again after the
//!   block's chunks, so a block whose first copy lost the race with a
//!   flood still verifies at its second.
//!
//! Candidates refused unchecked are counted (THROTTLED). A run change
//! (§9.2) has no such evidence (its chunks are not held before it), so a
//! flood aimed at run changes can delay a publisher restart until the
//! bucket has room; the run followed loses nothing.

use crate::Time;
use crate::bucket::TokenBucket;

/// Failed checks allowed per block before it needs evidence.
pub const TRIES_PER_BLOCK: u8 = 2;
/// Failed checks per second a stream's window spends, at most.
pub const FAILED_PER_SEC: u64 = 100;
/// Failed checks in a burst.
pub const FAILED_BURST: u64 = 50;

/// Blocks whose failures are remembered (by block id modulo this).
const REMEMBERED: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// Per block (by id modulo [`REMEMBERED`]): the block and its failed
    /// checks.
    failures: [(u64, u8); REMEMBERED],
    /// Tokens for failed checks, in millionths; its clock starts at the
    /// first check.
    bucket: TokenBucket,
}

/// A failed check's cost in the bucket.
const UNIT: u64 = 1_000_000;

impl Default for Guard {
    fn default() -> Self {
        Self {
            failures: [(u64::MAX, 0); REMEMBERED],
            bucket: TokenBucket::unstarted(FAILED_BURST * UNIT),
        }
    }
}

impl Guard {
    fn refill(&mut self, now: Time) {
        let (rate, cap) = (FAILED_PER_SEC * UNIT, FAILED_BURST * UNIT);
        self.bucket.refill(now, rate, cap);
        self.bucket.rewind(now);
    }

    /// Whether a candidate for `block` (`None`: a DESCRIPTOR, or a MANIFEST
    /// that would start or move a run) may be checked now; `evidence`:
    /// it agrees with something held for its block.
    pub(crate) fn may_check(&mut self, now: Time, block: Option<u64>, evidence: bool) -> bool {
        if evidence {
            return true;
        }
        self.refill(now);
        if !self.bucket.holds(UNIT) {
            return false;
        }
        match block {
            Some(b) => {
                let (held, fails) = self.failures[(b % REMEMBERED as u64) as usize];
                held != b || fails < TRIES_PER_BLOCK
            }
            None => true,
        }
    }

    /// A check of a candidate for `block` failed.
    pub(crate) fn failed(&mut self, block: Option<u64>) {
        self.bucket.drain(UNIT);
        if let Some(b) = block {
            let slot = &mut self.failures[(b % REMEMBERED as u64) as usize];
            if slot.0 == b {
                slot.1 = slot.1.saturating_add(1);
            } else {
                *slot = (b, 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn failures_are_bounded_per_block_and_per_second_but_evidence_passes() {
        let t0 = Time::from_micros(1_000_000);
        let mut g = Guard::default();
        // Per block.
        for _ in 0..TRIES_PER_BLOCK {
            assert!(g.may_check(t0, Some(7), false));
            g.failed(Some(7));
        }
        assert!(!g.may_check(t0, Some(7), false));
        assert!(g.may_check(t0, Some(7), true));
        assert!(g.may_check(t0, Some(8), false));
        // Per second: the burst, then the rate.
        let mut checked = u64::from(TRIES_PER_BLOCK);
        let mut block = 100;
        while g.may_check(t0, Some(block), false) {
            g.failed(Some(block));
            checked += 1;
            block += 1;
        }
        assert_eq!(checked, FAILED_BURST);
        assert!(!g.may_check(t0, None, false));
        let mut later = 0;
        let t1 = t0 + Duration::from_secs(1);
        while g.may_check(t1, None, false) {
            g.failed(None);
            later += 1;
        }
        assert_eq!(later, FAILED_BURST.min(FAILED_PER_SEC));
        assert!(g.may_check(t1, None, true));
    }
}
