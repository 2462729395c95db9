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

use common::{Amplification, Fixer, Oracle, T0, check_hello, stream};
use libfuzzer_sys::fuzz_target;
use shoal_proto::Time;
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

struct Harness {
    relay: Relay,
    servers: [SocketAddr; 2],
    amplification: Amplification,
    oracle: Oracle,
    fixer: Fixer,
    /// Cookies each upstream issued in a CHALLENGE.
    cookies: HashMap<SocketAddr, Vec<Cookie>>,
    /// Upstreams that sent an ACCEPT for the stream.
    accepted: HashSet<SocketAddr>,
    sent: Vec<(SocketAddr, Vec<u8>)>,
}

impl Harness {
    fn drain(&mut self, input: Option<(SocketAddr, usize)>) {
        self.sent.clear();
        while let Some(t) = self.relay.poll_transmit() {
            self.sent.push((t.dst, t.payload.to_vec()));
        }
        for (to, bytes) in &self.sent {
            self.oracle.check_sent(bytes);
            self.fixer.sent(*to, bytes);
            check_hello(bytes);
            if let Ok(Message::Subscribe(s)) = Message::parse(bytes) {
                assert!(
                    self.cookies.get(to).is_some_and(|c| c.contains(&s.cookie)),
                    "SUBSCRIBE to {to} with a cookie it never issued"
                );
            }
        }
        let servers = self.servers;
        self.amplification.check(input, &self.sent, |to, bytes| {
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
        while let Some(event) = self.relay.poll_event() {
            if let RelayEvent::UpstreamSubscribed(server, id) = event {
                assert_eq!(id, stream());
                assert!(
                    self.accepted.contains(&server),
                    "subscribed to {server} without its ACCEPT"
                );
            }
        }
        for status in self.relay.upstreams() {
            assert!(self.servers.contains(&status.server));
            assert!(!status.subscribed || self.accepted.contains(&status.server));
        }
    }
}

impl common::Harness for Harness {
    fn fixer(&mut self) -> &mut Fixer {
        &mut self.fixer
    }
    fn note(&mut self, from: SocketAddr, bytes: &[u8]) {
        self.oracle.fed(bytes);
        self.amplification.fed(from, bytes);
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
    let mut h = Harness {
        relay: Relay::new(config),
        servers,
        amplification: Amplification::default(),
        oracle: Oracle::default(),
        fixer: Fixer::default(),
        cookies: HashMap::new(),
        accepted: HashSet::new(),
        sent: Vec::new(),
    };
    h.relay
        .add_upstreams(now, &servers, stream())
        .expect("a valid stream");
    h.drain(None);
    common::play(&mut h, input, &addrs, now);
});
