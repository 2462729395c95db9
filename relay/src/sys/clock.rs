//! The clocks the IO shell gives proto, and the one the kernel stamps
//! received datagrams with.
//!
//! # Two clocks, one rule
//!
//! - [`now`] is the time every proto state machine, timer and deadline is
//!   given. It is monotonic: the wall clock read once, at the first call,
//!   plus the [`Instant`] time elapsed since. Its values stay close to Unix
//!   microseconds (publisher timestamps and a viewer's latency figure rely
//!   on that), but a step of the wall clock (NTP, an operator's `date -s`)
//!   cannot move it, so no timer freezes when the wall clock goes back and
//!   none fires early when it jumps forward.
//! - [`wall_clock`] is the true wall clock, for what is meant in wall time
//!   and nothing else: token expiry (`Relay::set_wall_clock`, refreshed
//!   regularly by the worker, and `shoal token` / `--token`), BEP 44
//!   sequence numbers and other Unix seconds.
//!
//! A long-running process drifts from the wall clock by whatever steps it
//! sat through; that is the price of timers that never stall.
//!
//! [`realtime_nanos`] is the wall clock at the resolution of the kernel's
//! receive timestamps (SO_TIMESTAMPNS), to compare with them.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use shoal_proto::Time;

/// The monotonic time now, as proto counts it (see the module docs).
pub fn now() -> Time {
    static CLOCK: OnceLock<Clock<fn() -> Time>> = OnceLock::new();
    CLOCK.get_or_init(|| Clock::new(wall_clock)).now()
}

/// The true wall clock: microseconds since the Unix epoch. Not for timers;
/// see the module docs.
pub fn wall_clock() -> Time {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    Time::from_micros(micros)
}

/// Seconds since the Unix epoch, by the true wall clock.
pub fn unix_secs() -> u64 {
    wall_clock().as_micros() / 1_000_000
}

/// A monotonic clock anchored to a wall clock once: `wall` is read when
/// the clock is made and never again, so the clock's readings follow the
/// [`Instant`] clock whatever `wall` does later. The wall source is a
/// parameter so a test can step it.
#[derive(Debug)]
pub struct Clock<W> {
    /// The wall source, kept for [`Clock::wall`].
    wall: W,
    /// `wall` at `origin`.
    base: Time,
    origin: Instant,
}

impl<W: Fn() -> Time> Clock<W> {
    /// Reads `wall` once and starts counting from there.
    pub fn new(wall: W) -> Self {
        let base = wall();
        Self {
            wall,
            base,
            origin: Instant::now(),
        }
    }

    /// The monotonic time now.
    pub fn now(&self) -> Time {
        self.base + self.origin.elapsed()
    }

    /// The wall source's reading now (may step either way).
    pub fn wall(&self) -> Time {
        (self.wall)()
    }
}

/// Nanoseconds since the epoch on CLOCK_REALTIME, the clock of the
/// kernel's receive timestamps.
pub fn realtime_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    /// Bound on the busy waits below: far beyond the 20 ms they wait for.
    const PATIENCE: Duration = Duration::from_secs(10);

    const HOUR: u64 = 3_600_000_000;

    #[test]
    fn a_backward_wall_step_neither_stops_time_nor_a_deadline() {
        let wall = Arc::new(AtomicU64::new(1_800_000_000_000_000));
        let source = Arc::clone(&wall);
        let clock = Clock::new(move || Time::from_micros(source.load(Ordering::Relaxed)));
        let before = clock.now();
        let deadline = before + Duration::from_millis(20);

        wall.fetch_sub(HOUR, Ordering::Relaxed);
        assert!(
            clock.wall() < before,
            "the injected wall clock went back an hour"
        );

        let started = Instant::now();
        let mut last = clock.now();
        assert!(last >= before, "time went back: {before:?} -> {last:?}");
        while last < deadline {
            assert!(
                started.elapsed() < PATIENCE,
                "the deadline never fired: stuck at {last:?}, deadline {deadline:?}"
            );
            std::hint::spin_loop();
            let t = clock.now();
            assert!(t >= last, "time went back: {last:?} -> {t:?}");
            last = t;
        }
        // And it kept to real time, not to the stepped wall.
        let drift = last.saturating_since(before);
        assert!(drift < PATIENCE, "advanced {drift:?}");
    }

    #[test]
    fn a_publisher_timer_fires_across_a_backward_wall_step() {
        use shoal_proto::integrity::PublisherKey;
        use shoal_proto::publisher::{Publisher, PublisherConfig};
        use shoal_proto::wire::{MessageType, peek_type};

        let wall = Arc::new(AtomicU64::new(1_800_000_000_000_000));
        let source = Arc::clone(&wall);
        let clock = Clock::new(move || Time::from_micros(source.load(Ordering::Relaxed)));
        let relay = std::net::SocketAddr::from(([127, 0, 0, 1], 7400));
        let mut publisher = Publisher::new(
            PublisherKey::from_seed([7; 32]),
            PublisherConfig::default(),
            vec![relay],
            clock.now(),
        )
        .expect("a publisher");
        // Less than a chunk (a packet is taken once the next one's sync
        // byte frames it): it goes out when its chunk time runs out.
        let mut packet = [0xff_u8; 188];
        packet[..4].copy_from_slice(&[0x47, 0x01, 0x00, 0x10]);
        publisher.handle_input(clock.now(), &packet.repeat(3));
        while publisher.poll_transmit().is_some() {}

        wall.fetch_sub(HOUR, Ordering::Relaxed);

        // Its timers (chunk time, then block time) run on the clock alone.
        let started = Instant::now();
        let mut data = 0;
        while data == 0 {
            let due = publisher.poll_timeout().expect("a timer");
            while clock.now() < due {
                assert!(started.elapsed() < PATIENCE, "a timer never came due");
                std::hint::spin_loop();
            }
            publisher.handle_timeout(clock.now());
            while let Some(t) = publisher.poll_transmit() {
                data += usize::from(peek_type(t.payload) == Ok(MessageType::Data));
            }
        }
        assert_eq!(data, 1, "the partial chunk went out");
    }

    #[test]
    fn a_forward_wall_step_fires_nothing_early() {
        let wall = Arc::new(AtomicU64::new(1_800_000_000_000_000));
        let source = Arc::clone(&wall);
        let clock = Clock::new(move || Time::from_micros(source.load(Ordering::Relaxed)));
        let deadline = clock.now() + Duration::from_secs(60);
        wall.fetch_add(HOUR, Ordering::Relaxed);
        assert!(clock.now() < deadline);
    }

    #[test]
    fn now_never_goes_back_and_starts_near_the_wall_clock() {
        let mut last = now();
        for _ in 0..100_000 {
            let t = now();
            assert!(t >= last, "{last:?} -> {t:?}");
            last = t;
        }
        let wall = wall_clock();
        let apart = wall.saturating_since(last).max(last.saturating_since(wall));
        // Only a wall step during the test could part them.
        assert!(
            apart < Duration::from_secs(5),
            "now() is {apart:?} from the wall clock"
        );
    }
}
