//! The clocks the IO shell gives proto, and the one the kernel stamps
//! received datagrams with.
//!
//! # Two clocks, one rule
//!
//! proto keeps the two kinds of time apart (`shoal_proto::time`); so does
//! this module:
//!
//! - [`now`] is the monotonic [`Time`] every proto state machine, timer and
//!   deadline is given: the [`Instant`] time elapsed since the first call,
//!   counted from the wall time of that call (so that its readings are easy
//!   to read in logs; nothing relies on it). A step of the wall clock (NTP,
//!   an operator's `date -s`) cannot move it, so no timer freezes when the
//!   wall clock goes back and none fires early when it jumps forward.
//! - [`wall_time`] is the true wall clock, a [`WallTime`], for what is
//!   meant in wall time and nothing else: BEP 44 sequence numbers, token
//!   issue (`shoal token`) and other Unix seconds.
//! - [`wall_clock`] reads both at once: the [`WallClock`] a state machine
//!   turns its monotonic `now` into wall time with (publisher timestamps,
//!   the freshness of signed times, a viewer's latency figure, token
//!   expiry). A relay is given a fresh one regularly, so it follows steps
//!   of the wall clock without its timers doing so.
//!
//! [`realtime_nanos`] is the wall clock at the resolution of the kernel's
//! receive timestamps (SO_TIMESTAMPNS), to compare with them.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use shoal_proto::{Time, WallClock, WallTime};

/// The monotonic time now, as proto counts it (see the module docs).
pub fn now() -> Time {
    static CLOCK: OnceLock<Clock<fn() -> WallTime>> = OnceLock::new();
    CLOCK.get_or_init(|| Clock::new(wall_time)).now()
}

/// The true wall clock. Not for timers; see the module docs.
pub fn wall_time() -> WallTime {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    WallTime::from_micros(micros)
}

/// The monotonic clock and the wall clock, read together: what proto's
/// state machines take to stamp and judge wall times (see the module docs).
pub fn wall_clock() -> WallClock {
    WallClock::new(now(), wall_time())
}

/// Seconds since the Unix epoch, by the true wall clock.
pub fn unix_secs() -> u64 {
    wall_time().as_secs()
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

impl<W: Fn() -> WallTime> Clock<W> {
    /// Reads `wall` once and starts counting from there.
    pub fn new(wall: W) -> Self {
        let base = Time::from_micros(wall().as_micros());
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
    pub fn wall(&self) -> WallTime {
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
        let clock = Clock::new(move || WallTime::from_micros(source.load(Ordering::Relaxed)));
        let before = clock.now();
        let deadline = before + Duration::from_millis(20);

        wall.fetch_sub(HOUR, Ordering::Relaxed);
        assert!(
            clock.wall().as_micros() < before.as_micros(),
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
        let clock = Clock::new(move || WallTime::from_micros(source.load(Ordering::Relaxed)));
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
        let clock = Clock::new(move || WallTime::from_micros(source.load(Ordering::Relaxed)));
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
        let wall = Time::from_micros(wall_time().as_micros());
        let apart = wall.saturating_since(last).max(last.saturating_since(wall));
        // Only a wall step during the test could part them.
        assert!(
            apart < Duration::from_secs(5),
            "now() is {apart:?} from the wall clock"
        );
    }
}
