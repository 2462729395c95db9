//! Session ids: the secret a relay shares with each subscriber.
//!
//! Every session message after the handshake carries the id the server drew
//! for the subscription and sent in ACCEPT (SPEC §11.4), so that a spoofer
//! who knows a subscriber's address, but is not on its path, cannot end,
//! keep or steer the subscription. The id must be unguessable to such a
//! spoofer, and proto has no OS randomness: it is a keyed BLAKE3 of a
//! counter under the cookie secret (which the IO shell draws from the OS's
//! secure source). The worker's nonce seed and the subscriber's address
//! are hashed in too, so that workers sharing the secret, each with its
//! own counter, never hand two addresses the same id: a subscriber learns
//! nothing about another's id from its own.

use std::net::{IpAddr, SocketAddr};

/// Domain separation from the cookie tags made with the same key (those
/// hash 26 bytes with no prefix).
const CONTEXT: &[u8] = b"shoal v1 2026-12 session id";

/// Draws session ids.
#[derive(Clone)]
pub(super) struct SessionIds {
    key: [u8; 32],
    seed: u64,
    drawn: u64,
}

impl core::fmt::Debug for SessionIds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionIds")
            .field("drawn", &self.drawn)
            .finish_non_exhaustive()
    }
}

impl SessionIds {
    pub(super) fn new(key: [u8; 32], seed: u64) -> Self {
        Self {
            key,
            seed,
            drawn: 0,
        }
    }

    /// A fresh id for a subscription from `addr`; never 0 (which a client
    /// sends before it has one).
    pub(super) fn draw(&mut self, addr: SocketAddr) -> u64 {
        self.drawn += 1;
        let ip = match addr.ip() {
            IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
            IpAddr::V6(ip) => ip.octets(),
        };
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(CONTEXT);
        h.update(&self.seed.to_be_bytes());
        h.update(&self.drawn.to_be_bytes());
        h.update(&ip);
        h.update(&addr.port().to_be_bytes());
        let mut id = [0; 8];
        id.copy_from_slice(&h.finalize().as_bytes()[..8]);
        u64::from_be_bytes(id).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_by_draw_address_and_key() {
        let a: SocketAddr = "192.0.2.1:4000".parse().expect("addr");
        let b: SocketAddr = "192.0.2.1:4001".parse().expect("addr");
        let mut ids = SessionIds::new([3; 32], 1);
        let (first, second) = (ids.draw(a), ids.draw(a));
        assert_ne!(first, second);
        assert_ne!(SessionIds::new([3; 32], 1).draw(b), first);
        assert_ne!(SessionIds::new([4; 32], 1).draw(a), first);
        assert_ne!(SessionIds::new([3; 32], 2).draw(a), first);
        assert_eq!(SessionIds::new([3; 32], 1).draw(a), first, "deterministic");
    }
}
