//! What the IO shell reads from the OS for proto: the wall clock and
//! secure random bytes.

use std::io::{self, Read};
use std::time::{SystemTime, UNIX_EPOCH};

use shoal_proto::Time;

/// The time now, as proto counts it: wall-clock microseconds since the
/// epoch (publisher timestamps are wall-clock, so viewers can tell latency).
pub fn wall_clock() -> Time {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    Time::from_micros(micros)
}

/// `N` bytes from the OS's secure random source (/dev/urandom).
pub fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut out = [0; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut out)?;
    Ok(out)
}
