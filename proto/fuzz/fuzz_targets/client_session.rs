//! The client side of the handshake (`ClientSession`, crate-private),
//! driven through the one owner whose every move is visible: a relay that
//! takes the stream from two upstream relays, with failover.
//!
//! Input format: see `common/mod.rs`. Sources 0 to 2 are the first
//! upstream, 3 to 5 the second, 6 and 7 strangers. With the fix bit, a
//! CHALLENGE echoes the nonce of the last HELLO sent to its source, so
//! the session reaches SUBSCRIBE, ACCEPT, keepalives, silence and
//! restarts; MANIFESTs and DESCRIPTORs are signed, so stream data flows
//! and lost manifests are NACKed upstream.
//!
//! Asserted after every step:
//! - to an upstream the relay sends only HELLO (padded), SUBSCRIBE
//!   carrying a cookie that upstream issued, KEEPALIVE, NACK and LEAVE,
//!   beyond the CHALLENGE or REJECT any address may get in answer (at
//!   most one per datagram, no larger);
//! - `UpstreamSubscribed` only after that upstream sent an ACCEPT, and the
//!   subscription always names one of the two upstreams;
//! - stream data the relay sends is vouched for by the stream's key;
//! - after timers ran, the next timer is in the future.

#![no_main]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use common::harness::{Checks, Harness, Rig};
use common::{T0, check_hello, stream};
use libfuzzer_sys::fuzz_target;
use shoal_proto::relay::{Relay, RelayConfig, RelayEvent};
use shoal_proto::window::WindowConfig;
use shoal_proto::wire::{Cookie, Message, MessageType, peek_type};

fn addrs() -> [SocketAddr; 8] {
    let first: SocketAddr = "192.0.2.20:7400".parse().expect("an address");
    let second: SocketAddr = "[2001:db8::20]:7400".parse().expect("an address");
    [
        first,
        first,
        first,
        second,
        second,
        second,
        "192.0.2.20:7401".parse().expect("an address"),
        "198.51.100.7:5000".parse().expect("an address"),
    ]
}

/// What the relay's client sessions must respect.
struct Upstreams {
    servers: [SocketAddr; 2],
    /// Cookies each upstream issued in a CHALLENGE.
    cookies: HashMap<SocketAddr, Vec<Cookie>>,
    /// Upstreams that sent an ACCEPT for the stream.
    accepted: HashSet<SocketAddr>,
}

impl Checks for Upstreams {
    type Machine = Relay;
    fn note(&mut self, from: SocketAddr, bytes: &[u8]) {
        match Message::parse(bytes) {
            Ok(Message::Challenge(c)) => {
                let list = self.cookies.entry(from).or_default();
                if !list.contains(&c.cookie) {
                    list.push(c.cookie);
                }
            }
            Ok(Message::Accept(a)) if a.stream == stream() => {
                self.accepted.insert(from);
            }
            _ => {}
        }
    }
    fn check(&mut self, rig: &mut Rig<Relay>, input: Option<(SocketAddr, usize)>) {
        for (to, bytes) in &rig.sent {
            check_hello(bytes);
            if let Ok(Message::Subscribe(s)) = Message::parse(bytes) {
                assert!(
                    self.cookies.get(to).is_some_and(|c| c.contains(&s.cookie)),
                    "SUBSCRIBE to {to} with a cookie it never issued"
                );
            }
        }
        let servers = self.servers;
        rig.amplification.check(input, &rig.sent, |to, bytes| {
            servers.contains(&to)
                && matches!(
                    peek_type(bytes),
                    Ok(MessageType::Hello
                        | MessageType::Subscribe
                        | MessageType::Keepalive
                        | MessageType::Nack
                        | MessageType::Leave)
                )
        });
        while let Some(event) = rig.machine.poll_event() {
            if let RelayEvent::UpstreamSubscribed(server, id) = event {
                assert_eq!(id, stream());
                assert!(
                    self.accepted.contains(&server),
                    "subscribed to {server} without its ACCEPT"
                );
            }
        }
        for status in rig.machine.upstreams() {
            assert!(self.servers.contains(&status.server));
            assert!(!status.subscribed || self.accepted.contains(&status.server));
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let addrs = addrs();
    let servers = [addrs[0], addrs[3]];
    let config = RelayConfig {
        window: WindowConfig {
            capacity: 128,
            ..WindowConfig::default()
        },
        max_subscribers: 2,
        max_streams: 2,
        cookie_secret: [5; 32],
        accept_publishers: false,
        ..RelayConfig::default()
    };
    let now = T0;
    let checks = Upstreams {
        servers,
        cookies: HashMap::new(),
        accepted: HashSet::new(),
    };
    let mut h = Harness::new(Relay::new(config), checks);
    h.rig
        .machine
        .add_upstreams(now, &servers, stream())
        .expect("a valid stream");
    h.drain(None);
    h.play(input, &addrs, now);
});
