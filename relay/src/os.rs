//! What the IO shell reads from the OS for proto: the clock
//! ([`crate::sys::clock`], whose docs say which clock is for what) and
//! secure random bytes ([`crate::sys::random`]). The names every role
//! uses; the platform code behind them lives in [`crate::sys`].

pub use crate::sys::clock::{now, unix_secs, wall_clock, wall_time};
pub use crate::sys::random::random_bytes;
