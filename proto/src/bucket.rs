//! The one token bucket: the peer's upload limit, the relay's handshake
//! limiter and repair budget, and the window's signature-check guard.
//!
//! Tokens are whole units of the caller's choosing. A caller that needs
//! exact fractions counts in a finer unit (the limiter, budget and guard
//! count millionths, so that a rate of `r` a second accrues exactly `r`
//! millionths a microsecond); the upload limit counts whole bytes. The
//! rate and the cap are passed to each refill, so a caller whose rate
//! changes (the repair budget follows the stream's bitrate) keeps one
//! bucket.
//!
//! The refill rule, which every caller's arithmetic depends on: the time
//! since the last refill accrues `rate × µs / 1e6` whole tokens, at most
//! `cap` held; a refill that accrues nothing leaves the clock where it was,
//! so that time too short for a whole token is not lost. A bucket made by
//! [`TokenBucket::unstarted`] starts its clock at its first refill, which
//! accrues nothing.

use crate::Time;

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenBucket {
    tokens: u64,
    /// When time was last accrued; `None` before the first refill.
    last: Option<Time>,
}

impl TokenBucket {
    /// A bucket holding `tokens`, its clock running from `now`.
    pub(crate) fn new(tokens: u64, now: Time) -> Self {
        Self {
            tokens,
            last: Some(now),
        }
    }

    /// A bucket holding `tokens`, its clock started by the first refill.
    pub(crate) fn unstarted(tokens: u64) -> Self {
        Self { tokens, last: None }
    }

    /// Adds what `rate` tokens a second accrued since the last refill, up
    /// to `cap` held (see the module docs for the rule).
    pub(crate) fn refill(&mut self, now: Time, rate: u64, cap: u64) {
        let us = self
            .last
            .map_or(0, |last| now.saturating_since(last).as_micros());
        let add = u128::from(rate).saturating_mul(us) / 1_000_000;
        let add = u64::try_from(add).unwrap_or(u64::MAX);
        if add > 0 || rate == 0 || self.last.is_none() {
            self.tokens = self.tokens.saturating_add(add).min(cap);
            self.last = Some(now);
        }
    }

    /// Restarts the clock at `now` if that is before the last refill: for
    /// a clock that may step back, so that a step neither freezes the
    /// bucket until the clock catches up nor credits time twice.
    pub(crate) fn rewind(&mut self, now: Time) {
        if self.last.is_some_and(|last| now < last) {
            self.last = Some(now);
        }
    }

    /// Whether it holds `n` tokens.
    pub(crate) fn holds(&self, n: u64) -> bool {
        self.tokens >= n
    }

    /// Takes `n` tokens if it holds that many.
    pub(crate) fn take(&mut self, n: u64) -> bool {
        let held = self.holds(n);
        if held {
            self.tokens -= n;
        }
        held
    }

    /// Takes `n` tokens, or all it holds if fewer.
    pub(crate) fn drain(&mut self, n: u64) {
        self.tokens = self.tokens.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::t;

    #[test]
    fn a_refill_accrues_whole_tokens_and_keeps_the_time_of_a_fraction() {
        // 1000 tokens a second: one a millisecond.
        let mut b = TokenBucket::new(0, t(0));
        b.refill(t(0) + std::time::Duration::from_micros(600), 1000, 10);
        assert!(!b.holds(1), "0.6 of a token");
        b.refill(t(1) + std::time::Duration::from_micros(200), 1000, 10);
        assert!(b.take(1), "1.2 tokens: the 0.6 was kept");
        assert!(!b.holds(1), "and the 0.2 after it was not");
        b.refill(t(100), 1000, 10);
        assert!(b.holds(10) && !b.holds(11), "capped");
    }

    #[test]
    fn an_unstarted_bucket_accrues_nothing_at_its_first_refill() {
        let mut b = TokenBucket::unstarted(5);
        b.drain(3);
        b.refill(t(1000), 1000, 5);
        assert!(b.holds(2) && !b.holds(3));
        b.refill(t(1001), 1000, 5);
        assert!(b.holds(3));
    }

    #[test]
    fn a_clock_step_back_is_frozen_unless_rewound() {
        let mut frozen = TokenBucket::new(0, t(100));
        let mut rewound = frozen;
        for b in [&mut frozen, &mut rewound] {
            b.refill(t(50), 1000, 1000);
        }
        rewound.rewind(t(50));
        for b in [&mut frozen, &mut rewound] {
            b.refill(t(60), 1000, 1000);
        }
        assert!(!frozen.holds(1));
        assert!(rewound.holds(10) && !rewound.holds(11));
    }

    #[test]
    fn a_zero_rate_accrues_nothing_and_moves_the_clock() {
        let mut b = TokenBucket::new(0, t(0));
        b.refill(t(10), 0, 100);
        b.refill(t(20), 1000, 100);
        assert!(b.holds(10) && !b.holds(11));
    }
}
