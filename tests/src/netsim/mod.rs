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
//! listens. A node may sit behind a [`Nat`]; see [below](#nat).
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
//! # NAT
//!
//! [`Network::set_nat`] puts the node at an address, present or future,
//! behind one of three NATs; the default is [`Nat::Open`]. The NAT acts
//! where a datagram leaves the node (translating its source) and where one
//! arrives for it (after the link, like a missing node: the link counts it as
//! arrived). What it drops is counted in [`NetStats::nat_filtered`],
//! [`NodeStats::nat_filtered`] and [`AddrStats`], and is in the trace.
//!
//! - [`Nat::Open`]: no NAT. The node is seen at its bound address and takes
//!   datagrams from anyone.
//! - [`Nat::Cone`], a port-restricted cone (endpoint-independent mapping,
//!   address-and-port-dependent filtering): the node is seen at its bound
//!   address by every destination. Sending to `S` opens a hole for `S`; a
//!   datagram from `S` reaches the node only through a hole. Holes never
//!   expire — a simplification: real NATs close idle ones after tens of
//!   seconds to minutes.
//! - [`Nat::Symmetric`] (address-and-port-dependent mapping and filtering):
//!   the node bound to `ip:port` is seen by each destination `D` at its own
//!   mapped address `ip:m`, made the first time it sends to `D`. Ports are
//!   handed out per node from 40000 up, skipping any address bound to a node
//!   or mapped before, in the order the node first sends to each destination,
//!   so they are as deterministic as the rest. A datagram to `ip:m` reaches
//!   the node only if it comes from `D`, and the node sees it from `D` as
//!   usual; its bound address takes nothing at all, since a peer can only
//!   have learnt a mapped address. [`Network::nat_mapping`] tells a test
//!   which address the node has toward `D`. Mappings never expire, and a
//!   mapped address is never handed out again, nor may a node be bound to it.
//!
//! So two cone nodes that send to each other (hole punching) then talk both
//! ways, and a symmetric node talks with an open node, which answers the
//! mapping it saw. A symmetric node and a cone (or symmetric) node never
//! talk: the address a third party (a rendezvous) saw is not the mapping the
//! symmetric node uses toward the other, and the other's filter has no hole
//! for a mapping it cannot know.
//!
//! Links, stats and taps see translated addresses: traffic from a symmetric
//! node to `D` is on the link from its mapping to `D`, and replies on the
//! link back. Link *configs* are resolved by the bound address, so
//! [`Network::set_links_from`] and the like apply to a node's mapped traffic
//! as to its own. [`Network::inject`]ed datagrams pass the NAT's filter like
//! any other; [`Network::set_nat`] on a bound node resets its NAT.
//!
//! An open node pays one enum check per datagram sent and received; the NAT
//! maps are looked at only for nodes behind a NAT and for traffic to
//! addresses no node is bound to.
//!
//! # Determinism
//!
//! The clock is virtual, starting at [`Network::START`]; nothing reads the
//! OS clock or spawns a thread. All randomness comes from one ChaCha8 stream
//! seeded by the caller, drawn in event order, and certain outcomes (a
//! probability of 0 or 1) draw nothing. Events at the same instant run in
//! the order they were queued. Maps that are iterated are `BTreeMap`s; the
//! `HashMap`s (address to node, NAT holes and mappings) are only looked up,
//! never iterated. So one seed and one
//! sequence of calls give one run, and [`Network::trace_hash`] — a BLAKE3
//! hash over every delivery and drop — lets a test assert it.

mod event;
mod link;
mod link_rules;
mod loss;
mod nat;
mod network;
mod node;
mod stats;
mod trace;

#[cfg(test)]
mod nat_tests;
#[cfg(test)]
mod tests;

pub use link::{DropCause, LinkConfig, Tap};
pub use loss::GilbertElliott;
pub use nat::Nat;
pub use network::Network;
pub use node::{Node, NodeId};
pub use stats::{AddrStats, LinkStats, NetStats, NodeStats};
