//! shoal wire protocol v1.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod fec;
pub mod time;
pub mod ts;

pub use time::Time;
