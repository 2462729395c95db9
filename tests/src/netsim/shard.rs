//! One shard of the network: the nodes whose IPs fall to it, their events,
//! the links they send on, and the receiving half of the counters for
//! traffic toward them.
//!
//! # Why shards
//!
//! A network of `n` shards runs them on `n` threads (see the
//! [module docs](super#threads)). Everything a datagram touches belongs to
//! one shard: when it is sent, the sender's (its link, uplink, NAT flow and
//! random stream, the sent counters); when it arrives, the receiver's (the
//! access link's burst chain, the NAT filter, the arrival counters, the
//! trace). A node's address decides its shard ([`Shared::shard_of`], by IP,
//! so a NAT's mapped addresses, which keep the node's IP, fall to the same
//! one). What no shard owns is read-only while shards run (bound addresses,
//! link rules), except the registry of NAT mappings, which only a mapping's
//! own shard adds to (so in a fixed order) and others read behind a lock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use shoal_proto::Time;
use shoal_proto::transmit::SharedBuf;

use super::Lookup;
use super::arrivals::ArrivalTable;
use super::downlink::DownlinkBurst;
use super::event::{Event, EventKind, EventQueue};
use super::link::{DropCause, Fate, Link, LinkConfig};
use super::link_rules::LinkRules;
use super::nat::{NatState, Nats};
use super::node::{Node, Outgoing};
use super::stats::{AddrStats, NetStats, NodeStats};
use super::trace::Trace;
use super::ttl::Reach;
use super::uplink::UplinkQueue;
use super::window::Soon;

/// How many timeouts one node may take at one instant before the network
/// calls it a livelock (a node whose `poll_timeout` never moves past `now`).
const SPIN_LIMIT: u32 = 10_000;

/// Bits of an event's order given to the count of events its node caused.
const CAUSED_BITS: u32 = 40;

/// The order among events at one instant of the `caused`-th event caused by
/// the node `origin` (its index in the network): by node, then by that
/// node's count. Neither depends on how nodes are split over threads, so a
/// run is the same on any number of them.
pub(super) fn order(origin: u64, caused: u64) -> u64 {
    assert!(
        caused < 1 << CAUSED_BITS && origin < 1 << (64 - CAUSED_BITS),
        "netsim: more than 2^24 nodes or 2^40 events from one node"
    );
    origin << CAUSED_BITS | caused
}

/// The origin of injected datagrams: after every node.
pub(super) const INJECTOR: u64 = (1 << (64 - CAUSED_BITS)) - 1;

/// `addr`'s IP folded to 64 bits: what places a node in its shard and, in
/// a window, its events in their group (`netsim/window.rs`).
pub(super) fn ip_key(addr: SocketAddr) -> u64 {
    match addr {
        SocketAddr::V4(a) => u64::from(u32::from(*a.ip())),
        SocketAddr::V6(a) => {
            let ip = u128::from(*a.ip());
            (ip >> 64) as u64 ^ ip as u64
        }
    }
}

/// Where a link is kept: its sender's shard and its place there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct LinkRef(u64);

impl LinkRef {
    pub(super) fn new(shard: usize, index: usize) -> Self {
        let index = u32::try_from(index).expect("netsim: fewer than 2^32 links per shard");
        Self((shard as u64) << 32 | u64::from(index))
    }

    pub(super) fn shard(self) -> usize {
        (self.0 >> 32) as usize
    }

    pub(super) fn index(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }
}

/// A node's place: its shard and its index there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct NodeLoc {
    pub(super) shard: usize,
    pub(super) local: usize,
}

/// What every shard reads and none owns. Mutable only between runs, but
/// for the NAT registry (see the [module docs](self)).
pub(super) struct Shared {
    /// Bound addresses to nodes (their index in the network).
    pub(super) addrs: Lookup<SocketAddr, usize>,
    /// Where each node is, by index.
    pub(super) nodes: Vec<NodeLoc>,
    pub(super) rules: LinkRules,
    pub(super) nats: Nats,
    pub(super) shards: usize,
}

impl Shared {
    /// The config of the link from `from` to `to` under the current rules,
    /// looked up by bound addresses: a link from or to a symmetric NAT's
    /// mapping gets the config of the node behind it.
    fn link_config(&self, from: SocketAddr, to: SocketAddr) -> LinkConfig {
        self.rules.resolve(self.nats.real(from), self.nats.real(to))
    }

    /// The shard of the node bound at `addr`, or that would be: by IP.
    pub(super) fn shard_of(&self, addr: SocketAddr) -> usize {
        (ip_key(addr) % self.shards as u64) as usize
    }

    /// The node a datagram to `to` reaches, and whether `to` is a NAT's
    /// mapping rather than a bound address; online or not.
    fn receiver(&self, to: SocketAddr) -> Option<(NodeLoc, bool)> {
        match self.addrs.get(&to) {
            Some(&index) => Some((self.nodes[index], false)),
            None => self
                .nats
                .node_behind(to)
                .map(|index| (self.nodes[index], true)),
        }
    }
}

/// A node and what the network knows about it.
pub(super) struct Slot {
    pub(super) addr: SocketAddr,
    pub(super) node: Box<dyn Node>,
    /// The node's index in the network.
    pub(super) index: usize,
    /// False once disconnected: no deliveries, no timeouts.
    pub(super) online: bool,
    /// The node's `poll_timeout` as last read, for which one event is queued.
    pub(super) wanted: Option<Time>,
    pub(super) stats: NodeStats,
    /// The node's NAT: the flows or mappings it has made.
    pub(super) nat: NatState,
    /// The instant of the node's last timeout and how many it took then.
    pub(super) spin: (Time, u32),
    /// The node's uplink, if it has one: every datagram it sends waits
    /// here.
    pub(super) uplink: Option<UplinkQueue>,
    /// The burst chain of the node's access link, if it has one.
    pub(super) downlink: Option<DownlinkBurst>,
    /// The node's own random stream: the fates of what it sends and the
    /// steps of its access link's chain.
    pub(super) rng: ChaCha8Rng,
    /// Events the node has caused: the second half of their order.
    pub(super) caused: u64,
    /// The links it sent on, by receiver, with the address it sent from
    /// (its NAT's mapping, which can change): a cache of the shard's
    /// [`Links::index`], small and near the node's other state, where the
    /// shard's index is a cache miss per datagram.
    pub(super) link_cache: Lookup<SocketAddr, (SocketAddr, u32)>,
    /// Where this shard counts the traffic toward its bound address, once
    /// known (see `Shard::own_stats_index`).
    pub(super) own_stats: Option<u32>,
}

impl Slot {
    fn next_order(&mut self) -> u64 {
        let order = order(self.index as u64, self.caused);
        self.caused += 1;
        order
    }
}

/// A delivery for another shard's node, posted when the window ends.
pub(super) struct Mail {
    pub(super) shard: usize,
    pub(super) at: Time,
    pub(super) order: u64,
    pub(super) kind: EventKind,
}

/// The links this shard's nodes sent on, in the order of first use, and
/// where each is.
#[derive(Default)]
pub(super) struct Links {
    pub(super) all: Vec<Link>,
    pub(super) index: Lookup<(SocketAddr, SocketAddr), u32>,
}

#[derive(Default)]
pub(super) struct Shard {
    pub(super) id: usize,
    pub(super) now: Time,
    pub(super) events: EventQueue,
    pub(super) nodes: Vec<Slot>,
    pub(super) links: Links,
    /// The receiving half of links toward this shard's addresses.
    pub(super) arrivals: ArrivalTable,
    /// Traffic toward each address, as far as this shard saw it (sent by
    /// its nodes, arrived at its addresses), at the index `addr_index`
    /// gives.
    pub(super) addr_stats: Vec<AddrStats>,
    pub(super) addr_index: Lookup<SocketAddr, u32>,
    pub(super) stats: NetStats,
    pub(super) trace: Trace,
    /// Deliveries for other shards.
    pub(super) mail: Vec<Mail>,
    /// While a window runs (`netsim/window.rs`): its last instant.
    /// Nothing sent in it may arrive by then.
    pub(super) horizon: Option<Time>,
    /// Reused between drains so sending allocates nothing but the payloads.
    outbox: Vec<Outgoing>,
    /// While a window runs node by node: the timeouts its nodes asked for
    /// within it (see `netsim/window.rs`).
    pub(super) soon: BinaryHeap<Reverse<Soon>>,
    /// A window's events and their groups, kept for their capacity.
    pub(super) batch: Vec<Option<Event>>,
    pub(super) groups: Vec<(u64, u32)>,
}

impl Shard {
    pub(super) fn new(id: usize) -> Self {
        Self {
            id,
            ..Self::default()
        }
    }

    /// Processes this shard's events due by `deadline`, in order.
    pub(super) fn run_until(&mut self, shared: &Shared, deadline: Time) {
        while let Some(event) = self.events.pop_due(deadline) {
            self.run_event(shared, event);
        }
        self.now = self.now.max(deadline);
    }

    /// Runs one event at its instant.
    pub(super) fn run_event(&mut self, shared: &Shared, event: Event) {
        self.now = event.at;
        match event.kind {
            EventKind::Deliver {
                from,
                to,
                bytes,
                link,
            } => self.deliver(shared, from, to, &bytes, link),
            EventKind::Timeout { node, wanted } => self.fire_timeout(shared, node, wanted),
        }
    }

    /// Queues an event here, or mails it to its shard.
    pub(super) fn post(&mut self, shard: usize, at: Time, order: u64, kind: EventKind) {
        if let Some(horizon) = self.horizon {
            assert!(
                at > horizon,
                "netsim: a datagram sent at {:?} arrives at {at:?}, within the window threads run \
                 ahead by (to {horizon:?}): a link's latency less its jitter is below the lookahead",
                self.now,
            );
        }
        if shard == self.id {
            self.events.push(at, order, kind);
        } else {
            self.mail.push(Mail {
                shard,
                at,
                order,
                kind,
            });
        }
    }

    /// The index of `addr`'s traffic counters here, made on first use.
    pub(super) fn addr_stats_index(&mut self, addr: SocketAddr) -> usize {
        let next = self.addr_stats.len();
        let at = *self
            .addr_index
            .entry(addr)
            .or_insert_with(|| u32::try_from(next).expect("netsim: fewer than 2^32 addresses"));
        if at as usize == next {
            self.addr_stats.push(AddrStats::default());
        }
        at as usize
    }

    /// The index of the traffic counters of node `local`'s bound address,
    /// kept in its slot after the first lookup.
    fn own_stats_index(&mut self, local: usize) -> usize {
        if let Some(index) = self.nodes[local].own_stats {
            return index as usize;
        }
        let index = self.addr_stats_index(self.nodes[local].addr);
        self.nodes[local].own_stats = Some(index as u32);
        index
    }

    /// The index of the link from `from` to `to`, created on first use,
    /// its config brought up to date with the rules.
    pub(super) fn link_index(
        &mut self,
        shared: &Shared,
        from: SocketAddr,
        to: SocketAddr,
    ) -> usize {
        if let Some(&index) = self.links.index.get(&(from, to)) {
            return self.refresh_link(shared, index as usize, from, to);
        }
        let to_stats = self.addr_stats_index(to);
        let index = self.links.all.len();
        let config = shared.link_config(from, to);
        self.links
            .all
            .push(Link::new(to_stats, config, shared.rules.generation()));
        let key = u32::try_from(index).expect("netsim: fewer than 2^32 links");
        self.links.index.insert((from, to), key);
        index
    }

    /// The link at `index` (from `from` to `to`), its config brought up to
    /// date with the link rules.
    fn refresh_link(
        &mut self,
        shared: &Shared,
        index: usize,
        from: SocketAddr,
        to: SocketAddr,
    ) -> usize {
        let generation = shared.rules.generation();
        let link = &mut self.links.all[index];
        if link.generation != generation {
            link.config = shared.link_config(from, to);
            link.generation = generation;
        }
        index
    }

    fn deliver(
        &mut self,
        shared: &Shared,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &SharedBuf,
        link: Option<LinkRef>,
    ) {
        let now = self.now;
        let len = bytes.len() as u64;
        self.stats.events += 1;
        let found = shared.receiver(to).filter(|(loc, _)| {
            assert_eq!(
                loc.shard, self.id,
                "netsim: a delivery reached the wrong shard"
            );
            self.nodes[loc.local].online
        });
        if let Some((loc, _)) = found {
            let slot = &mut self.nodes[loc.local];
            // The access link's chain sees what the links let through
            // toward it, as it arrives.
            if let Some(downlink) = &mut slot.downlink
                && downlink.step(&mut slot.rng)
            {
                if let Some(link) = link {
                    self.arrivals.entry(link).burst += 1;
                }
                self.stats.dropped += 1;
                self.trace
                    .dropped(now, from, to, bytes.len(), DropCause::Burst);
                return;
            }
        }
        if let Some(link) = link {
            let arrivals = self.arrivals.entry(link);
            arrivals.datagrams += 1;
            arrivals.bytes += len;
        }
        let to_stats = match found {
            Some((loc, false)) => self.own_stats_index(loc.local),
            _ => self.addr_stats_index(to),
        };
        let addr_stats = &mut self.addr_stats[to_stats];
        let Some((loc, mapped)) = found else {
            addr_stats.undeliverable_datagrams += 1;
            addr_stats.undeliverable_bytes += len;
            self.stats.undeliverable += 1;
            self.trace.undeliverable(now, from, to, bytes.len());
            return;
        };
        let slot = &mut self.nodes[loc.local];
        if (mapped || !slot.nat.is_open()) && !slot.nat.admit(from, to, mapped, now) {
            addr_stats.nat_filtered_datagrams += 1;
            addr_stats.nat_filtered_bytes += len;
            self.stats.nat_filtered += 1;
            slot.stats.nat_filtered += 1;
            self.trace.nat_filtered(now, from, to, bytes.len());
            return;
        }
        addr_stats.delivered_datagrams += 1;
        addr_stats.delivered_bytes += len;
        self.stats.delivered += 1;
        self.trace.delivered(now, from, to, bytes);
        slot.stats.received_datagrams += 1;
        slot.stats.received_bytes += len;
        slot.node.handle_shared(now, from, bytes);
        self.after_handle(shared, loc.local);
    }

    pub(super) fn fire_timeout(&mut self, shared: &Shared, local: usize, wanted: Time) {
        let now = self.now;
        let slot = &mut self.nodes[local];
        if !slot.online || slot.wanted != Some(wanted) {
            self.stats.stale_timeouts += 1;
            return;
        }
        self.stats.events += 1;
        self.stats.timeouts += 1;
        slot.stats.timeouts += 1;
        slot.wanted = None;
        if slot.spin.0 == now {
            slot.spin.1 += 1;
            assert!(
                slot.spin.1 <= SPIN_LIMIT,
                "netsim: node at {} took {SPIN_LIMIT} timeouts at {now:?}; its poll_timeout never moves on",
                slot.addr,
            );
        } else {
            slot.spin = (now, 1);
        }
        slot.node.handle_timeout(now);
        self.after_handle(shared, local);
    }

    /// The str0m rule: after every call into a node, drain its transmits,
    /// then read its timeout.
    pub(super) fn after_handle(&mut self, shared: &Shared, local: usize) {
        let now = self.now;
        let mut outbox = std::mem::take(&mut self.outbox);
        let slot = &mut self.nodes[local];
        while let Some(outgoing) = slot.node.poll_transmit(now) {
            slot.stats.sent_datagrams += 1;
            slot.stats.sent_bytes += outgoing.bytes.len() as u64;
            outbox.push(outgoing);
        }
        let wanted = slot.node.poll_timeout();
        if wanted != slot.wanted {
            slot.wanted = wanted;
            if let Some(wanted) = wanted {
                let order = slot.next_order();
                let at = wanted.max(now);
                if self.horizon.is_some_and(|horizon| at <= horizon) {
                    self.soon.push(Reverse(Soon {
                        at,
                        order,
                        node: local,
                        wanted,
                    }));
                } else {
                    let kind = EventKind::Timeout {
                        node: local,
                        wanted,
                    };
                    self.events.push(at, order, kind);
                }
            }
        }
        for Outgoing { to, bytes, ttl } in outbox.drain(..) {
            let slot = &mut self.nodes[local];
            let behind_nat = !slot.nat.is_open();
            let reach = Reach::of(ttl, behind_nat);
            let from = if behind_nat && reach != Reach::OwnNat {
                let index = slot.index;
                shared
                    .nats
                    .outbound(&mut slot.nat, index, slot.addr, to, now, |addr| {
                        shared.addrs.contains_key(&addr)
                    })
            } else {
                slot.addr
            };
            self.send(shared, local, from, to, bytes, reach == Reach::FarSide);
        }
        self.outbox = outbox;
    }

    /// Puts a datagram from the node `local` on the link from `from` to
    /// `to` at the current time; one that will not `reach` the far side
    /// (its TTL) dies there, after any tap. Between the tap and the link's
    /// fate it waits in the node's uplink, if any, and enters the link
    /// when it leaves that. A datagram whose TTL dies on the way is not
    /// charged to the uplink: such are a few small punches.
    fn send(
        &mut self,
        shared: &Shared,
        local: usize,
        from: SocketAddr,
        to: SocketAddr,
        mut bytes: SharedBuf,
        reach: bool,
    ) {
        let now = self.now;
        let link_index = match self.nodes[local].link_cache.get(&to) {
            Some(&(cached_from, index)) if cached_from == from => {
                self.refresh_link(shared, index as usize, from, to)
            }
            _ => {
                let index = self.link_index(shared, from, to);
                let key = u32::try_from(index).expect("netsim: fewer than 2^32 links");
                self.nodes[local].link_cache.insert(to, (from, key));
                index
            }
        };
        let link = &mut self.links.all[link_index];
        let to_stats = &mut self.addr_stats[link.to_stats];
        to_stats.sent_datagrams += 1;
        to_stats.sent_bytes += bytes.len() as u64;
        link.stats.sent_datagrams += 1;
        link.stats.sent_bytes += bytes.len() as u64;
        // The sender may still hold the buffer (a window's chunk): a tap
        // rewrites a copy of it.
        let tapped_out = link
            .tap
            .as_mut()
            .is_some_and(|tap| !tap(Arc::make_mut(&mut bytes)));
        let slot = &mut self.nodes[local];
        let fate = if tapped_out {
            Fate::Dropped(DropCause::Tap)
        } else if !reach {
            Fate::Dropped(DropCause::TtlExpired)
        } else {
            let departure = match &mut slot.uplink {
                None => Some(now),
                Some(uplink) => uplink.enqueue(now, bytes.len()),
            };
            match departure {
                Some(departure) => link.transmit(departure, bytes.len(), &mut slot.rng),
                None => Fate::Dropped(DropCause::Uplink),
            }
        };
        match fate {
            Fate::Dropped(cause) => {
                if cause == DropCause::Uplink {
                    slot.stats.uplink_dropped += 1;
                }
                link.stats.count_drop(cause);
                self.stats.dropped += 1;
                self.trace.dropped(now, from, to, bytes.len(), cause);
            }
            Fate::Arrives { at, duplicate_at } => {
                let over = Some(LinkRef::new(self.id, link_index));
                let deliver = |bytes| EventKind::Deliver {
                    from,
                    to,
                    bytes,
                    link: over,
                };
                let shard = shared.shard_of(to);
                let first = slot.next_order();
                match duplicate_at {
                    None => self.post(shard, at, first, deliver(bytes)),
                    Some(duplicate_at) => {
                        link.stats.duplicated += 1;
                        let second = slot.next_order();
                        self.post(shard, at, first, deliver(SharedBuf::clone(&bytes)));
                        self.post(shard, duplicate_at, second, deliver(bytes));
                    }
                }
            }
        }
    }
}
