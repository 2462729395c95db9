//! A node's uplink: the one queue every datagram it sends waits in,
//! whatever its destination.
//!
//! A link's own rate limiter ([`LinkConfig::rate_bps`]) is per directed
//! link, so a node sending to a hundred peers gets a hundred bottlenecks.
//! A real host has one access link (a home router's upstream, a server's
//! NIC and the core that feeds it): its datagrams leave one after another
//! at one rate, each after a fixed processing cost, and a full buffer
//! drops what arrives (tail drop). [`Uplink`] is that serializer. The
//! network applies it after the link's tap and before the link's fate, and
//! the link then treats the datagram as entering when it leaves the
//! uplink. It draws no randomness, and a node without one sends exactly as
//! before.
//!
//! [`LinkConfig::rate_bps`]: super::LinkConfig::rate_bps

use std::collections::VecDeque;
use std::time::Duration;

use shoal_proto::Time;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A node's access uplink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uplink {
    /// Rate in bits per second.
    pub rate_bps: u64,
    /// Bytes it holds (waiting or being sent) before it drops arrivals.
    pub queue_bytes: usize,
    /// Time spent on each datagram on top of its bits: a sender's cost per
    /// datagram (syscall, copy, the NIC's per-packet work), serial like
    /// the bits.
    pub per_datagram: Duration,
}

impl Uplink {
    /// Panics naming the field if the uplink makes no sense.
    pub(super) fn validate(&self) {
        assert!(
            self.rate_bps > 0,
            "uplink: rate_bps = 0 lets nothing through"
        );
    }
}

/// Where one node's uplink is: what it holds and when each leaves.
#[derive(Debug)]
pub(super) struct UplinkQueue {
    config: Uplink,
    /// When each datagram held finishes leaving (nanoseconds since the
    /// epoch, as the link's limiter, so rounding never adds up), and its
    /// length, oldest first.
    held: VecDeque<(u128, usize)>,
    held_bytes: usize,
    busy_until_ns: u128,
}

impl UplinkQueue {
    pub(super) fn new(config: Uplink) -> Self {
        Self {
            config,
            held: VecDeque::new(),
            held_bytes: 0,
            busy_until_ns: 0,
        }
    }

    /// Queues a datagram of `len` bytes handed over at `now`: when it has
    /// left, or `None` if the queue has no room for it.
    pub(super) fn enqueue(&mut self, now: Time, len: usize) -> Option<Time> {
        let now_ns = u128::from(now.as_micros()) * 1_000;
        while let Some(&(done, bytes)) = self.held.front()
            && done <= now_ns
        {
            self.held.pop_front();
            self.held_bytes -= bytes;
        }
        if self.held_bytes.saturating_add(len) > self.config.queue_bytes {
            return None;
        }
        let bits_ns = (len as u128 * 8 * NANOS_PER_SEC).div_ceil(u128::from(self.config.rate_bps));
        let cost_ns = self.config.per_datagram.as_nanos();
        self.busy_until_ns = self.busy_until_ns.max(now_ns) + cost_ns + bits_ns;
        self.held.push_back((self.busy_until_ns, len));
        self.held_bytes += len;
        let micros = self.busy_until_ns.div_ceil(1_000);
        Some(Time::from_micros(u64::try_from(micros).unwrap_or(u64::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Time = Time::from_micros(1_700_000_000_000_000);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn datagrams_leave_one_after_another_and_the_tail_is_dropped() {
        // 1000 bytes per millisecond, room for three such datagrams.
        let mut q = UplinkQueue::new(Uplink {
            rate_bps: 8_000_000,
            queue_bytes: 3_000,
            per_datagram: Duration::ZERO,
        });
        let out: Vec<_> = (0..5).map(|_| q.enqueue(T0, 1_000)).collect();
        assert_eq!(
            out,
            [
                Some(T0 + us(1_000)),
                Some(T0 + us(2_000)),
                Some(T0 + us(3_000)),
                None,
                None
            ]
        );
        // Once the first has left there is room for one more, behind the
        // other two.
        assert_eq!(q.enqueue(T0 + us(999), 1_000), None);
        assert_eq!(q.enqueue(T0 + us(1_000), 1_000), Some(T0 + us(4_000)));
        // Idle again, a datagram waits only for itself.
        let idle = T0 + us(10_000);
        assert_eq!(q.enqueue(idle, 500), Some(idle + us(500)));
    }

    #[test]
    fn the_cost_per_datagram_is_serial_with_the_bits() {
        // 10 Gbit/s: 1250 bytes take 1 µs; plus 1.1 µs each.
        let mut q = UplinkQueue::new(Uplink {
            rate_bps: 10_000_000_000,
            queue_bytes: 2 << 20,
            per_datagram: Duration::from_nanos(1_100),
        });
        let last = (0..1_000)
            .map(|_| q.enqueue(T0, 1_250))
            .last()
            .flatten()
            .expect("room for all");
        assert_eq!(last, T0 + us(2_100));
    }

    #[test]
    fn no_drift_at_a_rate_that_does_not_divide() {
        // 1000 bytes at 3 Mbit/s = 2666.67 µs; 300 of them 0.8 s.
        let mut q = UplinkQueue::new(Uplink {
            rate_bps: 3_000_000,
            queue_bytes: usize::MAX,
            per_datagram: Duration::ZERO,
        });
        let last = (0..300)
            .map(|_| q.enqueue(T0, 1_000))
            .last()
            .flatten()
            .expect("unbounded");
        assert!(last - T0 <= Duration::from_millis(800) + us(1));
        assert!(last - T0 >= Duration::from_millis(800));
    }

    #[test]
    #[should_panic(expected = "rate_bps")]
    fn zero_rate_is_rejected() {
        Uplink {
            rate_bps: 0,
            queue_bytes: 1,
            per_datagram: Duration::ZERO,
        }
        .validate();
    }
}
