//! The roles around the relay: key generation, publishing and watching.

pub mod keygen;
pub mod publish;
pub mod watch;
