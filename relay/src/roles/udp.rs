//! What the client roles (`watch`, `peer`, the demo's crowd) share about
//! their UDP sockets: how long to wait for a datagram, which errors to
//! shrug off, and where handshake nonces come from.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use shoal_proto::Time;

use crate::os;

/// Longest a client role waits for a datagram before it looks at its
/// timers, its output and signals again.
pub(super) const MAX_WAIT: Duration = Duration::from_millis(50);

/// How long to wait for a datagram when the next timer is due at `timer`:
/// until then, but at least 1 ms (a loop never spins) and at most
/// `longest`.
pub(super) fn wait_until(timer: Option<Time>, longest: Duration) -> Duration {
    let now = os::now();
    timer
        .map_or(longest, |t| t.saturating_since(now))
        .clamp(Duration::from_millis(1), longest)
}

/// One datagram from `socket`, waiting until `timer` at most (see
/// [`wait_until`], with [`MAX_WAIT`]).
pub(super) fn recv_until(
    socket: &UdpSocket,
    timer: Option<Time>,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr)> {
    socket.set_read_timeout(Some(wait_until(timer, MAX_WAIT)))?;
    socket.recv_from(buf)
}

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

/// The wildcard address of `peer`'s family, with a port the OS picks: a
/// local address from which `peer` can be reached.
pub(super) fn wildcard_for(peer: SocketAddr) -> SocketAddr {
    let ip: IpAddr = if peer.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    SocketAddr::new(ip, 0)
}

/// Handshake nonces must not be guessable; the clock and pid stand in only
/// if /dev/urandom cannot be read.
pub(super) fn random_seed() -> u64 {
    match os::random_bytes() {
        Ok(bytes) => u64::from_le_bytes(bytes),
        Err(_) => os::wall_time().as_micros() ^ (u64::from(std::process::id()) << 32),
    }
}
