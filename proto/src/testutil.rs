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
    Keepalive::empty(stream, session)
}

/// What a server answers a HELLO with `nonce` by, in order: a CHALLENGE
/// (with a zero cookie) and an ACCEPT of session 42 with 1 s keepalives;
/// for tests of the subscribing side.
pub(crate) fn handshake_answers(stream: StreamId, nonce: u64) -> [Message<'static>; 2] {
    let cookie = crate::wire::Cookie {
        issued_at_us: 0,
        tag: [0; 16],
    };
    let accept = crate::wire::Accept {
        keepalive_ms: 1000,
        stream,
        session: 42,
        start_seq: 0,
    };
    [
        Message::Challenge(crate::wire::Challenge { nonce, cookie }),
        Message::Accept(accept),
    ]
}

/// `man`'s datagram, signed by `key`.
pub(crate) fn signed_manifest(key: &PublisherKey, man: &Manifest<'_>) -> Vec<u8> {
    let mut buf = vec![0; man.buffer_len()];
    let n = man.emit(&mut buf).expect("emit");
    buf.truncate(n);
    key.sign_trailer(&mut buf);
    buf
}
