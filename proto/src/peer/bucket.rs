//! The upload limit: a token bucket over bytes.

use std::time::Duration;

use crate::Time;
use crate::bucket::TokenBucket;

/// Lets through `rate` bytes per second on average, bursts of `burst`.
#[derive(Debug, Clone)]
pub(super) struct Bucket {
    rate: u64,
    burst: u64,
    /// In whole bytes: a refill keeps the time of a fraction of a byte.
    bucket: TokenBucket,
}

impl Bucket {
    /// A full bucket; `bits_per_second` 0 lets nothing through.
    pub(super) fn new(bits_per_second: u64, burst: Duration, now: Time) -> Self {
        let rate = bits_per_second / 8;
        let burst = (rate.saturating_mul(burst.as_micros() as u64) / 1_000_000).max(1500);
        Self {
            rate,
            burst,
            bucket: TokenBucket::new(burst, now),
        }
    }

    /// Adds what accrued since the last call.
    pub(super) fn refill(&mut self, now: Time) {
        self.bucket.refill(now, self.rate, self.burst);
    }

    /// Takes `bytes` if there are that many.
    pub(super) fn take(&mut self, bytes: usize) -> bool {
        self.rate > 0 && self.bucket.take(bytes as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_through_the_rate_and_the_burst_and_no_more() {
        let t0 = Time::from_micros(1_000_000);
        // 8 Mbit/s = 1 MB/s, 250 ms burst = 250 kB.
        let mut b = Bucket::new(8_000_000, Duration::from_millis(250), t0);
        let mut sent = 0;
        while b.take(1000) {
            sent += 1000;
        }
        assert_eq!(sent, 250_000);
        // One second later: one second's worth, capped at the burst.
        b.refill(t0 + Duration::from_millis(100));
        let mut more = 0;
        while b.take(1000) {
            more += 1000;
        }
        assert_eq!(more, 100_000);
        b.refill(t0 + Duration::from_secs(10));
        let mut capped = 0;
        while b.take(1000) {
            capped += 1000;
        }
        assert_eq!(capped, 250_000);
    }

    #[test]
    fn a_zero_limit_lets_nothing_through() {
        let t0 = Time::from_micros(1);
        let mut b = Bucket::new(0, Duration::from_millis(250), t0);
        b.refill(t0 + Duration::from_secs(5));
        assert!(!b.take(1));
    }
}
