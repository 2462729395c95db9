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

use common::{Amplification, Fixer, Oracle, T0};
use libfuzzer_sys::fuzz_target;
use shoal_proto::Time;
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

struct Harness {
    relay: Relay,
    amplification: Amplification,
    oracle: Oracle,
    fixer: Fixer,
    sent: Vec<(SocketAddr, Vec<u8>)>,
}

impl Harness {
    /// Drains and checks what the relay sends and tells.
    fn drain(&mut self, input: Option<(SocketAddr, usize)>) {
        self.sent.clear();
        while let Some(t) = self.relay.poll_transmit() {
            self.sent.push((t.dst, t.payload.to_vec()));
        }
        for (to, bytes) in &self.sent {
            self.oracle.check_sent(bytes);
            self.fixer.sent(*to, bytes);
        }
        self.amplification.check(input, &self.sent, |_, _| false);
        while let Some(event) = self.relay.poll_event() {
            if let RelayEvent::SubscriberJoined(addr, _) = event {
                assert!(self.amplification.proven(addr), "{addr} joined unproven");
            }
        }
        assert!(self.relay.subscriber_count() <= MAX_SUBSCRIBERS);
    }
}

impl common::Harness for Harness {
    fn fixer(&mut self) -> &mut Fixer {
        &mut self.fixer
    }
    fn note(&mut self, from: SocketAddr, bytes: &[u8]) {
        self.oracle.fed(bytes);
        self.amplification.fed(from, bytes);
    }
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.relay.handle_datagram(now, from, bytes);
    }
    fn handle_timeout(&mut self, now: Time) {
        self.relay.handle_timeout(now);
    }
    fn poll_timeout(&self) -> Option<Time> {
        self.relay.poll_timeout()
    }
    fn drain(&mut self, input: Option<(SocketAddr, usize)>) {
        self.drain(input);
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
    let mut h = Harness {
        relay: Relay::new(config),
        amplification: Amplification::default(),
        oracle: Oracle::default(),
        fixer: Fixer::default(),
        sent: Vec::new(),
    };
    common::play(&mut h, input, &addrs(), T0);
});
