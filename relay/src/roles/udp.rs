//! What the client roles (`watch`, `peer`) share about their UDP socket:
//! which errors to shrug off, and where handshake nonces come from.

use std::io;

use crate::os::wall_clock;

/// Errors a lossy network gives a UDP socket now and then, which change
/// nothing: a read timeout, a signal, an ICMP port unreachable from an
/// earlier send. The protocol's retries and repair deal with them.
/// PermissionDenied is a local firewall dropping one outgoing datagram
/// (nftables/iptables `drop` on output).
pub(super) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::PermissionDenied
    )
}

/// Handshake nonces must not be guessable; the clock and pid stand in only
/// if /dev/urandom cannot be read.
pub(super) fn random_seed() -> u64 {
    match crate::os::random_bytes() {
        Ok(bytes) => u64::from_le_bytes(bytes),
        Err(_) => wall_clock().as_micros() ^ (u64::from(std::process::id()) << 32),
    }
}
