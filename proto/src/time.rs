//! Time as the caller supplies it: two kinds, never mixed.
//!
//! proto never reads a clock. There are two kinds of time, each its own
//! type so that the compiler keeps them apart:
//!
//! - [`Time`]: the caller's **monotonic** clock, in microseconds from an
//!   origin of the caller's choosing. It never goes back and never jumps;
//!   every timer, deadline, rate and age inside a state machine is counted
//!   on it. Every `now` parameter is a [`Time`].
//! - [`WallTime`]: **wall-clock** time, microseconds since the Unix epoch,
//!   as the protocol carries it between hosts: a publisher's chunk
//!   timestamps, a run's epoch, the signed time a receiver judges for
//!   freshness, a token's expiry.
//!
//! A [`WallClock`] joins them: the caller reads both clocks at one moment
//! and hands the pair to the state machines that stamp or judge wall time
//! (in their configs, and again through `set_wall_clock` when it wants to
//! follow a step of the wall clock). A state machine turns its monotonic
//! `now` into wall time, or a carried wall time into a monotonic deadline,
//! only through its [`WallClock`]. The default clock maps `Time` *t* to
//! `WallTime` *t*: what the simulator and the unit tests use, whose one
//! virtual clock is both.
//!
//! The IO shell's monotonic clock (`shoal_relay`'s `os::now`) happens to
//! start near the Unix time at its first reading, which makes logs easy to
//! read; nothing in proto relies on that.

use core::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point on the caller's monotonic clock: microseconds from its origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// The clock's origin.
    pub const ZERO: Self = Self(0);

    /// A time `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is later than `self`.
    pub fn saturating_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Time {
    type Output = Self;
    fn add(self, rhs: Duration) -> Self {
        Self(self.0.saturating_add(micros(rhs)))
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Duration> for Time {
    type Output = Self;
    fn sub(self, rhs: Duration) -> Self {
        Self(self.0.saturating_sub(micros(rhs)))
    }
}

impl Sub for Time {
    type Output = Duration;
    /// Saturating: a later `rhs` gives zero.
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_since(rhs)
    }
}

/// A wall-clock time: microseconds since the Unix epoch, as the protocol
/// carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime(u64);

impl WallTime {
    /// A wall time `micros` microseconds after the Unix epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch: the value carried on the wire.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for WallTime {
    type Output = Self;
    fn add(self, rhs: Duration) -> Self {
        Self(self.0.saturating_add(micros(rhs)))
    }
}

impl Sub<Duration> for WallTime {
    type Output = Self;
    fn sub(self, rhs: Duration) -> Self {
        Self(self.0.saturating_sub(micros(rhs)))
    }
}

/// The caller's wall clock as seen from its monotonic clock: both read at
/// one moment. See the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WallClock {
    /// The monotonic reading.
    at: Time,
    /// The wall clock's reading at that moment.
    wall: WallTime,
}

impl WallClock {
    /// The clock that reads `wall` at monotonic time `at`.
    pub const fn new(at: Time, wall: WallTime) -> Self {
        Self { at, wall }
    }

    /// The wall time at monotonic time `now`.
    pub fn wall_at(&self, now: Time) -> WallTime {
        if now >= self.at {
            self.wall + (now - self.at)
        } else {
            self.wall - (self.at - now)
        }
    }

    /// The monotonic time at which the wall clock reads `wall`; saturates
    /// at the monotonic origin.
    pub fn time_at(&self, wall: WallTime) -> Time {
        if wall >= self.wall {
            self.at + wall.saturating_since(self.wall)
        } else {
            self.at - self.wall.saturating_since(wall)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Time::from_micros(1_000);
        assert_eq!((t + Duration::from_millis(1)).as_micros(), 2_000);
        assert_eq!((t - Duration::from_secs(1)).as_micros(), 0);
        assert_eq!(Time::ZERO - t, Duration::ZERO);
        assert_eq!(t - Time::ZERO, Duration::from_millis(1));
    }

    #[test]
    fn a_wall_clock_maps_both_ways() {
        let clock = WallClock::new(Time::from_micros(5_000), WallTime::from_micros(1_000_000));
        assert_eq!(
            clock.wall_at(Time::from_micros(7_000)).as_micros(),
            1_002_000
        );
        assert_eq!(clock.wall_at(Time::from_micros(4_000)).as_micros(), 999_000);
        assert_eq!(
            clock.time_at(WallTime::from_micros(1_002_000)),
            Time::from_micros(7_000)
        );
        assert_eq!(
            clock.time_at(WallTime::from_micros(999_000)),
            Time::from_micros(4_000)
        );
        assert_eq!(clock.time_at(WallTime::from_micros(0)), Time::ZERO);
        let identity = WallClock::default();
        assert_eq!(identity.wall_at(Time::from_micros(42)).as_micros(), 42);
    }
}
