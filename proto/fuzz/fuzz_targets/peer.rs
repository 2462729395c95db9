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

use common::harness::{Checks, Harness, Rig};
use common::{PEER_MAX_SUBSCRIBERS, PlayOrder, T0, check_hello, peer_config};
use libfuzzer_sys::fuzz_target;
use shoal_proto::peer::Peer;
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

/// The peer's own checks.
struct Uploads {
    relay: SocketAddr,
    order: PlayOrder,
}

impl Checks for Uploads {
    type Machine = Peer;
    fn check(&mut self, rig: &mut Rig<Peer>, input: Option<(SocketAddr, usize)>) {
        for (_, bytes) in &rig.sent {
            check_hello(bytes);
        }
        let relay = self.relay;
        rig.amplification.check(input, &rig.sent, |to, bytes| {
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
        while let Some(event) = rig.machine.poll_event() {
            self.order.check(&event);
        }
        assert!(rig.machine.stats().subscribers <= PEER_MAX_SUBSCRIBERS as u64);
    }
}

fuzz_target!(|input: &[u8]| {
    let [upload, input @ ..] = input else {
        return;
    };
    let addrs = addrs();
    let config = peer_config(addrs[0], u64::from(*upload) * 100_000);
    let now = T0;
    let checks = Uploads {
        relay: addrs[0],
        order: PlayOrder::default(),
    };
    let mut h = Harness::new(Peer::new(config, now).expect("a valid stream"), checks);
    h.drain(None);
    h.play(input, &addrs, now);
});
