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
//! listens. A node may sit behind a [`Nat`]; see [below](#nat). A node may
//! also have an [`Uplink`] ([`Network::set_uplink`]): one serializer with a
//! rate, a cost per datagram and a bounded queue that every datagram it
//! sends, to any destination, waits in after the link's tap and before the
//! link's fate (tail drop: [`DropCause::Uplink`]). A node without one sends
//! exactly as if uplinks did not exist. Burst loss can sit on a node's
//! downlink too ([`Network::set_downlink_burst`]): one chain stepped by
//! everything its links let through toward it, from any sender, in the
//! order it arrives.
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
//! [`NodeStats::nat_filtered`] and [`AddrStats`], and is in the trace. The
//! NAT's external address has the node's IP; every port it hands out other
//! than the node's own comes from 40000 up, per node, skipping any address
//! bound to a node or handed out before, in the order needed, so ports are
//! as deterministic as the rest. A handed-out address leads to its node for
//! the whole run, and no node may be bound to it.
//!
//! - [`Nat::Open`]: no NAT. The node is seen at its bound address and takes
//!   datagrams from anyone.
//! - [`Nat::Cone`] is Linux `masquerade` as the NAT lab measured it
//!   (`tests/natlab/README.md`, "What the connection tables show about
//!   cone ↔ cone"; `tests/natlab/remap.sh` and `punch_repro.sh`). Its
//!   table holds *flows*, one per remote address the node sent to, each
//!   with an external port, and *inbound-first entries*:
//!   1. Filtering is address-and-port-dependent: a datagram from `S` to
//!      external port `q` reaches the node only if the node's flow to
//!      exactly `S` has port `q` (run a-e: nothing from another cone peer
//!      ever arrived; `remap.sh` step 2).
//!   2. A datagram that matches no flow is dropped but leaves an
//!      inbound-first entry (`S`, `q`), refreshed by every later one (the
//!      `[UNREPLIED]` inbound entries of the lab's tables, entry (2)).
//!   3. A new flow to `D` takes the first of these whose tuple (port, `D`)
//!      no live inbound-first entry holds: the port of the node's newest
//!      live flow (Linux's by-source lookup: once one flow was remapped,
//!      later ones follow it; `remap.sh` step 5), the node's own port
//!      (port preservation; steps 1 and 3), a port handed out as above
//!      (the remap; step 4, entries (3) and (5)). A flow keeps its port for
//!      life, so flows made before a remap keep theirs.
//!   4. Flows and entries live 30 s after their last datagram (either
//!      way), a flow the remote has answered 180 s (the kernel's UDP
//!      timeouts); expired ones are forgotten when next looked at.
//!
//!   So of two cone hosts, the one whose first datagram arrives before the
//!   other's NAT has sent anything poisons that NAT: the other's punch
//!   leaves from a new port, which the first NAT filters in turn, and
//!   neither hears anything (`punch_repro.sh`, "sequential"). They talk if
//!   their first datagrams cross, or if the first one dies on the way (a
//!   TTL of 2: see [below](#ttl)) and so opens only its sender's NAT.
//! - [`Nat::Symmetric`] (Linux `masquerade fully-random`; here sequential,
//!   not random): the node bound to `ip:port` is seen by each destination
//!   `D` at its own mapped address `ip:m`, handed out the first time it
//!   sends to `D`. A datagram to `ip:m` reaches the node only if it comes
//!   from `D`, and the node sees it from `D` as usual; its bound address
//!   takes nothing at all, since a peer can only have learnt a mapped
//!   address. Mappings never expire and remember nothing they drop.
//!
//! [`Network::nat_mapping`] tells a test which address a node behind a NAT
//! has toward `D`. A symmetric node talks with an open node, which answers
//! the mapping it saw. A symmetric node and a cone (or symmetric) node never
//! talk: the address a third party (a rendezvous) saw is not the mapping the
//! symmetric node uses toward the other, and the other's filter has no flow
//! for a mapping it cannot know.
//!
//! Links, stats and taps see translated addresses: traffic from a node
//! behind a NAT to `D` is on the link from the address it has toward `D`,
//! and replies on the link back. Link *configs* are resolved by the
//! bound address, so [`Network::set_links_from`] and the like apply to a
//! node's mapped traffic as to its own. [`Network::inject`]ed datagrams pass
//! the NAT like any other (and leave entries); [`Network::set_nat`] on a
//! bound node resets its NAT.
//!
//! An open node pays one enum check per datagram sent and received; the NAT
//! tables are looked at only for nodes behind a NAT and for traffic to
//! addresses no node is bound to.
//!
//! # TTL
//!
//! A node may send a datagram with a small IP TTL ([`Outgoing::ttl`];
//! `None` is [`DEFAULT_TTL`]). The sender's NAT, if any, takes one (a
//! datagram it gets with TTL 1 or 0 dies there, before translation: no flow,
//! no mapping), and the path between any two hosts holds
//! [`ROUTERS_BETWEEN_HOSTS`] routers (2; the lab's `--hop` core drops what
//! it would forward with TTL <= 2 for the same reason). So a datagram is
//! delivered only if its TTL, less one behind a NAT, exceeds 2; otherwise it
//! dies on its link after any tap, as [`DropCause::TtlExpired`] (in
//! [`LinkStats`], [`NetStats::dropped`] and the trace), and never reaches the
//! far side's NAT. A peer's first PUNCH at TTL 2 thus opens its own cone
//! NAT's flow and leaves no entry at the other's. The receiving NAT's own
//! decrement is not modelled: with any TTL that passed the path, it passes.
//!
//! # Determinism
//!
//! The clock is virtual, starting at [`Network::START`]; nothing reads the
//! OS clock. Randomness comes from one ChaCha8 stream per node, seeded by
//! the caller's seed and the node's index: the fates of what a node sends
//! (loss, jitter, duplicates) are drawn from the sender's stream as it
//! sends, the steps of its access link's burst chain from its own as
//! datagrams arrive; certain outcomes (a probability of 0 or 1) draw
//! nothing. Events at the same instant run by the node that caused them
//! (a datagram's sender, a timeout's node; injected datagrams after all
//! nodes), then in the order that node caused them. Maps that are
//! iterated are `BTreeMap`s (the cone NAT's flows by age among them), or
//! are sorted first (the links); the hash maps (address to node, to link,
//! to counters; NAT flows, entries and mappings) have a fixed hasher and
//! are only looked up, never iterated. NAT entries expire by comparison
//! with the virtual clock. So one seed and one sequence of calls give one
//! run, and [`Network::trace_hash`] — a hash of the set of every delivery
//! (its bytes as a 64-bit digest), undeliverable arrival and drop, each
//! with its instant — lets a test assert it.
//!
//! # Threads
//!
//! [`Network::with_threads`] splits the nodes over shards by IP, one
//! thread each, and gives the same run as one thread, event for event
//! (`tests::any_number_of_threads_gives_the_same_trace`; for the swarm,
//! `tests/tests/swarm_threads.rs`). It is a conservative scheme: nothing a
//! node sends arrives sooner than the least delay any link rule allows
//! (latency less jitter), so the shards run in windows that long, each on
//! its own events, and what they sent one another is queued between
//! windows. Everything a datagram touches belongs to its sender's shard
//! when it is sent and to its receiver's when it arrives: the orders,
//! random streams and counters above are per node, per link end and per
//! shard, so the split changes none of them (see `netsim/shard.rs`).
//! Within a window a shard runs its events node by node rather than in
//! time order, which keeps a node's state in cache across its events and
//! is the same run again (see `netsim/window.rs`); one thread runs in
//! windows too, whenever every link has a least delay.
//! What each thread needs: nodes and taps that are `Send`; every link's
//! latency above its jitter (checked; a zero-latency link needs one
//! thread); taps that do not share state in a way whose order matters,
//! since taps on different shards run at once, and on one shard run node
//! by node.

mod arrivals;
mod downlink;
mod event;
mod link;
mod link_rules;
mod loss;
mod nat;
mod network;
mod node;
mod shard;
mod stats;
mod trace;
mod ttl;
mod uplink;
mod window;

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod nat_tests;
#[cfg(test)]
mod tests;

/// A hash map for lookups only: a fixed, fast hasher (the addresses are
/// the simulation's own, not an attacker's), and never iterated, so the
/// order of its entries cannot leak into a run. The `BTreeMap`s it replaced
/// on the per-datagram path were 10-13% of a swarm run's time
/// (BENCHMARKS.md, "Issue 20, fourth session").
type Lookup<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

pub use link::{DropCause, LinkConfig, Tap};
pub use loss::GilbertElliott;
pub use nat::Nat;
pub use network::Network;
pub use node::{Node, NodeId, Outgoing};
pub use stats::{AddrStats, LinkStats, NetStats, NodeStats};
pub use ttl::{DEFAULT_TTL, ROUTERS_BETWEEN_HOSTS};
pub use uplink::Uplink;
