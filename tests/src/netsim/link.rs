//! One directed link: its configuration, its state, and the fate it deals
//! each datagram.
//!
//! A datagram entering a link goes through, in order: the rate limiter's
//! queue (dropped if the queue is full), random loss and the Gilbert-Elliott
//! chain (both drawn for every queued datagram, so the chain steps once per
//! datagram whatever the coin says), then latency, jitter and perhaps the
//! reordering delay; a duplicate, if drawn, leaves at the same moment with
//! its own jitter and reordering draws.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use shoal_proto::Time;

use super::loss::{BurstState, GilbertElliott, chance, check_probability};
use super::stats::LinkStats;

/// How one directed link treats datagrams. The default is a perfect link:
/// no delay, no loss, no rate limit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way delay added to every datagram.
    pub latency: Duration,
    /// Uniform jitter: each datagram's delay moves by up to this much either
    /// way (never below zero). Jitter alone reorders datagrams sent closer
    /// together than the jitter's span.
    pub jitter: Duration,
    /// Chance that a datagram is lost, independently of every other.
    pub loss: f64,
    /// Burst loss on top of `loss`.
    pub burst: GilbertElliott,
    /// Chance that a datagram is held back by an extra `reorder_delay`,
    /// letting later datagrams overtake it.
    pub reorder: f64,
    /// Extra delay of a datagram picked by `reorder`.
    pub reorder_delay: Duration,
    /// Chance that a datagram arrives twice.
    pub duplicate: f64,
    /// Bottleneck rate in bits per second; `None` is unlimited. Datagrams are
    /// serialised one after another, so a burst leaves spread out.
    pub rate_bps: Option<u64>,
    /// Bytes the rate limiter may hold (waiting or being serialised) before
    /// it drops arrivals; `None` is unbounded. Ignored without `rate_bps`.
    pub queue_bytes: Option<usize>,
}

impl LinkConfig {
    /// A perfect link apart from a fixed one-way `latency`.
    pub fn with_latency(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    /// Panics naming the field if the config makes no sense.
    pub(super) fn validate(&self) {
        check_probability("loss", self.loss);
        check_probability("reorder", self.reorder);
        check_probability("duplicate", self.duplicate);
        self.burst.validate();
        assert!(
            self.rate_bps != Some(0),
            "link config: rate_bps = Some(0) lets nothing through; use None for unlimited"
        );
    }
}

/// Why a datagram did not arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropCause {
    /// Independent random loss (`LinkConfig::loss`).
    Random,
    /// Gilbert-Elliott burst loss (`LinkConfig::burst`).
    Burst,
    /// The rate limiter's queue was full.
    Queue,
    /// A tap on the link returned false.
    Tap,
    /// Its IP TTL ran out on the way ([`Outgoing::ttl`](super::Outgoing::ttl)):
    /// in a router on the path, or in the sender's own NAT.
    TtlExpired,
    /// The sender's [`Uplink`](super::Uplink) was full.
    Uplink,
}

impl DropCause {
    /// A stable byte for the trace hash.
    pub(super) fn code(self) -> u8 {
        match self {
            Self::Random => 1,
            Self::Burst => 2,
            Self::Queue => 3,
            Self::Tap => 4,
            Self::TtlExpired => 5,
            Self::Uplink => 6,
        }
    }
}

/// Sees, may alter, and decides about every datagram entering a link:
/// returning false drops it.
pub type Tap = Box<dyn FnMut(&mut Vec<u8>) -> bool + Send>;

/// What a link does with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    Dropped(DropCause),
    Arrives {
        at: Time,
        duplicate_at: Option<Time>,
    },
}

/// A directed link's state. Created on first use with the config that then
/// applies; the network refreshes `config` when the rules change.
pub(super) struct Link {
    /// Where the network counts the traffic toward its receiver.
    pub(super) to_stats: usize,
    pub(super) config: LinkConfig,
    /// Which generation of the link rules `config` came from.
    pub(super) generation: u64,
    pub(super) stats: LinkStats,
    pub(super) tap: Option<Tap>,
    burst: BurstState,
    /// When the rate limiter finishes serialising what it holds, in
    /// nanoseconds since the epoch: microseconds would round every datagram
    /// and the error would add up over a burst.
    busy_until_ns: u128,
}

impl Link {
    pub(super) fn new(to_stats: usize, config: LinkConfig, generation: u64) -> Self {
        Self {
            to_stats,
            config,
            generation,
            stats: LinkStats::default(),
            tap: None,
            burst: BurstState::default(),
            busy_until_ns: 0,
        }
    }

    /// Decides the fate of a datagram of `len` bytes entering at `now`.
    pub(super) fn transmit(&mut self, now: Time, len: usize, rng: &mut impl Rng) -> Fate {
        let departure = match self.config.rate_bps {
            None => now,
            Some(rate) => match self.enqueue(now, len, rate) {
                Some(departure) => departure,
                None => return Fate::Dropped(DropCause::Queue),
            },
        };
        let random = chance(rng, self.config.loss);
        let burst = self.burst.step(&self.config.burst, rng);
        if random {
            return Fate::Dropped(DropCause::Random);
        }
        if burst {
            return Fate::Dropped(DropCause::Burst);
        }
        let at = departure + self.delay(rng);
        let duplicate_at = chance(rng, self.config.duplicate).then(|| departure + self.delay(rng));
        Fate::Arrives { at, duplicate_at }
    }

    /// Puts `len` bytes in the rate limiter's queue: the time the last bit
    /// leaves, or `None` if the queue has no room.
    fn enqueue(&mut self, now: Time, len: usize, rate_bps: u64) -> Option<Time> {
        const NANOS_PER_SEC: u128 = 1_000_000_000;
        let rate = u128::from(rate_bps);
        let len = len as u128;
        let now_ns = u128::from(now.as_micros()) * 1_000;
        if let Some(limit) = self.config.queue_bytes {
            let backlog_ns = self.busy_until_ns.saturating_sub(now_ns);
            // Rounded down: serialisation times are rounded up, so this gives
            // back exactly the bytes queued.
            let backlog_bytes = backlog_ns * rate / (8 * NANOS_PER_SEC);
            if backlog_bytes + len > limit as u128 {
                return None;
            }
        }
        let serialise_ns = (len * 8 * NANOS_PER_SEC).div_ceil(rate);
        self.busy_until_ns = self.busy_until_ns.max(now_ns) + serialise_ns;
        let micros = self.busy_until_ns.div_ceil(1_000);
        Some(Time::from_micros(u64::try_from(micros).unwrap_or(u64::MAX)))
    }

    /// Latency, jitter and perhaps the reordering delay for one copy.
    fn delay(&self, rng: &mut impl Rng) -> Duration {
        let config = &self.config;
        let mut delay = config.latency;
        let jitter = micros(config.jitter);
        if jitter > 0 {
            let offset = rng.random_range(0..=2 * jitter);
            delay += Duration::from_micros(offset);
            delay = delay.saturating_sub(Duration::from_micros(jitter));
        }
        if chance(rng, config.reorder) {
            delay += config.reorder_delay;
        }
        delay
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("config", &self.config)
            .field("generation", &self.generation)
            .field("stats", &self.stats)
            .field("tapped", &self.tap.is_some())
            .field("burst", &self.burst)
            .field("busy_until_ns", &self.busy_until_ns)
            .finish()
    }
}

/// Whole microseconds in `d`, saturating.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const T0: Time = Time::from_micros(1_700_000_000_000_000);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn arrival(fate: Fate) -> Time {
        match fate {
            Fate::Arrives { at, .. } => at,
            Fate::Dropped(cause) => panic!("dropped: {cause:?}"),
        }
    }

    #[test]
    fn perfect_link_delivers_at_once() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut link = Link::new(0, LinkConfig::default(), 0);
        let fate = link.transmit(T0, 1200, &mut rng);
        assert_eq!(
            fate,
            Fate::Arrives {
                at: T0,
                duplicate_at: None
            }
        );
    }

    #[test]
    fn jitter_stays_within_bounds_and_spreads() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let config = LinkConfig {
            latency: ms(20),
            jitter: ms(5),
            ..LinkConfig::default()
        };
        let mut link = Link::new(0, config, 0);
        let delays: Vec<Duration> = (0..10_000)
            .map(|_| arrival(link.transmit(T0, 100, &mut rng)) - T0)
            .collect();
        assert!(delays.iter().all(|d| (ms(15)..=ms(25)).contains(d)));
        let min = delays.iter().min().expect("non-empty");
        let max = delays.iter().max().expect("non-empty");
        assert!(*min < ms(16) && *max > ms(24), "min {min:?} max {max:?}");
    }

    #[test]
    fn jitter_never_goes_below_zero() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let config = LinkConfig {
            latency: ms(1),
            jitter: ms(10),
            ..LinkConfig::default()
        };
        let mut link = Link::new(0, config, 0);
        assert!((0..1_000).all(|_| arrival(link.transmit(T0, 100, &mut rng)) >= T0));
    }

    #[test]
    fn rate_limit_serialises_a_burst_and_drops_past_the_queue() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let config = LinkConfig {
            latency: ms(10),
            rate_bps: Some(8_000_000), // 1000 bytes per millisecond
            queue_bytes: Some(10_000),
            ..LinkConfig::default()
        };
        let mut link = Link::new(0, config, 0);
        let fates: Vec<Fate> = (0..15).map(|_| link.transmit(T0, 1000, &mut rng)).collect();
        for (i, fate) in fates.iter().take(10).enumerate() {
            let serialised = ms(i as u64 + 1);
            assert_eq!(arrival(*fate), T0 + serialised + ms(10), "datagram {i}");
        }
        assert!(
            fates[10..]
                .iter()
                .all(|f| *f == Fate::Dropped(DropCause::Queue))
        );
        // Half a millisecond later half a datagram has left: still no room.
        let later = T0 + Duration::from_micros(500);
        assert_eq!(
            link.transmit(later, 1000, &mut rng),
            Fate::Dropped(DropCause::Queue)
        );
        // After one whole datagram has left there is room for one more,
        // queued behind the other nine.
        let later = T0 + ms(1);
        assert_eq!(arrival(link.transmit(later, 1000, &mut rng)), T0 + ms(21));
        // Once drained, a datagram only waits for its own serialisation.
        let idle = T0 + ms(100);
        assert_eq!(
            arrival(link.transmit(idle, 500, &mut rng)),
            idle + ms(10) + Duration::from_micros(500)
        );
    }

    #[test]
    fn rate_limit_without_rounding_drift() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let config = LinkConfig {
            rate_bps: Some(3_000_000), // 1000 bytes = 2666.67 µs
            ..LinkConfig::default()
        };
        let mut link = Link::new(0, config, 0);
        let last = (0..300)
            .map(|_| arrival(link.transmit(T0, 1000, &mut rng)))
            .last()
            .expect("non-empty");
        // 300 * 8000 bits / 3 Mbit/s = 0.8 s exactly (give or take the last µs).
        let took = last - T0;
        assert!(
            took >= ms(800) && took <= ms(800) + Duration::from_micros(1),
            "{took:?}"
        );
    }

    #[test]
    #[should_panic(expected = "rate_bps")]
    fn zero_rate_is_rejected() {
        LinkConfig {
            rate_bps: Some(0),
            ..LinkConfig::default()
        }
        .validate();
    }
}
