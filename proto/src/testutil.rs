//! Helpers the crate's unit tests share.

use std::net::SocketAddr;

use crate::integrity::PublisherKey;
use crate::peer::Peer;
use crate::viewer::Viewer;
use crate::wire::{Keepalive, Manifest, Message, MessageType, RejectReason, peek_type};
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

/// Every reason a REJECT can give.
pub(crate) fn reject_reasons() -> impl Iterator<Item = RejectReason> {
    (0..=u8::MAX).filter_map(RejectReason::from_byte)
}

/// A KEEPALIVE for `stream` in session `session` with an empty report.
pub(crate) fn keepalive(stream: StreamId, session: u64) -> Keepalive {
    Keepalive::empty(stream, session)
}

/// The session id of the ACCEPT in [`handshake_answers`].
pub(crate) const SESSION: u64 = 42;

/// Stream data flowing: an arrival every 20 ms from `t(0)` to
/// `t(until_ms)`, each told to `heard`; returns the last.
pub(crate) fn flow(until_ms: u64, mut heard: impl FnMut(Time)) -> Time {
    for ms in (0..=until_ms).step_by(20) {
        heard(t(ms));
    }
    t(until_ms)
}

/// What a server answers a HELLO with `nonce` by, in order: a CHALLENGE
/// (with a zero cookie) and an ACCEPT of session [`SESSION`] from
/// `start_seq` with 1 s keepalives; for tests of the subscribing side.
pub(crate) fn handshake_answers(
    stream: StreamId,
    nonce: u64,
    start_seq: u64,
) -> [Message<'static>; 2] {
    let cookie = crate::wire::Cookie {
        issued_at_us: 0,
        tag: [0; 16],
    };
    let accept = crate::wire::Accept {
        keepalive_ms: 1000,
        stream,
        session: SESSION,
        start_seq,
        observed: SocketAddr::from(([192, 0, 2, 1], 4000)),
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

/// A state machine whose queued datagrams a test drains.
pub(crate) trait Sends {
    /// The next queued datagram and its destination.
    fn pop_sent(&mut self) -> Option<(SocketAddr, Vec<u8>)>;
}

impl Sends for Viewer {
    fn pop_sent(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.poll_transmit().map(|t| (t.dst, t.payload.to_vec()))
    }
}

impl Sends for Peer {
    fn pop_sent(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.poll_transmit().map(|t| (t.dst, t.payload.to_vec()))
    }
}

/// The datagrams queued, with their destinations, emptying the queue.
pub(crate) fn sent(machine: &mut impl Sends) -> Vec<(SocketAddr, Vec<u8>)> {
    std::iter::from_fn(|| machine.pop_sent()).collect()
}

/// The destinations of the datagrams of type `ty` among `sent`.
pub(crate) fn sent_to(sent: &[(SocketAddr, Vec<u8>)], ty: MessageType) -> Vec<SocketAddr> {
    sent.iter()
        .filter(|(_, b)| peek_type(b) == Ok(ty))
        .map(|(to, _)| *to)
        .collect()
}

/// The nonce of the last HELLO to `server` among `sent`.
pub(crate) fn hello_nonce(sent: &[(SocketAddr, Vec<u8>)], server: SocketAddr) -> u64 {
    sent.iter()
        .rev()
        .find_map(|(to, b)| match Message::parse(b) {
            Ok(Message::Hello(h)) if *to == server => Some(h.nonce),
            _ => None,
        })
        .expect("a HELLO to the server")
}
