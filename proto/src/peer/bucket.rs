//! The upload limit: a token bucket over bytes.

use std::time::Duration;

use crate::Time;

/// Lets through `rate` bytes per second on average, bursts of `burst`.
#[derive(Debug, Clone)]
pub(super) struct Bucket {
    rate: u64,
    burst: u64,
    tokens: u64,
    last: Time,
}

impl Bucket {
    /// A full bucket; `bits_per_second` 0 lets nothing through.
    pub(super) fn new(bits_per_second: u64, burst: Duration, now: Time) -> Self {
        let rate = bits_per_second / 8;
        let burst = (rate.saturating_mul(burst.as_micros() as u64) / 1_000_000).max(1500);
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Adds what accrued since the last call.
    pub(super) fn refill(&mut self, now: Time) {
        let us = now.saturating_since(self.last).as_micros() as u64;
        // Accrue whole bytes only, keeping the remainder's time.
        let add = self.rate.saturating_mul(us) / 1_000_000;
        if add > 0 || self.rate == 0 {
            self.tokens = (self.tokens + add).min(self.burst);
            self.last = now;
        }
    }

    /// Takes `bytes` if there are that many.
    pub(super) fn take(&mut self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        if self.rate > 0 && self.tokens >= bytes {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }
}
