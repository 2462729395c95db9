//! A deterministic, in-memory network for scenario tests.
//!
//! # What it models
//!
//! Nodes — sans-IO state machines behind the [`Node`] trait — each bound to
//! one [`SocketAddr`](std::net::SocketAddr), exchange UDP-like datagrams:
//! unreliable, unordered, whole. Between every ordered pair of addresses
//! runs a directed link with its own [`LinkConfig`]: latency, uniform
//! jitter, independent loss, Gilbert-Elliott burst loss, reordering,
//! duplication, and a rate limiter with a bounded byte queue. Configs come
//! from rules (default, per node's uplink or downlink, per pair; see
//! [`Network::set_link`]); the state (burst chain, queue) is per directed
//! link. A test can also [`inject`](Network::inject) datagrams with any
//! claimed source, [`tap`](Network::set_tap) a link to watch, rewrite or
//! drop what enters it, and read counters per node, per link and per
//! destination address, including traffic toward addresses where no node
//! listens.
//!
//! # Run loop
//!
//! [`Network::run_until`] pops events in time order: a datagram arriving
//! (handed to [`Node::handle_datagram`], or counted as undeliverable) or a
//! node's timeout (handed to [`Node::handle_timeout`]). After every call into
//! a node — and when it is added, and after [`Network::with_node`] — the
//! network drains [`Node::poll_transmit`] until `None`, putting each datagram
//! on its link at the current time, then reads [`Node::poll_timeout`] and
//! queues a timeout event if the answer changed. A timeout event whose time
//! is no longer what the node wants is skipped, so nothing costs work
//! proportional to the number of nodes.
//!
//! # Determinism
//!
//! The clock is virtual, starting at [`Network::START`]; nothing reads the
//! OS clock or spawns a thread. All randomness comes from one ChaCha8 stream
//! seeded by the caller, drawn in event order, and certain outcomes (a
//! probability of 0 or 1) draw nothing. Events at the same instant run in
//! the order they were queued. Maps that are iterated are `BTreeMap`s; the
//! one `HashMap` (address to node) is only looked up. So one seed and one
//! sequence of calls give one run, and [`Network::trace_hash`] — a BLAKE3
//! hash over every delivery and drop — lets a test assert it.

mod event;
mod link;
mod link_rules;
mod loss;
mod network;
mod node;
mod stats;
mod trace;

#[cfg(test)]
mod tests;

pub use link::{DropCause, LinkConfig, Tap};
pub use loss::GilbertElliott;
pub use network::Network;
pub use node::{Node, NodeId};
pub use stats::{AddrStats, LinkStats, NetStats, NodeStats};
