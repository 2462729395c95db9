//! The roles around the relay: key generation, publishing, watching, and
//! the ordinary peer.

mod args;
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
