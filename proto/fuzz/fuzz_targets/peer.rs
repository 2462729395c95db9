//! An ordinary peer fed datagrams from its relay, from other peers and
//! from strangers, with timers.
//!
//! Input format: see `common/mod.rs`. Sources 0 and 1 are the relay, 2 to
//! 5 other peers (the corpus's PEERS name them, so they become download
//! neighbours), 6 a stranger, 7 another port on the relay's IP. With the
//! fix bit, a CHALLENGE echoes the nonce of the peer's last HELLO to its
//! source (the peer's own subscriptions complete), a SUBSCRIBE carries the
//! last cookie the peer's upload side issued to its source (other peers
//! subscribe to it), and MANIFESTs and DESCRIPTORs are signed. The first
//! byte of the input picks the upload limit.
//!
//! Asserted after every step:
//! - stream data and ACCEPT go only to addresses that echoed a cookie the
//!   upload side issued, INTRODUCE only to them or the relay; what else an
//!   unproven address gets unasked is the peer's own client traffic
//!   (HELLO, SUBSCRIBE, KEEPALIVE, NACK, LEAVE, HAVE, MEMBER, PEERS,
//!   PUNCH), and in answer at most one CHALLENGE or REJECT per datagram,
//!   no larger;
//! - every DATA and PARITY uploaded is vouched for by a manifest the
//!   stream's key signed (a peer never forwards what it has not verified),
//!   every MANIFEST and DESCRIPTOR verifies;
//! - playout moves forward: chunks and gaps in increasing order, nothing
//!   after the end of the stream;
//! - after timers ran, the next timer is in the future.

#![no_main]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Amplification, Fixer, Oracle, T0, check_hello, check_progress, steps, stream};
use libfuzzer_sys::fuzz_target;
use shoal_proto::peer::{Peer, PeerConfig};
use shoal_proto::viewer::ViewerEvent;
use shoal_proto::window::WindowConfig;
use shoal_proto::wire::{MessageType, peek_type};

/// Must match the PEERS seeds of `examples/gen_corpus.rs`.
fn addrs() -> [SocketAddr; 8] {
    [
        "192.0.2.30:7400",
        "192.0.2.30:7400",
        "198.51.100.31:4000",
        "198.51.100.32:4000",
        "[2001:db8::33]:4000",
        "198.51.100.31:4001",
        "203.0.113.1:9",
        "192.0.2.30:7401",
    ]
    .map(|a| a.parse().expect("an address"))
}

const MAX_SUBSCRIBERS: usize = 3;

struct Harness {
    peer: Peer,
    relay: SocketAddr,
    amplification: Amplification,
    oracle: Oracle,
    fixer: Fixer,
    sent: Vec<(SocketAddr, Vec<u8>)>,
    next: Option<u64>,
    ended: bool,
}

impl Harness {
    fn drain(&mut self, input: Option<(SocketAddr, usize)>) {
        self.sent.clear();
        while let Some(t) = self.peer.poll_transmit() {
            self.sent.push((t.dst, t.payload.to_vec()));
        }
        for (to, bytes) in &self.sent {
            self.oracle.check_sent(bytes);
            self.fixer.sent(*to, bytes);
            check_hello(bytes);
        }
        let relay = self.relay;
        self.amplification.check(input, &self.sent, |to, bytes| {
            let ty = peek_type(bytes);
            (to == relay && ty == Ok(MessageType::Introduce))
                || matches!(
                    ty,
                    Ok(MessageType::Hello
                        | MessageType::Subscribe
                        | MessageType::Keepalive
                        | MessageType::Nack
                        | MessageType::Leave
                        | MessageType::Have
                        | MessageType::Member
                        | MessageType::Peers
                        | MessageType::Punch)
                )
        });
        while let Some(event) = self.peer.poll_event() {
            match event {
                ViewerEvent::Chunk { seq, .. } => {
                    assert!(!self.ended, "chunk {seq} after the end");
                    assert!(self.next.is_none_or(|n| seq >= n), "chunk {seq} replayed");
                    self.next = Some(seq + 1);
                }
                ViewerEvent::Gap { from, to } => {
                    assert!(!self.ended, "gap after the end");
                    assert!(from < to, "empty gap {from}..{to}");
                    assert!(self.next.is_none_or(|n| from >= n), "gap {from} replayed");
                    self.next = Some(to);
                }
                ViewerEvent::EndOfStream => {
                    assert!(!self.ended, "two ends");
                    self.ended = true;
                }
                // A later run starts above everything an earlier one sent
                // (SPEC §4.2), so the checks above hold across it.
                ViewerEvent::Subscribed { .. }
                | ViewerEvent::Rejected(_)
                | ViewerEvent::NewRun { .. } => {}
                ViewerEvent::RelayChanged { .. } => panic!("moved with no relay to fall back on"),
                // A later run (or a jump ahead): output goes on above
                // `next`, which the Gap before it (if any) moved.
                ViewerEvent::NewRun { .. } => assert!(!self.ended, "a new run after the end"),
            }
        }
        assert!(self.peer.stats().subscribers <= MAX_SUBSCRIBERS as u64);
    }
}

fuzz_target!(|input: &[u8]| {
    let [upload, input @ ..] = input else {
        return;
    };
    let addrs = addrs();
    let mut config = PeerConfig::new(addrs[0], stream());
    config.upload_limit_bps = u64::from(*upload) * 100_000;
    config.max_subscribers = MAX_SUBSCRIBERS;
    config.cookie_secret = [9; 32];
    config.nonce_seed = 3;
    config.window = WindowConfig {
        capacity: 128,
        manifest_wait: Duration::from_millis(500),
    };
    let mut now = T0;
    let mut h = Harness {
        peer: Peer::new(config, now).expect("a valid stream"),
        relay: addrs[0],
        amplification: Amplification::default(),
        oracle: Oracle::default(),
        fixer: Fixer::default(),
        sent: Vec::new(),
        next: None,
        ended: false,
    };
    h.drain(None);
    for step in steps(input) {
        now += step.advance;
        let from = addrs[step.source];
        let bytes = h.fixer.fix(from, step.fix, step.datagram).to_vec();
        h.oracle.fed(&bytes);
        h.amplification.fed(from, &bytes);
        h.peer.handle_datagram(now, from, &bytes);
        h.drain(Some((from, bytes.len())));
        if step.timers {
            h.peer.handle_timeout(now);
            check_progress(now, h.peer.poll_timeout());
            h.drain(None);
        }
    }
    h.peer.handle_timeout(now + Duration::from_secs(3600));
    h.drain(None);
});
