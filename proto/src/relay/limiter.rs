//! Per-source-host handshake rate limit in bounded memory.
//!
//! A fixed table of token buckets indexed by a keyed hash of the source
//! host (an IPv4 address, or an IPv6 /64: see [`Host`], since one IPv6
//! host may send from any address of its /64): whatever arrives, memory is
//! the table. Addresses that collide share
//! a bucket, which can only make the limit stricter for them; the key
//! (from the cookie secret) keeps an attacker from choosing collisions.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;

use super::host::Host;
use crate::Time;
use crate::bucket::TokenBucket;

/// Buckets in the table.
const BUCKETS: usize = 4096;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct HandshakeLimiter {
    /// Tokens in millionths of a handshake; each starts full, its clock
    /// at its first use.
    buckets: Vec<TokenBucket>,
    key: [u8; 32],
    /// Handshakes per second per IP; 0 turns the limit off.
    rate: u64,
    burst: u64,
}

const UNIT: u64 = 1_000_000;

impl HandshakeLimiter {
    pub(crate) fn new(key: [u8; 32], rate: u32, burst: u32) -> Self {
        let burst = u64::from(burst.max(1));
        Self {
            buckets: vec![TokenBucket::unstarted(burst * UNIT); BUCKETS],
            key,
            rate: u64::from(rate),
            burst,
        }
    }

    /// Whether a handshake from `ip` (its host's bucket) at `now` is
    /// within its rate; takes a token if so.
    pub(crate) fn allow(&mut self, now: Time, ip: IpAddr) -> bool {
        if self.rate == 0 {
            return true;
        }
        let mut h = DefaultHasher::new();
        self.key.hash(&mut h);
        Host::of(ip).hash(&mut h);
        let i = (h.finish() % BUCKETS as u64) as usize;
        let (rate, cap) = (self.rate, self.burst * UNIT);
        let Some(b) = self.buckets.get_mut(i) else {
            return true;
        };
        b.refill(now, rate * UNIT, cap);
        b.rewind(now);
        b.take(UNIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let mut l = HandshakeLimiter::new([7; 32], 10, 20);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let t0 = Time::from_micros(1_000_000);
        let allowed = (0..100).filter(|_| l.allow(t0, ip)).count();
        assert_eq!(allowed, 20, "the burst");
        // One second later: ten more.
        let t1 = t0 + Duration::from_secs(1);
        let allowed = (0..100).filter(|_| l.allow(t1, ip)).count();
        assert_eq!(allowed, 10, "the rate");
        // Another address is not affected (unless it collides, which this
        // one does not with this key).
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        assert!(l.allow(t1, other));
    }

    #[test]
    fn an_ipv6_slash_64_shares_one_bucket() {
        let mut l = HandshakeLimiter::new([7; 32], 10, 20);
        let t0 = Time::from_micros(1_000_000);
        let allowed = (0..1000u128)
            .map(|i| {
                IpAddr::from(std::net::Ipv6Addr::from(
                    0x2001_0db8_0001_0002u128 << 64 | i,
                ))
            })
            .filter(|&ip| l.allow(t0, ip))
            .count();
        assert_eq!(allowed, 20, "1000 addresses of one /64 share one burst");
        // The next /64 is another host.
        let next: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert!(l.allow(t0, next));
    }

    #[test]
    fn zero_rate_is_off() {
        let mut l = HandshakeLimiter::new([0; 32], 0, 0);
        let ip: IpAddr = "::1".parse().expect("ip");
        assert!((0..1000).all(|_| l.allow(Time::ZERO, ip)));
    }
}
