//! The network: nodes bound to addresses, directed links between them, and
//! the run loop that moves datagrams and fires timeouts in time order.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shoal_proto::Time;
use shoal_proto::transmit::SharedBuf;

use super::Lookup;
use super::downlink::DownlinkBurst;
use super::event::{EventKind, EventQueue};
use super::link::{DropCause, Fate, Link, LinkConfig, Tap};
use super::link_rules::LinkRules;
use super::loss::GilbertElliott;
use super::nat::{Nat, NatState, Nats};
use super::node::{Node, NodeId, Outgoing};
use super::stats::{AddrStats, LinkStats, NetStats, NodeStats};
use super::trace::Trace;
use super::ttl::Reach;
use super::uplink::{Uplink, UplinkQueue};

/// How many timeouts one node may take at one instant before the network
/// calls it a livelock (a node whose `poll_timeout` never moves past `now`).
const SPIN_LIMIT: u32 = 10_000;

/// A simulated network. See the [module docs](super) for what it models.
pub struct Network {
    now: Time,
    rng: ChaCha8Rng,
    events: EventQueue,
    nodes: Vec<Slot>,
    /// Bound addresses to nodes.
    addrs: Lookup<SocketAddr, usize>,
    rules: LinkRules,
    nats: Nats,
    /// Uplinks set per bound address, present or future.
    uplinks: Lookup<SocketAddr, Uplink>,
    /// Burst chains of nodes' downlinks, by bound address.
    downlinks: Lookup<SocketAddr, DownlinkBurst>,
    links: Links,
    /// Traffic toward each address, at the index `addr_index` gives.
    addr_stats: Vec<AddrStats>,
    addr_index: Lookup<SocketAddr, u32>,
    stats: NetStats,
    trace: Trace,
    /// Reused between drains so sending allocates nothing but the payloads.
    outbox: Vec<Outgoing>,
}

/// A node and what the network knows about it.
struct Slot {
    addr: SocketAddr,
    node: Box<dyn Node>,
    /// False once disconnected: no deliveries, no timeouts.
    online: bool,
    /// The node's `poll_timeout` as last read, for which one event is queued.
    wanted: Option<Time>,
    stats: NodeStats,
    /// The node's NAT: the flows or mappings it has made.
    nat: NatState,
    /// The instant of the node's last timeout and how many it took then.
    spin: (Time, u32),
    /// The node's uplink, if it has one: every datagram it sends waits
    /// here.
    uplink: Option<UplinkQueue>,
}

impl Network {
    /// Where every network's clock starts: late 2023 in microseconds since
    /// the epoch, so timestamps look like wall-clock time.
    pub const START: Time = Time::from_micros(1_700_000_000_000_000);

    /// An empty network at [`Network::START`], its randomness fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            now: Self::START,
            rng: ChaCha8Rng::seed_from_u64(seed),
            events: EventQueue::default(),
            nodes: Vec::new(),
            addrs: Lookup::default(),
            rules: LinkRules::default(),
            nats: Nats::default(),
            uplinks: Lookup::default(),
            downlinks: Lookup::default(),
            links: Links::default(),
            addr_stats: Vec::new(),
            addr_index: Lookup::default(),
            stats: NetStats::default(),
            trace: Trace::new(),
            outbox: Vec::new(),
        }
    }

    /// The simulated time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Binds `node` to `addr` and, as after any `handle_*`, sends what it has
    /// to send and schedules its timeout.
    ///
    /// The node sits behind the NAT [`set_nat`](Self::set_nat) gave `addr`,
    /// if any, with no flows or mappings yet.
    ///
    /// # Panics
    ///
    /// If a connected node already has `addr`, or a symmetric NAT has
    /// handed it out as a mapping.
    pub fn add_node<T: Node>(&mut self, addr: SocketAddr, node: T) -> NodeId<T> {
        assert!(
            !self.nats.is_mapped(addr),
            "netsim: address {addr} is a NAT mapping"
        );
        let index = self.nodes.len();
        let previous = self.addrs.insert(addr, index);
        assert!(
            previous.is_none(),
            "netsim: address {addr} is already bound"
        );
        self.nodes.push(Slot {
            addr,
            node: Box::new(node),
            online: true,
            wanted: None,
            stats: NodeStats::default(),
            nat: NatState::new(self.nats.configured(addr)),
            spin: (Time::ZERO, 0),
            uplink: self.uplinks.get(&addr).copied().map(UplinkQueue::new),
        });
        self.after_handle(index);
        NodeId::new(index)
    }

    /// The node behind `id`.
    ///
    /// # Panics
    ///
    /// If `id` came from another network.
    pub fn node<T: Node>(&self, id: NodeId<T>) -> &T {
        let node: &dyn Any = &*self.slot(id.index()).node;
        node.downcast_ref()
            .expect("netsim: NodeId from another network")
    }

    /// Runs `f` on the node behind `id` at the current time, then sends what
    /// the node has to send and reschedules its timeout: the way for a test
    /// to poke a node (publish a chunk, change a setting) mid-run.
    ///
    /// # Panics
    ///
    /// If `id` came from another network.
    pub fn with_node<T: Node, R>(&mut self, id: NodeId<T>, f: impl FnOnce(&mut T, Time) -> R) -> R {
        let now = self.now;
        let slot = self
            .nodes
            .get_mut(id.index())
            .expect("netsim: NodeId from another network");
        let node: &mut dyn Any = &mut *slot.node;
        let node = node
            .downcast_mut()
            .expect("netsim: NodeId from another network");
        let result = f(node, now);
        if slot.online {
            self.after_handle(id.index());
        }
        result
    }

    /// The address `id` is (or was) bound to.
    pub fn addr<T>(&self, id: NodeId<T>) -> SocketAddr {
        self.slot(id.index()).addr
    }

    /// Takes the node off the network: datagrams to its address become
    /// undeliverable, its timeouts stop, and the address is free for a new
    /// node. The node itself stays readable through `id`.
    pub fn disconnect<T>(&mut self, id: NodeId<T>) {
        let index = id.index();
        let slot = self
            .nodes
            .get_mut(index)
            .expect("netsim: NodeId from another network");
        if !slot.online {
            return;
        }
        slot.online = false;
        slot.wanted = None;
        self.addrs.remove(&slot.addr);
    }

    /// Whether the node is still on the network.
    pub fn is_connected<T>(&self, id: NodeId<T>) -> bool {
        self.slot(id.index()).online
    }

    /// Number of nodes ever added.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The config of every link without a more specific one.
    ///
    /// # Panics
    ///
    /// If a probability is outside `0.0..=1.0` or `rate_bps` is `Some(0)`;
    /// so do the other `set_*` methods.
    pub fn set_default_link(&mut self, config: LinkConfig) {
        self.rules.set_default(config);
    }

    /// The config of the link from `from` to `to`; beats every other rule.
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, config: LinkConfig) {
        self.rules.set_pair(from, to, config);
    }

    /// The config of every link leaving `from` (an uplink), present and
    /// future. Between this and [`set_links_to`](Self::set_links_to) for
    /// the same link, the one called later wins.
    pub fn set_links_from(&mut self, from: SocketAddr, config: LinkConfig) {
        self.rules.set_from(from, config);
    }

    /// The config of every link reaching `to` (a downlink), present and
    /// future.
    pub fn set_links_to(&mut self, to: SocketAddr, config: LinkConfig) {
        self.rules.set_to(to, config);
    }

    /// Puts the node at `addr`, present or future, behind `nat` (see the
    /// [module docs](super#nat)); every address starts [`Nat::Open`]. A node
    /// already bound there loses its holes and mappings, as if its NAT
    /// rebooted; its old mapped addresses stay reserved, and take nothing
    /// until the new NAT hands them out again.
    pub fn set_nat(&mut self, addr: SocketAddr, nat: Nat) {
        self.nats.set(addr, nat);
        if let Some(&index) = self.addrs.get(&addr) {
            self.nodes[index].nat = NatState::new(nat);
        }
    }

    /// Gives the node at `addr`, present or future, an [`Uplink`]: every
    /// datagram it sends, to any destination, then waits in one queue
    /// before its link, and is dropped ([`DropCause::Uplink`]) if that
    /// queue is full. A node already bound there starts with an empty
    /// queue. Without one (the default) a node's datagrams enter their
    /// links the moment it sends them.
    ///
    /// # Panics
    ///
    /// If `uplink.rate_bps` is 0.
    pub fn set_uplink(&mut self, addr: SocketAddr, uplink: Uplink) {
        uplink.validate();
        self.uplinks.insert(addr, uplink);
        if let Some(&index) = self.addrs.get(&addr) {
            self.nodes[index].uplink = Some(UplinkQueue::new(uplink));
        }
    }

    /// Gives the node at `addr`, present or future, burst loss on its
    /// access link: one Gilbert-Elliott chain stepped by every datagram
    /// that its links deliver toward it, from any sender (see
    /// `netsim/downlink.rs` for why and how). It starts in the good state,
    /// and setting it again restarts it.
    ///
    /// # Panics
    ///
    /// If a probability is outside `0.0..=1.0`.
    pub fn set_downlink_burst(&mut self, addr: SocketAddr, burst: GilbertElliott) {
        self.downlinks.insert(addr, DownlinkBurst::new(burst));
    }

    /// The NAT the address `addr` is behind.
    pub fn nat(&self, addr: SocketAddr) -> Nat {
        self.nats.configured(addr)
    }

    /// The address the node bound to `addr` appears as toward `to`, if it is
    /// behind a NAT with a live flow or mapping there (made by sending
    /// there). For a cone NAT that is often `addr` itself.
    pub fn nat_mapping(&self, addr: SocketAddr, to: SocketAddr) -> Option<SocketAddr> {
        let &index = self.addrs.get(&addr)?;
        self.nodes[index].nat.mapping(addr, to, self.now)
    }

    /// Whether the cone NAT of the node bound to `addr` holds a live
    /// inbound-first entry from `from` to its external `port`.
    #[cfg(test)]
    pub(super) fn has_inbound_entry(&self, addr: SocketAddr, from: SocketAddr, port: u16) -> bool {
        self.addrs.get(&addr).is_some_and(|&index| {
            self.nodes[index]
                .nat
                .has_inbound_entry(from, port, self.now)
        })
    }

    /// Puts `tap` on the link from `from` to `to`, replacing any other. It
    /// sees every datagram entering the link, before loss and delay, and may
    /// rewrite it; returning false drops it ([`DropCause::Tap`]).
    ///
    /// [`DropCause::Tap`]: DropCause::Tap
    pub fn set_tap(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        tap: impl FnMut(&mut Vec<u8>) -> bool + 'static,
    ) {
        let index = self.link_index(from, to);
        self.links.all[index].tap = Some(Box::new(tap) as Tap);
    }

    /// Removes the tap from the link from `from` to `to`, if any.
    pub fn clear_tap(&mut self, from: SocketAddr, to: SocketAddr) {
        if let Some(&index) = self.links.index.get(&(from, to)) {
            self.links.all[index as usize].tap = None;
        }
    }

    /// Delivers `bytes` to `to` at `at` (or now, if `at` has passed) as if
    /// sent from `from`, which need not be any node's address: a spoofed or
    /// hand-made datagram. It bypasses links and taps, so it arrives exactly
    /// then.
    pub fn inject(&mut self, at: Time, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        let to_stats = self.addr_stats_index(to);
        count_sent(&mut self.addr_stats[to_stats], bytes.len());
        let kind = EventKind::Deliver {
            from,
            to,
            bytes: SharedBuf::new(bytes),
            link: None,
        };
        self.events.push(at.max(self.now), kind);
    }

    /// Processes every event due by `deadline`, in time order, then sets the
    /// clock to `deadline` (if it is not already later).
    ///
    /// # Panics
    ///
    /// If a node livelocks, asking for more than 10 000 timeouts at one
    /// instant.
    pub fn run_until(&mut self, deadline: Time) {
        while let Some(event) = self.events.pop_due(deadline) {
            self.now = self.now.max(event.at);
            match event.kind {
                EventKind::Deliver {
                    from,
                    to,
                    bytes,
                    link,
                } => self.deliver(from, to, &bytes, link),
                EventKind::Timeout { node, wanted } => self.fire_timeout(node, wanted),
            }
        }
        self.now = self.now.max(deadline);
    }

    /// [`run_until`](Self::run_until) `duration` from now.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// When the next queued event is due (it may be a stale timeout).
    pub fn next_event_time(&self) -> Option<Time> {
        self.events.next_time()
    }

    /// Events queued, stale timeouts included.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// The hash of every delivery, undeliverable arrival and drop so far:
    /// equal for two runs exactly when they moved the same datagrams at the
    /// same times (up to hash collisions).
    pub fn trace_hash(&self) -> [u8; 32] {
        self.trace.hash()
    }

    /// Network-wide counters.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// What the node behind `id` sent and received.
    pub fn node_stats<T>(&self, id: NodeId<T>) -> &NodeStats {
        &self.slot(id.index()).stats
    }

    /// What happened on the link from `from` to `to` (all zero if unused).
    pub fn link_stats(&self, from: SocketAddr, to: SocketAddr) -> LinkStats {
        self.links
            .index
            .get(&(from, to))
            .map(|&index| self.links.all[index as usize].stats)
            .unwrap_or_default()
    }

    /// Every link used so far with its counters, in address order.
    pub fn links(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr, &LinkStats)> {
        let mut ends: Vec<_> = self.links.index.iter().collect();
        ends.sort_unstable();
        ends.into_iter()
            .map(|(&(from, to), &index)| (from, to, &self.links.all[index as usize].stats))
    }

    /// Traffic toward `addr`, bound to a node or not (all zero if none).
    pub fn addr_stats(&self, addr: SocketAddr) -> AddrStats {
        self.addr_index
            .get(&addr)
            .map(|&index| self.addr_stats[index as usize])
            .unwrap_or_default()
    }

    fn slot(&self, index: usize) -> &Slot {
        self.nodes
            .get(index)
            .expect("netsim: NodeId from another network")
    }

    /// The index of `addr`'s traffic counters, made on first use.
    fn addr_stats_index(&mut self, addr: SocketAddr) -> usize {
        addr_stats_index(&mut self.addr_stats, &mut self.addr_index, addr)
    }

    /// The index of the link from `from` to `to`, created on first use,
    /// its config brought up to date with the rules.
    ///
    /// Rules are looked up by bound addresses: a link from or to a
    /// symmetric NAT's mapping gets the config of the node behind it.
    fn link_index(&mut self, from: SocketAddr, to: SocketAddr) -> usize {
        let generation = self.rules.generation();
        let resolve = || self.rules.resolve(self.nats.real(from), self.nats.real(to));
        let index = match self.links.index.get(&(from, to)) {
            Some(&index) => index as usize,
            None => {
                let to_stats = addr_stats_index(&mut self.addr_stats, &mut self.addr_index, to);
                let index = self.links.all.len();
                self.links
                    .all
                    .push(Link::new(to_stats, resolve(), generation));
                let key = u32::try_from(index).expect("netsim: fewer than 2^32 links");
                self.links.index.insert((from, to), key);
                index
            }
        };
        let link = &mut self.links.all[index];
        if link.generation != generation {
            link.config = resolve();
            link.generation = generation;
        }
        index
    }

    fn deliver(&mut self, from: SocketAddr, to: SocketAddr, bytes: &SharedBuf, link: Option<u32>) {
        let now = self.now;
        let len = bytes.len() as u64;
        self.stats.events += 1;
        let to_stats = match link {
            Some(index) => {
                let link = &mut self.links.all[index as usize];
                link.stats.arrived_datagrams += 1;
                link.stats.arrived_bytes += len;
                link.to_stats
            }
            None => self.addr_stats_index(to),
        };
        let addr_stats = &mut self.addr_stats[to_stats];
        // A bound address, else perhaps a symmetric NAT's mapping: traffic
        // to bound addresses never looks at the NAT maps.
        let found = match self.addrs.get(&to) {
            Some(&index) => Some((index, false)),
            None => self
                .nats
                .node_behind(to)
                .filter(|&index| self.nodes[index].online)
                .map(|index| (index, true)),
        };
        let Some((index, mapped)) = found else {
            addr_stats.undeliverable_datagrams += 1;
            addr_stats.undeliverable_bytes += len;
            self.stats.undeliverable += 1;
            self.trace.undeliverable(now, from, to, bytes.len());
            return;
        };
        let slot = &mut self.nodes[index];
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
        self.after_handle(index);
    }

    fn fire_timeout(&mut self, index: usize, wanted: Time) {
        let now = self.now;
        let slot = &mut self.nodes[index];
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
        self.after_handle(index);
    }

    /// The str0m rule: after every call into a node, drain its transmits,
    /// then read its timeout.
    fn after_handle(&mut self, index: usize) {
        let now = self.now;
        let mut outbox = std::mem::take(&mut self.outbox);
        let slot = &mut self.nodes[index];
        while let Some(outgoing) = slot.node.poll_transmit(now) {
            slot.stats.sent_datagrams += 1;
            slot.stats.sent_bytes += outgoing.bytes.len() as u64;
            outbox.push(outgoing);
        }
        let wanted = slot.node.poll_timeout();
        if wanted != slot.wanted {
            slot.wanted = wanted;
            if let Some(wanted) = wanted {
                let kind = EventKind::Timeout {
                    node: index,
                    wanted,
                };
                self.events.push(wanted.max(now), kind);
            }
        }
        for Outgoing { to, bytes, ttl } in outbox.drain(..) {
            let slot = &self.nodes[index];
            let behind_nat = !slot.nat.is_open();
            let reach = Reach::of(ttl, behind_nat);
            let from = if behind_nat && reach != Reach::OwnNat {
                self.translate(index, to)
            } else {
                slot.addr
            };
            self.send(index, from, to, bytes, reach == Reach::FarSide);
        }
        self.outbox = outbox;
    }

    /// The source of a datagram from the node `index`, behind a NAT, to
    /// `to`, after that NAT.
    fn translate(&mut self, index: usize, to: SocketAddr) -> SocketAddr {
        let slot = &mut self.nodes[index];
        let addrs = &self.addrs;
        self.nats
            .outbound(&mut slot.nat, index, slot.addr, to, self.now, |addr| {
                addrs.contains_key(&addr)
            })
    }

    /// Puts a datagram from the node `index` on the link from `from` to
    /// `to` at the current time; one that will not `reach` the far side
    /// (its TTL) dies there, after any tap. Between the tap and the link's
    /// fate it waits in the node's uplink, if any, and enters the link
    /// when it leaves that. A datagram whose TTL dies on the way is not
    /// charged to the uplink: such are a few small punches.
    fn send(
        &mut self,
        index: usize,
        from: SocketAddr,
        to: SocketAddr,
        mut bytes: SharedBuf,
        reach: bool,
    ) {
        let now = self.now;
        let link_index = self.link_index(from, to);
        let link = &mut self.links.all[link_index];
        count_sent(&mut self.addr_stats[link.to_stats], bytes.len());
        link.stats.sent_datagrams += 1;
        link.stats.sent_bytes += bytes.len() as u64;
        // The sender may still hold the buffer (a window's chunk): a tap
        // rewrites a copy of it.
        let tapped_out = link
            .tap
            .as_mut()
            .is_some_and(|tap| !tap(Arc::make_mut(&mut bytes)));
        let fate = if tapped_out {
            Fate::Dropped(DropCause::Tap)
        } else if !reach {
            Fate::Dropped(DropCause::TtlExpired)
        } else {
            let departure = match &mut self.nodes[index].uplink {
                None => Some(now),
                Some(uplink) => uplink.enqueue(now, bytes.len()),
            };
            match departure {
                Some(departure) => link.transmit(departure, bytes.len(), &mut self.rng),
                None => Fate::Dropped(DropCause::Uplink),
            }
        };
        let fate = match fate {
            Fate::Arrives { .. } if !self.downlinks.is_empty() => {
                let lost = self
                    .downlinks
                    .get_mut(&self.nats.real(to))
                    .is_some_and(|downlink| downlink.step(&mut self.rng));
                if lost {
                    Fate::Dropped(DropCause::Burst)
                } else {
                    fate
                }
            }
            fate => fate,
        };
        match fate {
            Fate::Dropped(cause) => {
                if cause == DropCause::Uplink {
                    self.nodes[index].stats.uplink_dropped += 1;
                }
                link.stats.count_drop(cause);
                self.stats.dropped += 1;
                self.trace.dropped(now, from, to, bytes.len(), cause);
            }
            Fate::Arrives { at, duplicate_at } => {
                let over = Some(link_index as u32);
                let deliver = |bytes| EventKind::Deliver {
                    from,
                    to,
                    bytes,
                    link: over,
                };
                match duplicate_at {
                    None => self.events.push(at, deliver(bytes)),
                    Some(duplicate_at) => {
                        link.stats.duplicated += 1;
                        self.events.push(at, deliver(SharedBuf::clone(&bytes)));
                        self.events.push(duplicate_at, deliver(bytes));
                    }
                }
            }
        }
    }
}

/// The links used so far, in the order of first use, and where each is.
#[derive(Default)]
struct Links {
    all: Vec<Link>,
    index: Lookup<(SocketAddr, SocketAddr), u32>,
}

fn count_sent(stats: &mut AddrStats, len: usize) {
    stats.sent_datagrams += 1;
    stats.sent_bytes += len as u64;
}

/// A free function so that a caller holding another field can use it.
fn addr_stats_index(
    stats: &mut Vec<AddrStats>,
    index: &mut Lookup<SocketAddr, u32>,
    addr: SocketAddr,
) -> usize {
    let next = stats.len();
    let at = *index
        .entry(addr)
        .or_insert_with(|| u32::try_from(next).expect("netsim: fewer than 2^32 addresses"));
    if at as usize == next {
        stats.push(AddrStats::default());
    }
    at as usize
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("links", &self.links.all.len())
            .field("pending_events", &self.events.len())
            .field("stats", &self.stats)
            .field("trace", &self.trace)
            .finish_non_exhaustive()
    }
}
