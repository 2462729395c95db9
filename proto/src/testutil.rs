//! Helpers the crate's unit tests share.

use std::net::SocketAddr;

use crate::integrity::PublisherKey;
use crate::wire::{Keepalive, Manifest, Message};
use crate::{StreamId, Time};

/// `ms` milliseconds after a fixed start (1 s, so that times before it
/// exist).
pub(crate) fn t(ms: u64) -> Time {
    Time::from_micros(1_000_000 + ms * 1000)
}

/// A literal address.
pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

/// `msg`'s datagram.
pub(crate) fn emit(msg: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0; msg.buffer_len()];
    let n = msg.emit(&mut buf).expect("emit");
    buf.truncate(n);
    buf
}

/// A KEEPALIVE for `stream` in session `session` with an empty report.
pub(crate) fn keepalive(stream: StreamId, session: u64) -> Keepalive {
    Keepalive {
        stream,
        session,
        highest_seq: 0,
        lost: 0,
        fec_repaired: 0,
        nack_repaired: 0,
        latency_us: 0,
    }
}

/// `man`'s datagram, signed by `key`.
pub(crate) fn signed_manifest(key: &PublisherKey, man: &Manifest<'_>) -> Vec<u8> {
    let mut buf = vec![0; man.buffer_len()];
    let n = man.emit(&mut buf).expect("emit");
    buf.truncate(n);
    key.sign_trailer(&mut buf);
    buf
}
