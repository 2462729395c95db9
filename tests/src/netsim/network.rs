//! The network: nodes bound to addresses, directed links between them, and
//! the run loop that moves datagrams and fires timeouts in time order.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shoal_proto::Time;
use shoal_proto::transmit::SharedBuf;

use super::Lookup;
use super::downlink::DownlinkBurst;
use super::event::EventKind;
#[cfg(doc)]
use super::link::DropCause;
use super::link::{LinkConfig, Tap};
use super::link_rules::LinkRules;
use super::loss::GilbertElliott;
use super::nat::{Nat, NatState, Nats};
use super::node::{Node, NodeId};
use super::shard::{INJECTOR, LinkRef, NodeLoc, Shard, Shared, Slot, order};
use super::stats::{AddrStats, LinkStats, NetStats, NodeStats};
use super::trace::Trace;
use super::uplink::{Uplink, UplinkQueue};

/// A simulated network. See the [module docs](super) for what it models.
pub struct Network {
    now: Time,
    seed: u64,
    shared: Shared,
    shards: Vec<Shard>,
    /// Uplinks set per bound address, present or future.
    uplinks: Lookup<SocketAddr, Uplink>,
    /// Burst chains of nodes' downlinks, by bound address, present or
    /// future.
    downlinks: Lookup<SocketAddr, GilbertElliott>,
    /// Datagrams injected so far: the order among them.
    injected: u64,
    /// Run strictly in time order, never in windows (one thread only): for
    /// tests that windows change nothing.
    time_order: bool,
}

impl Network {
    /// Where every network's clock starts: late 2023 in microseconds since
    /// the epoch, so timestamps look like wall-clock time.
    pub const START: Time = Time::from_micros(1_700_000_000_000_000);

    /// An empty network at [`Network::START`], its randomness fixed by
    /// `seed`, run on one thread.
    pub fn new(seed: u64) -> Self {
        Self::with_threads(seed, 1)
    }

    /// An empty network that runs on `threads` threads (see the
    /// [module docs](super#threads)): the same run as on one, event for
    /// event, as long as every link's latency less its jitter is more than
    /// zero.
    ///
    /// # Panics
    ///
    /// If `threads` is 0 or more than 64.
    pub fn with_threads(seed: u64, threads: usize) -> Self {
        assert!(
            (1..=64).contains(&threads),
            "netsim: 1 to 64 threads, not {threads}"
        );
        Self {
            now: Self::START,
            seed,
            shared: Shared {
                addrs: Lookup::default(),
                nodes: Vec::new(),
                rules: LinkRules::default(),
                nats: Nats::default(),
                shards: threads,
            },
            shards: (0..threads).map(Shard::new).collect(),
            uplinks: Lookup::default(),
            downlinks: Lookup::default(),
            injected: 0,
            time_order: false,
        }
    }

    /// How many threads the network runs on.
    pub fn threads(&self) -> usize {
        self.shards.len()
    }

    /// Runs strictly in time order rather than in windows node by node:
    /// the same run, slower; for tests that say so.
    #[cfg(test)]
    pub(super) fn set_time_order(&mut self, on: bool) {
        self.time_order = on;
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
            !self.shared.nats.is_mapped(addr),
            "netsim: address {addr} is a NAT mapping"
        );
        let index = self.shared.nodes.len();
        let previous = self.shared.addrs.insert(addr, index);
        assert!(
            previous.is_none(),
            "netsim: address {addr} is already bound"
        );
        let shard = self.shared.shard_of(addr);
        let local = self.shards[shard].nodes.len();
        self.shared.nodes.push(NodeLoc { shard, local });
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(index as u64);
        self.shards[shard].nodes.push(Slot {
            addr,
            node: Box::new(node),
            index,
            online: true,
            wanted: None,
            stats: NodeStats::default(),
            nat: NatState::new(self.shared.nats.configured(addr)),
            spin: (Time::ZERO, 0),
            uplink: self.uplinks.get(&addr).copied().map(UplinkQueue::new),
            downlink: self.downlinks.get(&addr).copied().map(DownlinkBurst::new),
            rng,
            caused: 0,
            link_cache: Lookup::default(),
            own_stats: None,
        });
        self.after_handle(NodeLoc { shard, local });
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
        let loc = self.loc(id.index());
        let slot = &mut self.shards[loc.shard].nodes[loc.local];
        let node: &mut dyn Any = &mut *slot.node;
        let node = node
            .downcast_mut()
            .expect("netsim: NodeId from another network");
        let result = f(node, now);
        if slot.online {
            self.after_handle(loc);
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
        let slot = self.slot_mut(id.index());
        if !slot.online {
            return;
        }
        slot.online = false;
        slot.wanted = None;
        let addr = slot.addr;
        self.shared.addrs.remove(&addr);
    }

    /// Whether the node is still on the network.
    pub fn is_connected<T>(&self, id: NodeId<T>) -> bool {
        self.slot(id.index()).online
    }

    /// Number of nodes ever added.
    pub fn node_count(&self) -> usize {
        self.shared.nodes.len()
    }

    /// The config of every link without a more specific one.
    ///
    /// # Panics
    ///
    /// If a probability is outside `0.0..=1.0` or `rate_bps` is `Some(0)`;
    /// so do the other `set_*` methods.
    pub fn set_default_link(&mut self, config: LinkConfig) {
        self.shared.rules.set_default(config);
    }

    /// The config of the link from `from` to `to`; beats every other rule.
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, config: LinkConfig) {
        self.shared.rules.set_pair(from, to, config);
    }

    /// The config of every link leaving `from` (an uplink), present and
    /// future. Between this and [`set_links_to`](Self::set_links_to) for
    /// the same link, the one called later wins.
    pub fn set_links_from(&mut self, from: SocketAddr, config: LinkConfig) {
        self.shared.rules.set_from(from, config);
    }

    /// The config of every link reaching `to` (a downlink), present and
    /// future.
    pub fn set_links_to(&mut self, to: SocketAddr, config: LinkConfig) {
        self.shared.rules.set_to(to, config);
    }

    /// Puts the node at `addr`, present or future, behind `nat` (see the
    /// [module docs](super#nat)); every address starts [`Nat::Open`]. A node
    /// already bound there loses its holes and mappings, as if its NAT
    /// rebooted; its old mapped addresses stay reserved, and take nothing
    /// until the new NAT hands them out again.
    pub fn set_nat(&mut self, addr: SocketAddr, nat: Nat) {
        self.shared.nats.set(addr, nat);
        if let Some(slot) = self.bound_mut(addr) {
            slot.nat = NatState::new(nat);
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
        if let Some(slot) = self.bound_mut(addr) {
            slot.uplink = Some(UplinkQueue::new(uplink));
        }
    }

    /// Gives the node at `addr`, present or future, burst loss on its
    /// access link: one Gilbert-Elliott chain stepped by every datagram
    /// that its links deliver toward it, from any sender, as it arrives
    /// (see `netsim/downlink.rs` for why and how). It starts in the good
    /// state, and setting it again restarts it.
    ///
    /// # Panics
    ///
    /// If a probability is outside `0.0..=1.0`.
    pub fn set_downlink_burst(&mut self, addr: SocketAddr, burst: GilbertElliott) {
        let chain = DownlinkBurst::new(burst);
        self.downlinks.insert(addr, burst);
        if let Some(slot) = self.bound_mut(addr) {
            slot.downlink = Some(chain);
        }
    }

    /// The NAT the address `addr` is behind.
    pub fn nat(&self, addr: SocketAddr) -> Nat {
        self.shared.nats.configured(addr)
    }

    /// The address the node bound to `addr` appears as toward `to`, if it is
    /// behind a NAT with a live flow or mapping there (made by sending
    /// there). For a cone NAT that is often `addr` itself.
    pub fn nat_mapping(&self, addr: SocketAddr, to: SocketAddr) -> Option<SocketAddr> {
        self.bound(addr)?.nat.mapping(addr, to, self.now)
    }

    /// Whether the cone NAT of the node bound to `addr` holds a live
    /// inbound-first entry from `from` to its external `port`.
    #[cfg(test)]
    pub(super) fn has_inbound_entry(&self, addr: SocketAddr, from: SocketAddr, port: u16) -> bool {
        self.bound(addr)
            .is_some_and(|slot| slot.nat.has_inbound_entry(from, port, self.now))
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
        tap: impl FnMut(&mut Vec<u8>) -> bool + Send + 'static,
    ) {
        let shard = &mut self.shards[self.shared.shard_of(from)];
        let index = shard.link_index(&self.shared, from, to);
        shard.links.all[index].tap = Some(Box::new(tap) as Tap);
    }

    /// Removes the tap from the link from `from` to `to`, if any.
    pub fn clear_tap(&mut self, from: SocketAddr, to: SocketAddr) {
        let shard = &mut self.shards[self.shared.shard_of(from)];
        if let Some(&index) = shard.links.index.get(&(from, to)) {
            shard.links.all[index as usize].tap = None;
        }
    }

    /// Delivers `bytes` to `to` at `at` (or now, if `at` has passed) as if
    /// sent from `from`, which need not be any node's address: a spoofed or
    /// hand-made datagram. It bypasses links and taps, so it arrives exactly
    /// then.
    pub fn inject(&mut self, at: Time, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        let shard = &mut self.shards[self.shared.shard_of(to)];
        let to_stats = shard.addr_stats_index(to);
        shard.addr_stats[to_stats].sent_datagrams += 1;
        shard.addr_stats[to_stats].sent_bytes += bytes.len() as u64;
        let kind = EventKind::Deliver {
            from,
            to,
            bytes: SharedBuf::new(bytes),
            link: None,
        };
        shard
            .events
            .push(at.max(self.now), order(INJECTOR, self.injected), kind);
        self.injected += 1;
    }

    /// Processes every event due by `deadline`, each node's in time order
    /// (the same run as strict time order), then sets the clock to
    /// `deadline` (if it is not already later).
    ///
    /// Whenever every link's least delay (its latency less its jitter) is
    /// more than zero, the shards run in windows that long, node by node
    /// (`netsim/window.rs`): what one sends in a window arrives after it.
    /// On more than one thread the shards run their windows at once.
    ///
    /// # Panics
    ///
    /// If a node livelocks, asking for more than 10 000 timeouts at one
    /// instant; on more than one thread, if a link's latency less its
    /// jitter is zero.
    pub fn run_until(&mut self, deadline: Time) {
        let lookahead = self.shared.rules.least_delay();
        if lookahead == Duration::ZERO || self.time_order {
            assert!(
                self.shards.len() == 1,
                "netsim: threads need every link's latency to exceed its jitter"
            );
            self.shards[0].run_until(&self.shared, deadline);
        } else {
            while let Some(start) = self.next_event_time().filter(|&at| at <= deadline) {
                let upto = (start + lookahead - Duration::from_micros(1)).min(deadline);
                let shared = &self.shared;
                let (first, rest) = self.shards.split_first_mut().expect("one shard or more");
                if rest.is_empty() {
                    first.run_window(shared, upto);
                } else {
                    std::thread::scope(|scope| {
                        for shard in rest {
                            scope.spawn(move || shard.run_window(shared, upto));
                        }
                        first.run_window(shared, upto);
                    });
                    self.post_mail();
                }
            }
        }
        self.now = self.now.max(deadline);
        for shard in &mut self.shards {
            shard.now = self.now;
        }
    }

    /// [`run_until`](Self::run_until) `duration` from now.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// When the next queued event is due (it may be a stale timeout).
    pub fn next_event_time(&self) -> Option<Time> {
        self.shards
            .iter()
            .filter_map(|s| s.events.next_time())
            .min()
    }

    /// Events queued, stale timeouts included.
    pub fn pending_events(&self) -> usize {
        self.shards.iter().map(|s| s.events.len()).sum()
    }

    /// The hash of every delivery, undeliverable arrival and drop so far:
    /// equal for two runs exactly when they moved the same datagrams at the
    /// same times (up to hash collisions), on any number of threads.
    pub fn trace_hash(&self) -> [u8; 32] {
        let mut trace = Trace::new();
        for shard in &self.shards {
            trace.absorb(&shard.trace);
        }
        trace.hash()
    }

    /// Network-wide counters.
    pub fn stats(&self) -> NetStats {
        let mut total = NetStats::default();
        for shard in &self.shards {
            total.add(&shard.stats);
        }
        total
    }

    /// What the node behind `id` sent and received.
    pub fn node_stats<T>(&self, id: NodeId<T>) -> &NodeStats {
        &self.slot(id.index()).stats
    }

    /// What happened on the link from `from` to `to` (all zero if unused).
    pub fn link_stats(&self, from: SocketAddr, to: SocketAddr) -> LinkStats {
        let sender = self.shared.shard_of(from);
        let shard = &self.shards[sender];
        let Some(&index) = shard.links.index.get(&(from, to)) else {
            return LinkStats::default();
        };
        self.link_stats_at(sender, index as usize)
    }

    /// Every link used so far with its counters, in address order.
    pub fn links(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr, LinkStats)> {
        let mut ends: Vec<_> = self
            .shards
            .iter()
            .enumerate()
            .flat_map(|(sender, shard)| {
                shard
                    .links
                    .index
                    .iter()
                    .map(move |(&ends, &index)| (ends, sender, index as usize))
            })
            .collect();
        ends.sort_unstable();
        ends.into_iter()
            .map(|((from, to), sender, index)| (from, to, self.link_stats_at(sender, index)))
    }

    /// Traffic toward `addr`, bound to a node or not (all zero if none).
    pub fn addr_stats(&self, addr: SocketAddr) -> AddrStats {
        let mut total = AddrStats::default();
        for shard in &self.shards {
            if let Some(&index) = shard.addr_index.get(&addr) {
                total.add(&shard.addr_stats[index as usize]);
            }
        }
        total
    }

    /// Both halves of the link at `index` of `sender`'s shard.
    fn link_stats_at(&self, sender: usize, index: usize) -> LinkStats {
        let mut stats = self.shards[sender].links.all[index].stats;
        let link = LinkRef::new(sender, index);
        for shard in &self.shards {
            shard.arrivals.get(link).add_to(&mut stats);
        }
        stats
    }

    fn loc(&self, index: usize) -> NodeLoc {
        *self
            .shared
            .nodes
            .get(index)
            .expect("netsim: NodeId from another network")
    }

    fn slot(&self, index: usize) -> &Slot {
        let loc = self.loc(index);
        &self.shards[loc.shard].nodes[loc.local]
    }

    fn slot_mut(&mut self, index: usize) -> &mut Slot {
        let loc = self.loc(index);
        &mut self.shards[loc.shard].nodes[loc.local]
    }

    /// The node bound to `addr`, if any.
    fn bound(&self, addr: SocketAddr) -> Option<&Slot> {
        let &index = self.shared.addrs.get(&addr)?;
        Some(self.slot(index))
    }

    fn bound_mut(&mut self, addr: SocketAddr) -> Option<&mut Slot> {
        let &index = self.shared.addrs.get(&addr)?;
        Some(self.slot_mut(index))
    }

    /// After a call into a node between runs: what it sent goes out now.
    fn after_handle(&mut self, loc: NodeLoc) {
        let shard = &mut self.shards[loc.shard];
        shard.now = self.now;
        shard.after_handle(&self.shared, loc.local);
        self.post_mail();
    }

    /// Queues every shard's deliveries for other shards where they go.
    fn post_mail(&mut self) {
        for from in 0..self.shards.len() {
            let mut mail = std::mem::take(&mut self.shards[from].mail);
            for m in mail.drain(..) {
                self.shards[m.shard].events.push(m.at, m.order, m.kind);
            }
            self.shards[from].mail = mail;
        }
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("now", &self.now)
            .field("threads", &self.shards.len())
            .field("nodes", &self.shared.nodes.len())
            .field("pending_events", &self.pending_events())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
