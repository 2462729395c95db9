//! shoal-relay: the IO shell around `shoal_proto`'s sans-IO roles.
//!
//! [`server::Server`] runs a relay: one [`worker`] per core, each with its
//! own socket in an SO_REUSEPORT group and its own [`io`] backend
//! (io_uring, or recvmmsg/sendmmsg where io_uring is not usable), settings
//! from [`config`], counters on a Prometheus endpoint ([`metrics`]).

pub mod config;
pub mod dht;
pub mod io;
pub mod metrics;
pub mod os;
pub mod roles;
pub mod server;
pub mod supervise;
pub mod sys;
pub mod worker;
