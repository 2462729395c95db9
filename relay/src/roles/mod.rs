//! The client roles around the relay server: key generation ([`keygen`]),
//! access tokens ([`token`]), publishing ([`publish`]), watching
//! ([`watch`]), the ordinary peer ([`peer`]), and the loopback [`demo`].
//!
//! Each drives a `shoal_proto` state machine on a plain UDP socket; none
//! needs the server's io_uring or worker machinery. `watch` and `peer`
//! share one run loop (`client_loop.rs`).

mod args;
pub mod client_args;
mod client_loop;
pub mod demo;
mod join;
pub mod keygen;
mod output;
pub mod peer;
mod progress;
pub mod publish;
mod stop;
pub mod token;
mod udp;
pub mod watch;
