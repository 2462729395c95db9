//! Time as the caller supplies it.
//!
//! proto never reads a clock. Every state machine takes `now` as a [`Time`]:
//! microseconds since the Unix epoch on the caller's clock. The IO layer
//! passes wall-clock time (so publisher timestamps give one-way latency
//! between synchronised hosts); the simulator passes its virtual clock.

use core::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point in time: microseconds since the Unix epoch, as given by the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// The epoch itself.
    pub const ZERO: Self = Self(0);

    /// A time `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch.
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
}
