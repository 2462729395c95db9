//! Each subscriber's byte budget for repairs.
//!
//! Fan-out sends a subscriber the stream once; repairs send it parts of the
//! window again on request. Without a bound, a proven subscriber could ask
//! for the whole window in a loop: one 47-byte NACK of 32 entries is
//! answered with `nack_limit` (256) chunks and their manifests, about
//! 360 KB, an amplification of 7000. So every repair answer (NACK answers,
//! every catch-up but a subscription's first, PEERS answers) is paid from a
//! token bucket of bytes per subscriber:
//!
//! - refilled at [`REPAIR_SHARE`] of the stream's rate (the DESCRIPTOR's
//!   `bitrate_bps`, at least [`MIN_RATE_BPS`] for a stream without one or
//!   a tiny one, at most [`MAX_RATE_BPS`]): half the stream again is far
//!   more than any loss FEC leaves (5% loss with bursts needs a few
//!   percent), and a subscriber can never be made to cost more than 1.5
//!   times its stream;
//! - holding at most one catch-up's worth, `nack_limit` datagrams of
//!   [`MAX_DATAGRAM_LEN`], so that a viewer that resubscribes or lost a
//!   burst is repaired at once; it starts full.
//!
//! An answer stops at the first datagram the budget cannot pay; the rest is
//! not sent, and the request is counted as refused (`repair_budget`). The
//! subscriber asks again later, as it would after a loss.

use crate::Time;
use crate::bucket::TokenBucket;
use crate::wire::MAX_DATAGRAM_LEN;

/// The share of the stream's rate refilled for repairs, in percent.
pub(crate) const REPAIR_SHARE: u64 = 50;
/// The stream rate assumed below this (or without a DESCRIPTOR).
pub(crate) const MIN_RATE_BPS: u64 = 1_000_000;
/// The stream rate assumed above this (a DESCRIPTOR may claim anything).
pub(crate) const MAX_RATE_BPS: u64 = 1_000_000_000;

/// Millionths of a byte: refills are exact at microsecond steps.
const UNIT: u64 = 1_000_000;

/// The bucket's size and refill for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BudgetRule {
    /// Bytes per second refilled.
    pub(crate) bytes_per_sec: u64,
    /// Most bytes held.
    pub(crate) burst: u64,
}

impl BudgetRule {
    /// The rule for a stream of `bitrate_bps` (`None`: no DESCRIPTOR yet)
    /// on a relay answering at most `nack_limit` items per request.
    pub(crate) fn new(bitrate_bps: Option<u64>, nack_limit: usize) -> Self {
        let bps = bitrate_bps.unwrap_or(0).clamp(MIN_RATE_BPS, MAX_RATE_BPS);
        Self {
            bytes_per_sec: bps / 8 * REPAIR_SHARE / 100,
            burst: (nack_limit.max(1) * MAX_DATAGRAM_LEN) as u64,
        }
    }
}

/// One subscriber's bucket; see the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RepairBudget {
    /// Millionths of a byte; `None` until first used (then full).
    bucket: Option<TokenBucket>,
}

impl RepairBudget {
    /// A bucket that will be full at its first use.
    pub(crate) fn full() -> Self {
        Self { bucket: None }
    }

    /// Adds what `rule` refilled since the last call.
    pub(crate) fn refill(&mut self, now: Time, rule: BudgetRule) {
        let cap = rule.burst.saturating_mul(UNIT);
        // Time going backwards accrues nothing and leaves the clock.
        let rate = rule.bytes_per_sec.saturating_mul(UNIT);
        match &mut self.bucket {
            None => self.bucket = Some(TokenBucket::new(cap, now)),
            Some(b) => b.refill(now, rate, cap),
        }
    }

    /// Pays `len` bytes if the bucket holds them.
    pub(crate) fn spend(&mut self, len: usize) -> bool {
        let cost = (len as u64).saturating_mul(UNIT);
        self.bucket.as_mut().is_some_and(|b| b.take(cost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::t;

    #[test]
    fn a_burst_then_half_the_stream_rate() {
        let rule = BudgetRule::new(Some(3_000_000), 256);
        assert_eq!(rule.bytes_per_sec, 187_500);
        assert_eq!(rule.burst, 256 * 1452);
        let mut b = RepairBudget::full();
        b.refill(t(0), rule);
        let first = (0..10_000).take_while(|_| b.spend(1000)).count();
        assert_eq!(first, 371, "the burst");
        b.refill(t(1000), rule);
        let second = (0..10_000).take_while(|_| b.spend(1000)).count();
        assert!((187..=188).contains(&second), "a second's refill: {second}");
    }

    #[test]
    fn claimed_rates_are_clamped() {
        assert_eq!(BudgetRule::new(None, 256).bytes_per_sec, 62_500);
        assert_eq!(BudgetRule::new(Some(1), 256).bytes_per_sec, 62_500);
        assert_eq!(
            BudgetRule::new(Some(u64::MAX), 256).bytes_per_sec,
            62_500_000
        );
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let rule = BudgetRule::new(Some(3_000_000), 1);
        let mut b = RepairBudget::full();
        b.refill(t(1000), rule);
        assert!(b.spend(1452));
        b.refill(t(0), rule);
        assert!(!b.spend(1));
    }
}
