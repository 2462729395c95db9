//! Runs: which run of the publisher a window follows.
//!
//! A publisher that restarts (killed, crashed, moved to another machine)
//! starts a new **run** under the same key. Each run is named by its
//! epoch, the publisher's wall clock in microseconds when it started, and
//! its sequence numbers and block ids start at that epoch, so everything a
//! later run sends sorts after everything an earlier one sent (SPEC §8.1).
//!
//! A window follows one run at a time. A verified DESCRIPTOR or MANIFEST
//! of a later run takes over at once, emptying the window: the old run can
//! never come back, and its datagrams are refused as REPLAYED from then on.
//! A verified MANIFEST of the current run beyond the window ahead moves
//! the window there the same way, so a window pinned in the past (by data
//! replayed to a fresh relay) catches up with the live stream at its next
//! block. Either move needs a **fresh** signed time, so recorded data can
//! neither start a run nor move one: see [`is_fresh`].

use std::time::Duration;

use crate::WallTime;

/// How old a signed time may be and still start or move a run.
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// How far the publisher's clock and the receiver's may disagree: added to
/// [`MAX_AGE`] in the past and allowed in the future.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// Whether a DESCRIPTOR's `issued_at_us` or a MANIFEST's `timestamp_us`,
/// wall times signed by the publisher, is recent enough on the receiver's
/// wall clock, which reads `now`, to start or move a run: within
/// `[now - MAX_AGE - CLOCK_SKEW, now + CLOCK_SKEW]`.
pub fn is_fresh(now: WallTime, signed_at: WallTime) -> bool {
    signed_at + MAX_AGE + CLOCK_SKEW >= now && signed_at <= now + CLOCK_SKEW
}

/// The run a window follows and where it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Run {
    /// The run's epoch; `None` before the first verified DESCRIPTOR or
    /// MANIFEST.
    pub(super) epoch: Option<u64>,
    /// Nothing below this `seq` belongs to what the window follows.
    pub(super) floor_seq: u64,
    /// Nothing below this block id does either.
    pub(super) floor_block: u64,
}

/// How a verified-to-be item stands against the run followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    /// An earlier run, or below the floor: refuse (REPLAYED).
    Behind,
    /// The run followed, where the window can hold it.
    Current,
    /// A later run, or the first run seen: take over if it verifies and is
    /// fresh.
    NewRun,
}

impl Run {
    /// Where an item of run `epoch` stands.
    pub(super) fn standing(&self, epoch: u64) -> Standing {
        match self.epoch {
            None => Standing::NewRun,
            Some(e) if epoch > e => Standing::NewRun,
            Some(e) if epoch < e => Standing::Behind,
            Some(_) => Standing::Current,
        }
    }

    /// Whether `seq` and `block` lie below the floor.
    pub(super) fn below_floor(&self, seq: u64, block: u64) -> bool {
        seq < self.floor_seq || block < self.floor_block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_allows_the_skew_both_ways_and_no_more() {
        let now = WallTime::from_micros(1_000_000_000_000);
        let us = |d: Duration| d.as_micros() as u64;
        let at = |n: u64| WallTime::from_micros(n);
        let n = now.as_micros();
        assert!(is_fresh(now, at(n)));
        assert!(is_fresh(now, at(n - us(MAX_AGE + CLOCK_SKEW))));
        assert!(!is_fresh(now, at(n - us(MAX_AGE + CLOCK_SKEW) - 1)));
        assert!(is_fresh(now, at(n + us(CLOCK_SKEW))));
        assert!(!is_fresh(now, at(n + us(CLOCK_SKEW) + 1)));
    }

    #[test]
    fn later_runs_take_over_and_earlier_ones_stay_behind() {
        let first = Run::default();
        assert_eq!(first.standing(5), Standing::NewRun);
        let run = Run {
            epoch: Some(10),
            floor_seq: 10,
            floor_block: 10,
        };
        assert_eq!(run.standing(9), Standing::Behind);
        assert_eq!(run.standing(10), Standing::Current);
        assert_eq!(run.standing(11), Standing::NewRun);
        assert!(run.below_floor(9, 12));
        assert!(run.below_floor(12, 9));
        assert!(!run.below_floor(10, 10));
    }
}
