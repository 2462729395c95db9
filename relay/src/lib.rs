//! shoal-relay: the IO shell around `shoal_proto`'s sans-IO state
//! machines, and the `shoal` binary's two families of commands.
//!
//! - The server, [`server`]: [`server::Server`] runs a relay: one
//!   [`server::worker`] per core, each with its own socket in an
//!   SO_REUSEPORT group and its own [`io`] backend (io_uring, or
//!   recvmmsg/sendmmsg where io_uring is not usable), settings from
//!   [`server::config`], counters on a Prometheus endpoint
//!   ([`server::metrics`]).
//! - The client roles, [`roles`]: keygen, token, publish, watch, peer and
//!   demo, each a state machine of `shoal_proto` on a plain UDP socket.
//!
//! Both use [`dht`] (Mainline DHT discovery: the relay announces itself,
//! the roles look relays up), [`units`] (times and bitrates as text) and
//! the platform code in [`sys`], the only home of `unsafe` outside the
//! [`io`] backends. [`web`] holds what the relay serves to browsers.

pub mod dht;
pub mod io;
pub mod os;
pub mod roles;
pub mod server;
pub mod sys;
pub mod units;
pub mod web;
