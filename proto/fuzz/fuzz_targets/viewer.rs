//! A viewer fed datagrams from its relay and from strangers, with timers.
//!
//! Input format: see `common/mod.rs`. Sources 0 to 3 are the relay, 4 to 7
//! strangers (whose stream data the viewer still verifies and may use, but
//! whose control messages it must ignore). With the fix bit, a CHALLENGE
//! echoes the nonce of the viewer's last HELLO, so the handshake completes,
//! and MANIFESTs and DESCRIPTORs are signed. The first byte of the input
//! picks the configuration (NACKs, club NACKs, resume at the live edge),
//! the rest are records.
//!
//! Asserted after every step:
//! - every chunk played is held by the window and vouched for by a manifest
//!   the stream's key signed, payload and all;
//! - playout moves forward: chunks and gaps in increasing order, nothing
//!   after the end of the stream;
//! - `Subscribed` only after the relay sent an ACCEPT;
//! - everything goes to the relay, HELLOs padded;
//! - after timers ran, the next timer is in the future;
//! - with one relay, the viewer never moves.

#![no_main]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Fixer, Oracle, PlayOrder, T0, check_hello, stream};
use libfuzzer_sys::fuzz_target;
use shoal_proto::Time;
use shoal_proto::viewer::{Viewer, ViewerConfig, ViewerEvent};
use shoal_proto::window::WindowConfig;
use shoal_proto::wire::Message;

fn addrs() -> [SocketAddr; 8] {
    let relay: SocketAddr = "192.0.2.10:7400".parse().expect("an address");
    let stranger = |i: u8| SocketAddr::from(([198, 51, 100, i], 5000));
    [
        relay,
        relay,
        relay,
        relay,
        stranger(1),
        stranger(2),
        "192.0.2.10:7401".parse().expect("an address"),
        "[2001:db8::10]:7400".parse().expect("an address"),
    ]
}

struct Harness {
    viewer: Viewer,
    relay: SocketAddr,
    oracle: Oracle,
    fixer: Fixer,
    order: PlayOrder,
    accepted: bool,
}

impl Harness {
    fn drain(&mut self, _input: Option<(SocketAddr, usize)>) {
        while let Some(t) = self.viewer.poll_transmit() {
            assert_eq!(t.dst, self.relay, "a viewer talks only to its relay");
            check_hello(t.payload);
            self.fixer.sent(t.dst, t.payload);
        }
        while let Some(event) = self.viewer.poll_event() {
            self.order.check(&event);
            match event {
                ViewerEvent::Chunk { seq, payload, .. } => {
                    let chunk = self
                        .viewer
                        .window()
                        .chunk(seq)
                        .expect("a played chunk is held");
                    assert_eq!(chunk.payload(), &payload[..]);
                    self.oracle.check_data(chunk.datagram);
                }
                ViewerEvent::Subscribed { .. } => {
                    assert!(self.accepted, "subscribed without an ACCEPT");
                }
                _ => {}
            }
        }
    }
}

impl common::Harness for Harness {
    fn fixer(&mut self) -> &mut Fixer {
        &mut self.fixer
    }
    fn note(&mut self, from: SocketAddr, bytes: &[u8]) {
        self.oracle.fed(bytes);
        if from == self.relay
            && matches!(Message::parse(bytes), Ok(Message::Accept(a)) if a.stream == stream())
        {
            self.accepted = true;
        }
    }
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.viewer.handle_datagram(now, from, bytes);
    }
    fn handle_timeout(&mut self, now: Time) {
        self.viewer.handle_timeout(now);
    }
    fn poll_timeout(&self) -> Option<Time> {
        self.viewer.poll_timeout()
    }
    fn drain(&mut self, input: Option<(SocketAddr, usize)>) {
        self.drain(input);
    }
}

fuzz_target!(|input: &[u8]| {
    let [flags, input @ ..] = input else {
        return;
    };
    let addrs = addrs();
    let relay = addrs[0];
    let mut config = ViewerConfig::new(relay, stream());
    config.window = WindowConfig {
        capacity: 128,
        manifest_wait: Duration::from_millis(500),
        ..WindowConfig::default()
    };
    config.nack = flags & 1 == 0;
    config.club_nack = flags & 2 != 0;
    config.resume_live = flags & 4 != 0;
    config.nonce_seed = u64::from(flags >> 3);
    let now = T0;
    let mut h = Harness {
        viewer: Viewer::new(config, now).expect("a valid stream"),
        relay,
        oracle: Oracle::default(),
        fixer: Fixer::default(),
        order: PlayOrder::default(),
        accepted: false,
    };
    h.drain(None);
    common::play(&mut h, input, &addrs, now);
});
