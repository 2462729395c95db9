//! A relay fed datagrams from eight source addresses, with timers.
//!
//! Input format: see `common/mod.rs`. Source 0 is where the publisher
//! speaks from (any source may publish: the relay trusts signatures, not
//! addresses); 1 to 7 are would-be subscribers, some sharing an IP. With
//! the fix bit, a SUBSCRIBE echoes the last cookie its source was issued,
//! so subscribers complete the handshake, and MANIFESTs and DESCRIPTORs are
//! signed, so the stream goes live.
//!
//! Asserted after every step:
//! - an address that has not echoed a cookie issued to it gets only a
//!   CHALLENGE or REJECT, at most one per datagram it sent and no larger
//!   (so never stream data, ACCEPT, PEERS or INTRODUCE);
//! - every DATA and PARITY sent is vouched for by a manifest the stream's
//!   key signed, every MANIFEST and DESCRIPTOR sent verifies;
//! - a subscriber joins only from a proven address, and never more of them
//!   than `max_subscribers`;
//! - after timers ran, the next timer is in the future.

#![no_main]

mod common;

use std::net::SocketAddr;

use common::T0;
use common::harness::{Checks, Harness, Rig};
use libfuzzer_sys::fuzz_target;
use shoal_proto::relay::{Relay, RelayConfig, RelayEvent};
use shoal_proto::window::WindowConfig;

const MAX_SUBSCRIBERS: usize = 4;

fn addrs() -> [SocketAddr; 8] {
    [
        "192.0.2.1:9000",
        "198.51.100.1:1000",
        "198.51.100.1:1001",
        "198.51.100.2:1000",
        "[2001:db8::1]:1000",
        "[2001:db8::2]:1000",
        "203.0.113.9:5",
        "198.51.100.1:1002",
    ]
    .map(|a| a.parse().expect("an address"))
}

/// The relay's own checks.
struct Subscribers;

impl Checks for Subscribers {
    type Machine = Relay;
    fn check(&mut self, rig: &mut Rig<Relay>, input: Option<(SocketAddr, usize)>) {
        rig.amplification.check(input, &rig.sent, |_, _| false);
        while let Some(event) = rig.machine.poll_event() {
            if let RelayEvent::SubscriberJoined(addr, _) = event {
                assert!(rig.amplification.proven(addr), "{addr} joined unproven");
            }
        }
        assert!(rig.machine.subscriber_count() <= MAX_SUBSCRIBERS);
    }
}

fuzz_target!(|input: &[u8]| {
    let config = RelayConfig {
        window: WindowConfig {
            capacity: 128,
            ..WindowConfig::default()
        },
        max_subscribers: MAX_SUBSCRIBERS,
        max_streams: 2,
        cookie_secret: [7; 32],
        nack_limit: 32,
        handshake_burst: 8,
        ..RelayConfig::default()
    };
    Harness::new(Relay::new(config), Subscribers).play(input, &addrs(), T0);
});
