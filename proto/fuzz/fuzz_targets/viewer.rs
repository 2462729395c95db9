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

use common::harness::{Checks, Harness, Rig};
use common::{PlayOrder, T0, check_hello, stream};
use libfuzzer_sys::fuzz_target;
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

/// The viewer's own checks.
struct Playout {
    relay: SocketAddr,
    order: PlayOrder,
    accepted: bool,
}

impl Checks for Playout {
    type Machine = Viewer;
    fn note(&mut self, from: SocketAddr, bytes: &[u8]) {
        if from == self.relay
            && matches!(Message::parse(bytes), Ok(Message::Accept(a)) if a.stream == stream())
        {
            self.accepted = true;
        }
    }
    fn check(&mut self, rig: &mut Rig<Viewer>, _input: Option<(SocketAddr, usize)>) {
        for (to, bytes) in &rig.sent {
            assert_eq!(*to, self.relay, "a viewer talks only to its relay");
            check_hello(bytes);
        }
        while let Some(event) = rig.machine.poll_event() {
            self.order.check(&event);
            match event {
                ViewerEvent::Chunk { seq, payload, .. } => {
                    let chunk = rig
                        .machine
                        .window()
                        .chunk(seq)
                        .expect("a played chunk is held");
                    assert_eq!(chunk.payload(), &payload[..]);
                    rig.oracle.check_data(chunk.datagram);
                }
                ViewerEvent::Subscribed { .. } => {
                    assert!(self.accepted, "subscribed without an ACCEPT");
                }
                _ => {}
            }
        }
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
    let checks = Playout {
        relay,
        order: PlayOrder::default(),
        accepted: false,
    };
    let mut h = Harness::new(Viewer::new(config, now).expect("a valid stream"), checks);
    h.drain(None);
    h.play(input, &addrs, now);
});
