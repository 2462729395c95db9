//! Deterministic network simulator and the scenario tests' shared harness.
#![warn(missing_docs)]

pub mod harness;
pub mod nat_table;
pub mod netsim;
