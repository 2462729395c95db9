//! shoal wire protocol v1.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
pub use time::Time;
pub use transmit::Transmit;
