//! The roles around the relay: key generation, publishing and watching.

pub mod demo;
pub mod keygen;
pub mod publish;
pub mod watch;
