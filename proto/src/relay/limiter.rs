//! Per-source-host handshake rate limit in bounded memory.
//!
//! A fixed table of token buckets indexed by a keyed hash of the source
//! host (an IPv4 address, or an IPv6 /64: see [`Host`], since one IPv6
//! host may send from any address of its /64): whatever arrives, memory is
//! the table. Addresses that collide share
//! a bucket, which can only make the limit stricter for them; the key
//! (from the cookie secret) keeps an attacker from choosing collisions.
//!
//! The table is allocated in pages of [`PAGE`] buckets, each on the first
//! use of one of its buckets (an unused bucket is full and unstarted, so
//! a page made late holds what it would have held from the start): a
//! node that hears few hosts (an ordinary peer's upload side, thousands of
//! them in the simulator) pays for the pages they hash to, and a flood
//! from many hosts fills the table to the same bound as ever.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;

use super::host::Host;
use crate::Time;
use crate::bucket::TokenBucket;

/// Buckets in the table.
const BUCKETS: usize = 4096;
/// Buckets in a page, allocated together.
const PAGE: usize = 16;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct HandshakeLimiter {
    /// Pages of buckets, `None` until one of them is used; empty until
    /// the first handshake. Tokens in millionths of a handshake; each
    /// bucket starts full, its clock at its first use.
    pages: Vec<Option<Box<[TokenBucket; PAGE]>>>,
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
            pages: Vec::new(),
            key,
            rate: u64::from(rate),
            burst,
        }
    }

    /// Bucket `i` of the table, its page allocated if it was not.
    fn bucket(&mut self, i: usize) -> Option<&mut TokenBucket> {
        if self.pages.is_empty() {
            self.pages.resize_with(BUCKETS / PAGE, || None);
        }
        let full = TokenBucket::unstarted(self.burst * UNIT);
        self.pages
            .get_mut(i / PAGE)?
            .get_or_insert_with(|| Box::new([full; PAGE]))
            .get_mut(i % PAGE)
    }

    /// Pages allocated so far.
    #[cfg(test)]
    fn pages_used(&self) -> usize {
        self.pages.iter().flatten().count()
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
        let Some(b) = self.bucket(i) else {
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
        assert_eq!(l.pages_used(), 0, "and costs no table");
    }

    #[test]
    fn pages_come_with_hosts_and_stop_at_the_table() {
        let mut l = HandshakeLimiter::new([7; 32], 10, 20);
        let t0 = Time::from_micros(1_000_000);
        assert_eq!(l.pages_used(), 0);
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        assert!(l.allow(t0, ip(1)));
        assert_eq!(l.pages_used(), 1, "one host, one page");
        // A flood from many hosts fills the whole table, and no more.
        for i in 0..100_000 {
            l.allow(t0, ip(i));
        }
        assert_eq!(l.pages_used(), BUCKETS / PAGE);
    }
}
