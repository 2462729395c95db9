//! A running hash over everything that happens to datagrams, so that two
//! runs can be compared by one value.
//!
//! Each record is a tag byte and fixed-width fields, so no two different
//! event sequences feed the hasher the same bytes.

use std::fmt;
use std::net::SocketAddr;

use shoal_proto::Time;

use super::link::DropCause;

const DELIVERED: u8 = 1;
const UNDELIVERABLE: u8 = 2;
const DROPPED: u8 = 3;
const NAT_FILTERED: u8 = 4;

pub(super) struct Trace {
    hasher: blake3::Hasher,
}

impl Trace {
    pub(super) fn new() -> Self {
        Self {
            hasher: blake3::Hasher::new(),
        }
    }

    /// A datagram was handed to a node.
    pub(super) fn delivered(&mut self, at: Time, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        self.header(DELIVERED, at, from, to, bytes.len());
        self.hasher.update(bytes);
    }

    /// A datagram arrived where no node was bound.
    pub(super) fn undeliverable(&mut self, at: Time, from: SocketAddr, to: SocketAddr, len: usize) {
        self.header(UNDELIVERABLE, at, from, to, len);
    }

    /// A datagram arrived but the NAT in front of the node dropped it.
    pub(super) fn nat_filtered(&mut self, at: Time, from: SocketAddr, to: SocketAddr, len: usize) {
        self.header(NAT_FILTERED, at, from, to, len);
    }

    /// A link dropped a datagram.
    pub(super) fn dropped(
        &mut self,
        at: Time,
        from: SocketAddr,
        to: SocketAddr,
        len: usize,
        cause: DropCause,
    ) {
        self.header(DROPPED, at, from, to, len);
        self.hasher.update(&[cause.code()]);
    }

    pub(super) fn hash(&self) -> [u8; 32] {
        *self.hasher.finalize().as_bytes()
    }

    fn header(&mut self, tag: u8, at: Time, from: SocketAddr, to: SocketAddr, len: usize) {
        self.hasher.update(&[tag]);
        self.hasher.update(&at.as_micros().to_le_bytes());
        self.addr(from);
        self.addr(to);
        self.hasher.update(&(len as u64).to_le_bytes());
    }

    fn addr(&mut self, addr: SocketAddr) {
        match addr {
            SocketAddr::V4(a) => {
                self.hasher.update(&[4]);
                self.hasher.update(&a.ip().octets());
            }
            SocketAddr::V6(a) => {
                self.hasher.update(&[6]);
                self.hasher.update(&a.ip().octets());
                self.hasher.update(&a.flowinfo().to_le_bytes());
                self.hasher.update(&a.scope_id().to_le_bytes());
            }
        }
        self.hasher.update(&addr.port().to_le_bytes());
    }
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Trace({})", self.hasher.finalize().to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn hash_depends_on_every_field() {
        let t = Time::from_micros(5);
        let base = {
            let mut trace = Trace::new();
            trace.delivered(t, addr(1), addr(2), b"hi");
            trace.hash()
        };
        let variants = [
            (Time::from_micros(6), addr(1), addr(2), &b"hi"[..]),
            (t, addr(3), addr(2), b"hi"),
            (t, addr(1), addr(3), b"hi"),
            (t, addr(1), addr(2), b"ho"),
        ];
        for (at, from, to, bytes) in variants {
            let mut trace = Trace::new();
            trace.delivered(at, from, to, bytes);
            assert_ne!(trace.hash(), base);
        }
        let mut trace = Trace::new();
        trace.undeliverable(t, addr(1), addr(2), 2);
        let undeliverable = trace.hash();
        assert_ne!(undeliverable, base);
        let mut trace = Trace::new();
        trace.nat_filtered(t, addr(1), addr(2), 2);
        assert_ne!(trace.hash(), base);
        assert_ne!(trace.hash(), undeliverable);
    }

    #[test]
    fn drop_cause_is_hashed() {
        let t = Time::from_micros(5);
        let hash = |cause| {
            let mut trace = Trace::new();
            trace.dropped(t, addr(1), addr(2), 10, cause);
            trace.hash()
        };
        assert_ne!(hash(DropCause::Random), hash(DropCause::Burst));
    }
}
