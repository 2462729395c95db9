//! shoal's wire protocol v1 and its state machines, with no IO.
//!
//! This crate is the whole protocol: what every datagram looks like
//! ([`wire`], normative text in `proto/SPEC.md`), how a stream is signed
//! and checked ([`integrity`]), cut ([`ts`]) and protected ([`fec`]), and
//! the roles that speak it, each a deterministic state machine that owns
//! no socket, reads no clock and spawns no thread. An IO shell (the
//! `shoal-relay` crate on Linux, the simulator in `shoal-tests`, one day a
//! browser) feeds it datagrams and the time, and sends what it asks.
//!
//! # The state machines
//!
//! | type | role |
//! |---|---|
//! | [`publisher::Publisher`] | bytes in; signed DESCRIPTOR, MANIFEST, DATA and PARITY out to its relays |
//! | [`relay::Relay`] | a super-peer: verifies each stream once, keeps its window, runs the handshake, fans out, serves repair, introduces peers |
//! | [`viewer::Viewer`] | subscribes to a relay, verifies, repairs (FEC, NACK) and plays out in order within a latency budget |
//! | [`peer::Peer`] | a viewer that also uploads: joins clubs and serves part of the stream to other peers |
//! | [`window::Window`] | the verified recent past of one stream, shared by all of the above that receive |
//! | [`client`]'s session (crate-private) | the subscribing side of the cookie handshake, inside viewers, peers and relays' upstreams |
//!
//! # The run loop
//!
//! Every state machine is driven the same way, and a caller that follows
//! these rules needs nothing else:
//!
//! 1. Feed it: `handle_datagram(now, from, bytes)` for each datagram that
//!    arrived (a [`publisher::Publisher`] takes `handle_input(now, bytes)`
//!    instead), and `handle_timeout(now)` when the time it last asked for
//!    has come.
//! 2. After every call in 1, drain `poll_transmit()` until it returns
//!    `None`, sending each [`Transmit`] to its address, and drain
//!    `poll_event()` (where there is one) for what the role reports to its
//!    user.
//! 3. Sleep until `poll_timeout()` or the next datagram, whichever is
//!    first, and go to 1.
//!
//! Calls never block and never fail: bad input from the network is
//! counted (each role's stats, by reason) and dropped, never returned as
//! an error and never a panic.
//!
//! # Time
//!
//! `now` is a [`Time`], the caller's monotonic clock, which only moves
//! forward; every timer and deadline is counted on it. What the protocol
//! carries (publisher timestamps, a run's epoch, token expiry) is wall
//! time, a [`WallTime`]; see [`time`] for how the two relate.
//!
//! # Buffers
//!
//! Datagrams are copied once, into the receiver's window slot; every
//! transmit of a forwarded item borrows that slot (a [`transmit::SharedBuf`]),
//! so fan-out to many subscribers copies nothing. Once a window has
//! wrapped, the hot path allocates nothing.
//!
//! # Trust
//!
//! Every address on the internet is assumed hostile and able to spoof any
//! source address: nothing unverified is ever forwarded or played
//! ([`window`]), no stream data goes to an address that has not proved it
//! receives ([`cookie`]), and work an attacker can cause is bounded per
//! source and per stream.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bucket;
pub mod client;
pub mod cookie;
pub mod entry;
mod failover;
pub mod fec;
pub mod integrity;
pub mod peer;
pub mod publisher;
pub mod relay;
pub mod rng;
pub mod stream_id;
#[cfg(test)]
mod testutil;
pub mod time;
pub mod token;
pub mod transmit;
pub mod ts;
pub mod viewer;
pub mod window;
pub mod wire;

pub use stream_id::StreamId;
pub use time::{Time, WallClock, WallTime};
pub use transmit::{SharedTransmit, Transmit};
