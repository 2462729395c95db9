//! The swarm scenario: one publisher, a tree of relays, and many ordinary
//! peers with mixed upload capacity, churning.

mod debug;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shoal_proto::integrity::VerifyMemo;
use shoal_proto::peer::PeerConfig;
use shoal_proto::publisher::PublisherConfig;
use shoal_proto::{StreamId, Time};

use super::peer_node::{LATENCY_BUCKET, LATENCY_BUCKETS, PeerNode};
use super::swarm_net::{self, AccessUplink};
use super::swarm_relays;
use super::{PublisherNode, RelayNode, TestStream, addr, relay_config, test_key};
use crate::netsim::{LinkConfig, Nat, Network, NodeId, Uplink};

/// Settings of a swarm run.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    /// Seed of everything random.
    pub seed: u64,
    /// Peers present at any time.
    pub peers: u32,
    /// Relays (the first takes the stream from the publisher, the others
    /// from an earlier relay: a tree; see [`super::swarm_relays`], which
    /// also sizes each relay's `max_subscribers` for `peers`).
    pub relays: u32,
    /// Length of the stream, seconds.
    pub seconds: f64,
    /// Stream bitrate.
    pub bitrate_bps: u64,
    /// Clubs: 6 (`shoal publish --clubs 6`), not the publisher's default
    /// 8. Each club is a tree of peers, and a peer plays a chunk once the
    /// chunks of every club before it have come, so its latency is that of
    /// its slowest club's path; fewer clubs give each club more members
    /// (more forwarders, shallower trees) and show a lost chunk sooner (the
    /// club's next chunk comes 130 ms later rather than 170). In 10,000
    /// peers x 20 s (seeds 1 and 2): p99 1170 -> 1070 and 1120 -> 1040 ms,
    /// useful offload 89.7 -> 89.0% and 89.6 -> 88.7% (the join's first
    /// 10 s; after it 99.3 -> 99.2% and 99.5 -> 99.2%). 5 clubs: p99
    /// 1020 ms, offload 88.1%; 4: 980 ms, 86.8% (more chunks missing at a
    /// neighbour serving another club too, so more NACKs to the relay).
    pub clubs: u8,
    /// One-way latency of every link.
    pub latency: Duration,
    /// Uniform jitter on every link: each datagram's delay moves by up to
    /// this much either way. 5 ms (a 10 ms span) is what a home access
    /// link with light cross traffic shows; drawn per datagram, it also
    /// reorders datagrams sent closer together than that, which a real
    /// path's FIFO queues mostly do not: pessimistic on order.
    pub jitter: Duration,
    /// Mean loss on every link, random and bursts together.
    pub loss: f64,
    /// Share of `loss` toward a peer that comes in Gilbert-Elliott bursts
    /// on the peer's access link rather than independently: 0.5, since
    /// wireless and congested access links lose in runs as often as
    /// alone. The arithmetic that keeps the mean at `loss`, and why the
    /// chain is the peer's and not each link's, are in
    /// [`super::swarm_net`].
    pub burst_share: f64,
    /// Mean length of a burst, in datagrams arriving at the peer: 3, some
    /// 60 ms of a peer's traffic at the stream's rate.
    pub burst_len: f64,
    /// Share of peers that upload nothing.
    pub no_upload: f64,
    /// The others upload between 1 and this many times the rate the stream
    /// really carries ([`TestStream::bitrate_bps`]).
    pub max_upload: f64,
    /// Share of peers leaving (silently) and as many joining, per minute.
    pub churn_per_minute: f64,
    /// Share of peers behind a port-restricted cone NAT: 0.3 by default,
    /// home routers that map ports consistently (most of them), less the
    /// peers with a public address or a port forwarded by UPnP.
    pub cone_nat: f64,
    /// Share of peers behind a symmetric NAT: 0.05 by default, carrier-
    /// grade NATs and strict corporate firewalls, which only open peers
    /// can reach.
    pub symmetric_nat: f64,
    /// Each peer's access uplink (a home router's upstream), shared by
    /// everything it sends; `None` sends without one, every datagram
    /// leaving at once. The default ([`swarm_net::PEER_UPLINK`]) runs at
    /// 1.25 times the peer's upload limit, since a user offers less than
    /// the line carries, and at least 1 Mbit/s, so that the control
    /// traffic of a pure viewer fits; it buffers 200 ms at that rate, a
    /// home router's queue, and drops what arrives when that is full.
    pub peer_uplink: Option<AccessUplink>,
    /// Each relay's uplink; `None` sends instantly. The default
    /// ([`swarm_net::RELAY_UPLINK`]): 1.1 µs per datagram, one core's
    /// cost as the relay benchmark measures it (about 0.9 M datagrams/s,
    /// BENCHMARKS.md), at 10 Gbit/s, behind what the relay holds before it
    /// drops: the kernel's 8 MiB send buffer it asks for and the 65,536
    /// trains its backends queue, a data datagram each (about 96 MB, some
    /// 150 ms to drain at 10 Gbit/s and 1.1 µs each). Until the tenth
    /// session of issue 20 the queue was the send buffer alone (4 MiB),
    /// and a join ramp's fan-out (a block's chunks to thousands of
    /// subscribers at one instant) overflowed it: a stall ratio of 1.5% in
    /// the first 10 s at 10,000 peers that the relay itself would not have
    /// caused.
    pub relay_uplink: Option<Uplink>,
    /// Peers join over this long at the start.
    pub ramp: Duration,
    /// Peers keep what they play (for exactness checks; memory!).
    pub keep_output: bool,
    /// Chunks each peer's window holds (memory: about 1.4 kB each).
    pub peer_window: usize,
    /// Peers and relays share one memo of successful checks, so that a
    /// manifest's signature is checked and a chunk hashed once rather
    /// than once per peer; it changes no outcome (see [`VerifyMemo`]).
    /// `SHOAL_SWARM_NO_MEMO=1` turns it off in `shoal-swarm`.
    pub verify_memo: bool,
    /// Threads the network runs on: the same run on any number
    /// ([`Network::with_threads`]); 1 by default, since tests run side by
    /// side already.
    pub threads: usize,
}

/// Signatures and chunks the swarm's memo keeps (each): at 1 Mbit/s about
/// 100 s of blocks and 20 s of chunks, some 4 MB in all. Older ones are
/// checked again, which costs time, not truth.
const MEMO_ENTRIES: usize = 2048;

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            peers: 10_000,
            relays: swarm_relays::relays_for(10_000),
            seconds: 60.0,
            bitrate_bps: 1_000_000,
            clubs: 6,
            latency: Duration::from_millis(50),
            jitter: Duration::from_millis(5),
            loss: 0.02,
            burst_share: 0.5,
            burst_len: 3.0,
            no_upload: 0.3,
            max_upload: 5.0,
            churn_per_minute: 0.10,
            cone_nat: 0.3,
            symmetric_nat: 0.05,
            peer_uplink: Some(swarm_net::PEER_UPLINK),
            relay_uplink: Some(swarm_net::RELAY_UPLINK),
            ramp: Duration::from_secs(3),
            keep_output: false,
            peer_window: 256,
            verify_memo: true,
            threads: 1,
        }
    }
}

impl SwarmConfig {
    /// The defaults for a swarm of `peers`, with as many relays as a
    /// deployment would give it ([`swarm_relays::relays_for`]).
    pub fn for_peers(peers: u32) -> Self {
        Self {
            peers,
            relays: swarm_relays::relays_for(peers),
            ..Self::default()
        }
    }
}

/// What a swarm run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmReport {
    /// The settings.
    pub peers: u32,
    /// Relays.
    pub relays: u32,
    /// Bytes sent by the publisher.
    pub publisher_bytes: u64,
    /// Bytes sent by all relays.
    pub relay_bytes: u64,
    /// Bytes sent by all peers.
    pub peer_bytes: u64,
    /// Chunks played, over all peers (after the warm-up).
    pub played: u64,
    /// Chunks given up as gaps.
    pub lost: u64,
    /// Latency at output: (percentile, latency).
    pub latency: Vec<(f64, Duration)>,
    /// Neighbours lost to silence: how long their club stopped flowing,
    /// median, p90, max, count.
    pub recovery: (Duration, Duration, Duration, usize),
    /// Of those, how many a second neighbour covered without a break.
    pub recovery_covered: usize,
    /// Peers that left and joined.
    pub churned: u32,
    /// Relay bytes over what the relays would send if they served every
    /// peer directly: the publisher's output rate times the time each peer
    /// watched.
    pub relay_vs_direct: f64,
    /// Peer-time spent watching.
    pub watched: Duration,
    /// New stream payload (DATA and PARITY datagrams, first copies)
    /// peers received from other peers, bytes.
    pub new_from_peers: u64,
    /// New stream payload peers received from relays, bytes.
    pub new_from_relays: u64,
    /// Stream payload peers received again (exact copies of what they
    /// held), bytes.
    pub duplicates: u64,
    /// Duplicate stream payload over new stream payload received by
    /// peers ([`SwarmReport::duplicates`] over the two `new_from_*`).
    pub duplicate_ratio: f64,
    /// Useful offload: of the new stream payload peers received, the share
    /// that came from other peers. MANIFESTs and DESCRIPTORs (which only
    /// relays send, and which are small), control messages and duplicates
    /// are left out.
    pub useful_offload: f64,
    /// What the relays upload (to peers and to each other), kbit/s, over
    /// the mean number of peers watching: all relay bytes over the
    /// peer-seconds watched.
    pub relay_kbps_per_peer: f64,
    /// Peers' neighbours dropped for silence / bad data / refusal /
    /// handshake timeout.
    pub dropped: (u64, u64, u64, u64),
    /// Peers' neighbours dropped for bringing no new data while the
    /// stream flowed ([`shoal_proto::peer::STARVED`]).
    pub starved: u64,
    /// What the relays sent, bytes: DATA, PARITY, MANIFEST and DESCRIPTOR,
    /// everything else (control).
    pub relay_by_kind: [u64; 4],
    /// NACKed chunks and symbols the relays sent again.
    pub relay_nack_served: u64,
    /// Per whole second of the run from the stream's start: new stream
    /// payload peers received from peers and from relays in that second,
    /// bytes (where in the run the relays' share goes: joins, churn).
    pub timeline: Vec<(u64, u64)>,
}

impl SwarmReport {
    /// The stall ratio: chunks that missed their deadline over chunks due.
    pub fn stall_ratio(&self) -> f64 {
        self.lost as f64 / (self.played + self.lost).max(1) as f64
    }
}

fn share(part: u64, total: u64) -> f64 {
    100.0 * part as f64 / total.max(1) as f64
}

impl fmt::Display for SwarmReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.publisher_bytes + self.relay_bytes + self.peer_bytes;
        writeln!(
            f,
            "swarm: {} peers, {} relays, churned {}",
            self.peers, self.relays, self.churned
        )?;
        writeln!(f, "| uploader | bytes | share |")?;
        writeln!(f, "|---|---|---|")?;
        for (name, b) in [
            ("publisher", self.publisher_bytes),
            ("relays", self.relay_bytes),
            ("peers", self.peer_bytes),
        ] {
            writeln!(f, "| {name} | {b} | {:.1}% |", share(b, total))?;
        }
        writeln!(
            f,
            "relays sent {:.1}% of what serving every peer directly takes ({:.0} peer-seconds watched)",
            100.0 * self.relay_vs_direct,
            self.watched.as_secs_f64()
        )?;
        write!(f, "latency at output:")?;
        for (p, d) in &self.latency {
            write!(f, " p{p}={}ms", d.as_millis())?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "played {} chunks, lost {}: stall ratio {:.4}%",
            self.played,
            self.lost,
            100.0 * self.stall_ratio()
        )?;
        writeln!(
            f,
            "useful offload: {:.1}% of new stream bytes from peers; relays upload {:.1} kbit/s per watching peer",
            100.0 * self.useful_offload,
            self.relay_kbps_per_peer
        )?;
        write!(f, "useful offload by 10 s:")?;
        for tens in self.timeline.chunks(10) {
            let (p, r) = tens
                .iter()
                .fold((0, 0), |(p, r), &(dp, dr)| (p + dp, r + dr));
            write!(f, " {:.1}%", share(p, p + r))?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "duplicates: {:.1}% of new stream bytes",
            100.0 * self.duplicate_ratio
        )?;
        let [data, parity, signed, control] = self.relay_by_kind;
        writeln!(
            f,
            "relays sent: data {:.1}%, parity {:.1}%, manifests and descriptors {:.1}%, control {:.1}%; {} NACKed items sent again",
            share(data, self.relay_bytes),
            share(parity, self.relay_bytes),
            share(signed, self.relay_bytes),
            share(control, self.relay_bytes),
            self.relay_nack_served
        )?;
        let (p50, p90, max, n) = self.recovery;
        writeln!(
            f,
            "neighbours lost to silence: {n}, {} covered by a second neighbour; club flow stopped p50 {}ms p90 {}ms max {}ms",
            self.recovery_covered,
            p50.as_millis(),
            p90.as_millis(),
            max.as_millis()
        )?;
        let (silent, bad, refused, timeout) = self.dropped;
        writeln!(
            f,
            "neighbours dropped: {silent} silent, {} starved, {bad} bad, {refused} refused, {timeout} handshake timeouts",
            self.starved
        )
    }
}

/// A swarm, built and ready to run.
#[derive(Debug)]
pub struct Swarm {
    /// The network.
    pub net: Network,
    /// The settings.
    pub config: SwarmConfig,
    /// The stream published.
    pub stream: TestStream,
    /// Its id.
    pub stream_id: StreamId,
    /// The publisher.
    pub publisher: NodeId<PublisherNode>,
    /// The relays.
    pub relays: Vec<NodeId<RelayNode>>,
    /// Every peer ever added (departed ones are disconnected).
    pub peers: Vec<NodeId<PeerNode>>,
    /// Peers now in the swarm.
    pub present: Vec<NodeId<PeerNode>>,
    /// The memo shared by peers and relays, if [`SwarmConfig::verify_memo`].
    pub verify_memo: Option<Arc<VerifyMemo>>,
    rng: ChaCha8Rng,
    next_addr: u32,
    start: Time,
    built: Time,
    added: u32,
    churn_debt: f64,
    churned: u32,
    /// Every peer's new stream payload from peers and from relays, summed
    /// at each whole second from the stream's start (cumulative).
    timeline: Vec<(u64, u64)>,
    /// Beside `timeline`, for [`Swarm::debug_totals`]: duplicate payload
    /// bytes, chunks played, chunks lost and NACKs sent (cumulative).
    debug_timeline: Vec<[u64; 4]>,
}

impl Swarm {
    /// Builds the publisher and relays; peers join during [`Swarm::run`].
    pub fn new(config: SwarmConfig) -> Self {
        let c = &config;
        let mut net = Network::with_threads(c.seed, c.threads);
        net.set_default_link(swarm_net::link(c));
        net.set_links_to(addr(0), swarm_net::server_link(c));
        let key = test_key();
        let stream_id = key.stream_id();
        let stream = TestStream::new(c.seed, c.seconds, c.bitrate_bps, 25, 25);
        let now = net.now();
        let verify_memo = c
            .verify_memo
            .then(|| Arc::new(VerifyMemo::new(MEMO_ENTRIES)));
        let count = c.relays.max(1);
        let relays: Vec<_> = (0..count)
            .map(|i| {
                let a = addr(1 + i);
                net.set_links_to(a, swarm_net::server_link(c));
                if let Some(uplink) = c.relay_uplink {
                    net.set_uplink(a, uplink);
                }
                let mut rc = relay_config(c.seed + u64::from(i));
                rc.max_subscribers = swarm_relays::max_subscribers(c.peers, count);
                rc.verify_memo = verify_memo.clone();
                let id = net.add_node(a, RelayNode::new(rc));
                if i > 0 {
                    let up = addr(1 + swarm_relays::upstream_of(i, count));
                    net.with_node(id, |node, now| {
                        node.relay
                            .add_upstream(now, up, stream_id)
                            .expect("valid stream id");
                    });
                }
                id
            })
            .collect();
        let start = now + Duration::from_millis(500);
        let publisher_config = PublisherConfig {
            clubs: c.clubs,
            // The publisher declares what it sends, as an encoder's target
            // rate would: the test stream carries about half the rate it
            // was made with, and peers size their upload sides against
            // the declared rate (issue 20: declaring the nominal rate left
            // half of every peer's upload unused, the swarm at its
            // capacity, and thousands of refusals).
            bitrate_bps: stream.bitrate_bps(),
            ..PublisherConfig::default()
        };
        let publisher = net.add_node(
            addr(0),
            PublisherNode::new(key, publisher_config, vec![addr(1)], stream.clone(), start),
        );
        // The backbone (publisher to the first relay, relay to relay) has
        // the latency but not the loss of peers' links: relays sit in
        // data centres, and what is measured here is the swarm. It also
        // has to: neither the publisher nor a relay's upstream side
        // repairs a lost chunk other than by FEC, so one chunk lost there
        // beyond FEC is lost to every peer (0.09% of a 20 s stream's
        // chunks at once, in the stall ratio).
        let backbone = LinkConfig::with_latency(c.latency);
        for i in 0..count {
            let up = if i == 0 {
                addr(0)
            } else {
                addr(1 + swarm_relays::upstream_of(i, count))
            };
            net.set_link(up, addr(1 + i), backbone);
            net.set_link(addr(1 + i), up, backbone);
        }
        Self {
            net,
            rng: ChaCha8Rng::seed_from_u64(c.seed ^ 0x5a5a),
            stream,
            stream_id,
            publisher,
            relays,
            peers: Vec::new(),
            present: Vec::new(),
            verify_memo,
            // Peers after the relays, from 1000 as before.
            next_addr: 1000.max(count + 1),
            start,
            built: now,
            added: 0,
            churn_debt: 0.0,
            churned: 0,
            timeline: Vec::new(),
            debug_timeline: Vec::new(),
            config,
        }
    }

    /// Adds one peer now, at a fresh address, through a random relay.
    pub fn add_peer(&mut self) -> NodeId<PeerNode> {
        let c = &self.config;
        let a = addr(self.next_addr);
        self.next_addr += 1;
        let relay = self
            .net
            .addr(self.relays[self.rng.random_range(0..self.relays.len())]);
        let mut pc = PeerConfig::new(relay, self.stream_id);
        pc.upload_limit_bps = if self.rng.random_bool(c.no_upload) {
            0
        } else {
            // Against what the stream really carries (issue 20: against the
            // nominal rate, twice that, uploads never ran short).
            (self.stream.bitrate_bps() as f64 * self.rng.random_range(1.0..=c.max_upload)) as u64
        };
        pc.nonce_seed = self.rng.random();
        pc.window.capacity = c.peer_window;
        pc.cookie_secret = self.rng.random();
        pc.verify_memo = self.verify_memo.clone();
        let nat: f64 = self.rng.random();
        if nat < c.symmetric_nat {
            self.net.set_nat(a, Nat::Symmetric);
        } else if nat < c.symmetric_nat + c.cone_nat {
            self.net.set_nat(a, Nat::Cone);
        }
        if let Some(uplink) = c.peer_uplink {
            self.net
                .set_uplink(a, uplink.for_limit(pc.upload_limit_bps));
        }
        if let Some(burst) = swarm_net::peer_downlink(c) {
            self.net.set_downlink_burst(a, burst);
        }
        let now = self.net.now();
        let id = self.net.add_node(a, PeerNode::new(pc, now, c.keep_output));
        self.peers.push(id);
        self.present.push(id);
        id
    }

    /// Takes a random present peer off the network without a word.
    pub fn remove_random_peer(&mut self) {
        if self.present.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.present.len());
        let id = self.present.swap_remove(i);
        self.net.disconnect(id);
    }

    /// When the run ends: the end of the stream plus time for the last
    /// chunks to be repaired and played.
    pub fn end(&self) -> Time {
        self.start + self.stream.duration() + self.config.latency * 4 + Duration::from_secs(2)
    }

    /// Runs the whole stream: peers ramp up, then churn, until
    /// [`Swarm::end`].
    pub fn run(&mut self) -> SwarmReport {
        self.run_until(self.end());
        self.report()
    }

    /// Runs until `deadline`: peers join over [`SwarmConfig::ramp`], then
    /// leave and join at the churn rate, in steps of 100 ms.
    pub fn run_until(&mut self, deadline: Time) {
        let c = self.config.clone();
        let step = Duration::from_millis(100);
        let ramp_steps = (c.ramp.as_millis() / step.as_millis()).max(1) as u32;
        let per_step = c.peers.div_ceil(ramp_steps);
        let churn_from = self.built + c.ramp + Duration::from_secs(2);
        let churn_until = self.start + self.stream.duration()
            - Duration::from_secs(3).min(self.stream.duration());
        let churn_per_step = f64::from(c.peers) * c.churn_per_minute / 600.0;
        while self.net.now() < deadline {
            let now = self.net.now();
            if self.added < c.peers && now < churn_from {
                for _ in 0..per_step.min(c.peers - self.added) {
                    self.add_peer();
                    self.added += 1;
                }
            }
            // Churn stops a little before the end so that late joiners
            // have something to watch.
            if now >= churn_from && now < churn_until {
                self.churn_debt += churn_per_step;
                while self.churn_debt >= 1.0 {
                    self.churn_debt -= 1.0;
                    self.remove_random_peer();
                    self.add_peer();
                    self.churned += 1;
                }
            }
            self.net.run_until((now + step).min(deadline));
            self.sample_timeline();
        }
    }

    /// At each whole second from the stream's start, notes every peer's
    /// new stream payload so far (from peers, from relays).
    fn sample_timeline(&mut self) {
        let at = self.net.now().saturating_since(self.start);
        if self.net.now() < self.start || (at.as_secs() as usize) < self.timeline.len() {
            return;
        }
        let mut sums = (0, 0);
        let mut more = [0; 4];
        for &p in &self.peers {
            let s = self.net.node(p).peer.stats();
            sums.0 += s.from_peers_payload_bytes;
            sums.1 += s.from_relay_payload_bytes;
            more[0] += s.duplicate_payload_bytes;
            more[1] += s.viewer.played;
            more[2] += s.viewer.lost;
            more[3] += s.viewer.nacks_sent;
        }
        self.timeline.push(sums);
        self.debug_timeline.push(more);
    }

    /// What the run measured so far.
    pub fn report(&self) -> SwarmReport {
        let c = &self.config;
        let publisher_bytes = self.net.node_stats(self.publisher).sent_bytes;
        let relay_bytes = self
            .relays
            .iter()
            .map(|&r| self.net.node_stats(r).sent_bytes)
            .sum();
        let mut relay_by_kind = [0u64; 4];
        let mut relay_nack_served = 0;
        for &r in &self.relays {
            let node = self.net.node(r);
            relay_nack_served += node.relay.stats().nack_served;
            for (ty, &bytes) in node.sent_by_type.iter().enumerate() {
                let kind = match ty {
                    0x01 => 0,
                    0x02 => 1,
                    0x03 | 0x04 => 2,
                    _ => 3,
                };
                relay_by_kind[kind] += bytes;
            }
        }
        let mut peer_bytes = 0;
        let mut hist = vec![0u64; LATENCY_BUCKETS];
        let (mut played, mut lost) = (0u64, 0u64);
        let (mut new_from_peers, mut new_from_relays, mut duplicates) = (0u64, 0u64, 0u64);
        let mut recoveries = Vec::new();
        let mut dropped = (0, 0, 0, 0);
        let mut starved = 0;
        let mut watch_time = Duration::ZERO;
        let end = self.start + self.stream.duration();
        for &p in &self.peers {
            peer_bytes += self.net.node_stats(p).sent_bytes;
            let node = self.net.node(p);
            let s = node.peer.stats();
            for (h, &n) in hist.iter_mut().zip(node.latency.iter()) {
                *h += u64::from(n);
            }
            played += s.viewer.played;
            lost += s.viewer.lost;
            new_from_peers += s.from_peers_payload_bytes;
            new_from_relays += s.from_relay_payload_bytes;
            duplicates += s.duplicate_payload_bytes;
            recoveries.extend_from_slice(node.peer.recoveries());
            dropped.0 += s.dropped_silent;
            dropped.1 += s.dropped_bad;
            dropped.2 += s.dropped_refused;
            dropped.3 += s.handshake_timeouts;
            starved += s.dropped_starved;
            watch_time += end.saturating_since(node.joined.max(self.start));
        }
        recoveries.sort();
        let pick = |v: &[Duration], p: f64| {
            v.get(((v.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        let recovery_covered = recoveries.iter().filter(|d| d.is_zero()).count();
        let recovery = (
            pick(&recoveries, 0.5),
            pick(&recoveries, 0.9),
            recoveries.last().copied().unwrap_or_default(),
            recoveries.len(),
        );
        let total: u64 = hist.iter().sum();
        let latency = [10.0, 50.0, 90.0, 99.0, 99.9]
            .into_iter()
            .map(|p| {
                let target = (total as f64 * p / 100.0).ceil() as u64;
                let mut acc = 0;
                let bucket = hist
                    .iter()
                    .position(|&n| {
                        acc += n;
                        acc >= target.max(1)
                    })
                    .unwrap_or(LATENCY_BUCKETS - 1);
                (p, LATENCY_BUCKET * (bucket as u32 + 1))
            })
            .collect();
        // Serving every peer directly: the publisher's output (chunks,
        // parity, manifests, as a relay would forward them) for as long as
        // each peer watched.
        let stream_secs = self.stream.duration().as_secs_f64().max(1e-3);
        let direct = publisher_bytes as f64 / stream_secs * watch_time.as_secs_f64();
        let new_payload = new_from_peers + new_from_relays;
        SwarmReport {
            peers: c.peers,
            relays: c.relays,
            publisher_bytes,
            relay_bytes,
            peer_bytes,
            played,
            lost,
            latency,
            recovery,
            recovery_covered,
            churned: self.churned,
            relay_vs_direct: relay_bytes as f64 / direct.max(1.0),
            watched: watch_time,
            new_from_peers,
            new_from_relays,
            duplicates,
            duplicate_ratio: duplicates as f64 / new_payload.max(1) as f64,
            useful_offload: new_from_peers as f64 / new_payload.max(1) as f64,
            relay_kbps_per_peer: relay_bytes as f64 * 8.0
                / 1000.0
                / watch_time.as_secs_f64().max(1e-3),
            dropped,
            starved,
            relay_by_kind,
            relay_nack_served,
            timeline: self
                .timeline
                .windows(2)
                .map(|w| (w[1].0.saturating_sub(w[0].0), w[1].1.saturating_sub(w[0].1)))
                .collect(),
        }
    }
}
