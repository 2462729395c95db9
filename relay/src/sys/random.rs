//! Secure random bytes from the OS, for secrets and seeds.

use std::io::{self, Read};

/// `N` bytes from the OS's secure random source (/dev/urandom).
pub fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut out = [0; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut out)?;
    Ok(out)
}
