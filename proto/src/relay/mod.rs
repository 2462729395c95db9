//! The relay core: a super-peer's protocol logic, with no IO.
//!
//! It verifies ingest once per stream (a [`Window`] per stream, see
//! [`ingest`]), keeps a bounded window of recent chunks, runs the cookie
//! handshake for subscribers ([`handshake`]), expires silent ones
//! ([`subscribers`]), fans every verified item out to the subscribers that
//! want it ([`fanout`]), serves NACKs and catch-up from the window
//! ([`repair`]), answers the swarm's PEERS, MEMBER and INTRODUCE
//! ([`swarm`]) and keeps each club's oldest members on itself
//! ([`roots`]), rebuilds lost chunks from parity before forwarding (inside
//! the window), and can itself subscribe to an upstream relay
//! ([`upstream`]). This file holds the type, its settings and its run loop.
//!
//! Run loop, as for every state machine in this crate: call
//! `handle_datagram` or `handle_timeout`, then drain `poll_transmit` until
//! `None`, then wait until `poll_timeout`.
//!
//! Buffers: ingest copies each datagram once into its window slot; fan-out
//! transmits borrow that slot, for every subscriber, so forwarding copies
//! nothing. Control replies come from a pooled queue. Nothing here
//! allocates per chunk once the window and queues are warm.

mod admission;
mod budget;
mod club_index;
mod fanout;
mod handshake;
mod host;
mod ingest;
mod limiter;
mod repair;
mod roots;
mod session_ids;
mod sources;
mod stats;
mod stream_index;
mod subscribers;
mod summary;
mod swarm;
mod token_cache;
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use ingest::{Export, StreamDatagram};
pub use stats::RelayStats;
pub(crate) use subscribers::wire_bps;
pub use summary::StreamSummary;
pub use upstream::{FAILOVER_AFTER, UpstreamStatus};

use crate::cookie::CookieJar;
use crate::integrity::{Rejection, VerifyMemo};
use crate::rng::Rng;
use crate::transmit::TxQueue;
use crate::window::{Window, WindowConfig};
use crate::wire::{
    DecodeError, Keepalive, Leave, LeaveReason, Message, RejectReason, StreamHeader, peek_type,
};
use crate::{SharedTransmit, StreamId, Time};
use admission::Refusal;
use fanout::Fanout;
use host::HostCounts;
use ingest::Stream;
use limiter::HandshakeLimiter;
use session_ids::SessionIds;
use stream_index::StreamIndex;
use subscribers::{Subscriber, Unbound};
use token_cache::TokenCache;
use upstream::Upstream;

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Per-stream window.
    pub window: WindowConfig,
    /// Most subscribers over all streams.
    pub max_subscribers: usize,
    /// Most streams carried.
    pub max_streams: usize,
    /// Keepalive interval asked of subscribers.
    pub keepalive_interval: Duration,
    /// A subscriber silent this long is dropped.
    pub subscriber_timeout: Duration,
    /// Secret for the stateless cookies. The default is all zeros, which
    /// makes cookies forgeable: every real deployment (the IO shell) MUST
    /// set it from the OS's secure random source at start.
    pub cookie_secret: [u8; 32],
    /// Take new streams from publishers whose descriptor verifies (within
    /// `publishers`, `max_streams` and `max_streams_per_source`).
    pub accept_publishers: bool,
    /// The only streams that may be created (by a publisher's or an
    /// upstream's DESCRIPTOR, or a SUBSCRIBE waiting for one); empty: any.
    /// Streams pulled with [`Relay::add_upstreams`] are carried whatever
    /// this says.
    pub publishers: Vec<StreamId>,
    /// Streams one source host (IPv4 address, IPv6 /64) may have created
    /// and still hold, by DESCRIPTOR or by SUBSCRIBE.
    pub max_streams_per_source: usize,
    /// A stream not pulled from an upstream with no verified DESCRIPTOR,
    /// MANIFEST or DATA for this long is removed (one that never had any
    /// is kept while it has subscribers waiting).
    pub stream_idle_timeout: Duration,
    /// Subscriptions one source host (IPv4 address, IPv6 /64) may hold.
    pub max_subscriptions_per_ip: usize,
    /// Most chunks one NACK is answered with.
    pub nack_limit: usize,
    /// Seed for handshake nonces toward upstreams.
    pub nonce_seed: u64,
    /// HELLOs answered per second per source IP (0: no limit); more are
    /// dropped unanswered and counted.
    pub handshake_rate: u32,
    /// HELLOs a source IP may send in a burst.
    pub handshake_burst: u32,
    /// Push each block's MANIFEST and each new DESCRIPTOR to subscribers
    /// (the ACCEPT's DESCRIPTOR goes regardless). An ordinary peer's
    /// upload side turns this off: its subscribers take both from their
    /// relay, so that ten sources do not send ten copies.
    pub forward_manifests: bool,
    /// NACKs are not answered with chunks that arrived this recently: they
    /// were pushed to every subscriber of their club on arrival, so the
    /// NACK crossed the push on the way (an ordinary peer's upload side
    /// whose own copy came late). `None` (a relay, everyone's last
    /// resort): every held chunk is sent.
    pub nack_skips_fresh: Option<Duration>,
    /// A NACK naming chunks the window does not hold is answered with a
    /// HAVE of what it holds from the first of them (an ordinary peer's
    /// upload side, whose own copy may still be on its way): the asker
    /// then waits for the push rather than asking its relay at once.
    pub nack_tells_lack: bool,
    /// Refuse SUBSCRIBEs without a valid access token for the stream
    /// (§11.10). Needs the wall clock: see [`Relay::set_wall_clock`].
    pub require_token: bool,
    /// Access tokens to present to upstream relays; each names its stream,
    /// and an upstream subscription uses the one for its stream.
    pub upstream_tokens: Vec<Vec<u8>>,
    /// What ABOUT tells a QUERY (§6.15): this relay's web face, if any.
    pub web: WebFace,
    /// Successful signature checks shared with other receivers in this
    /// process (a simulator's peers); `None` (the default): every check
    /// runs. See [`VerifyMemo`].
    pub verify_memo: Option<Arc<VerifyMemo>>,
}

/// A relay's web face as ABOUT announces it (§6.15).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebFace {
    /// The TCP port of the web face, on the address a QUERY went to; 0
    /// when there is none.
    pub http_port: u16,
    /// Its base URL as the operator gave it, ending in `/`
    /// ([`crate::wire::is_valid_page`]); empty when not given.
    pub page: String,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            window: WindowConfig::default(),
            max_subscribers: 10_000,
            max_streams: 64,
            keepalive_interval: Duration::from_secs(1),
            subscriber_timeout: Duration::from_secs(5),
            cookie_secret: [0; 32],
            accept_publishers: true,
            publishers: Vec::new(),
            max_streams_per_source: 4,
            stream_idle_timeout: Duration::from_secs(30),
            max_subscriptions_per_ip: 64,
            nack_limit: 256,
            nonce_seed: 1,
            handshake_rate: 20,
            handshake_burst: 40,
            forward_manifests: true,
            nack_skips_fresh: None,
            nack_tells_lack: false,
            require_token: false,
            upstream_tokens: Vec::new(),
            web: WebFace::default(),
            verify_memo: None,
        }
    }
}

/// Something the relay's owner may want to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEvent {
    /// A stream appeared (first verified descriptor, or an upstream added).
    StreamAdded(StreamId),
    /// An idle stream was removed (see
    /// [`RelayConfig::stream_idle_timeout`]) or forgotten
    /// ([`Relay::remove_stream`]); its subscribers were told.
    StreamRemoved(StreamId),
    /// A subscriber was accepted.
    SubscriberJoined(SocketAddr, StreamId),
    /// A subscriber left or expired.
    SubscriberLeft(SocketAddr, LeaveReason),
    /// An upstream accepted this relay's subscription.
    UpstreamSubscribed(SocketAddr, StreamId),
    /// An upstream refused it.
    UpstreamRejected(SocketAddr, RejectReason),
}

/// The relay. See the module docs.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    cookies: CookieJar,
    session_ids: SessionIds,
    streams: Vec<Stream>,
    stream_index: StreamIndex,
    subs: Vec<Option<Subscriber>>,
    sub_index: HashMap<SocketAddr, usize>,
    free_subs: Vec<usize>,
    /// Per stream and club, its members with room: what PEERS samples.
    clubs: club_index::ClubIndex,
    /// Per stream and club, all its members, with room or not: what
    /// [`roots`] ranks by age.
    members: club_index::ClubIndex,
    tx: TxQueue,
    fanout: Fanout,
    events: std::collections::VecDeque<RelayEvent>,
    next_sweep: Option<Time>,
    stats: RelayStats,
    shutting_down: bool,
    limiter: HandshakeLimiter,
    export: bool,
    exports: std::collections::VecDeque<Export>,
    /// Upload capacity in club-streams (an ordinary peer's upload side);
    /// `None`: unlimited.
    club_slots: Option<u32>,
    /// Samples PEERS answers.
    rng: Rng,
    /// When to NACK lost manifests to upstream relays next.
    next_manifest_nack: Option<Time>,
    /// Bounds the signature checks that fail on DESCRIPTORs for streams
    /// not carried yet (the windows bound their own).
    new_streams: crate::window::Guard,
    /// Tokens already verified, by signature, so that a token shared by
    /// many viewers costs one signature check.
    tokens: TokenCache,
    /// Slots of removed streams, for the next stream.
    free_streams: Vec<usize>,
    /// Streams held per creating host.
    stream_hosts: HostCounts,
    /// Subscriptions held per host.
    sub_hosts: HostCounts,
    /// Window counters of removed streams, so totals never go back.
    retired: crate::window::WindowStats,
    /// When to look for idle streams next.
    next_idle_sweep: Option<Time>,
}

/// Most events kept for [`Relay::poll_event`].
pub const MAX_EVENTS: usize = 1024;

impl Relay {
    /// A relay with no streams and no subscribers.
    pub fn new(config: RelayConfig) -> Self {
        let limiter = HandshakeLimiter::new(
            config.cookie_secret,
            config.handshake_rate,
            config.handshake_burst,
        );
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&config.cookie_secret[..8]);
        let rng = Rng::new(u64::from_be_bytes(seed) ^ config.nonce_seed);
        Self {
            cookies: CookieJar::new(config.cookie_secret),
            session_ids: SessionIds::new(config.cookie_secret, config.nonce_seed),
            config,
            streams: Vec::new(),
            stream_index: StreamIndex::default(),
            subs: Vec::new(),
            sub_index: HashMap::new(),
            free_subs: Vec::new(),
            clubs: Default::default(),
            members: Default::default(),
            tx: TxQueue::default(),
            fanout: Fanout::default(),
            events: Default::default(),
            next_sweep: None,
            stats: RelayStats::default(),
            shutting_down: false,
            limiter,
            export: false,
            exports: Default::default(),
            club_slots: None,
            rng,
            next_manifest_nack: None,
            tokens: TokenCache::default(),
            new_streams: crate::window::Guard::default(),
            free_streams: Vec::new(),
            stream_hosts: HostCounts::default(),
            sub_hosts: HostCounts::default(),
            retired: Default::default(),
            next_idle_sweep: None,
        }
    }

    /// Window counters summed over every stream.
    pub fn window_stats(&self) -> crate::window::WindowStats {
        let mut sum = self.retired;
        for s in &self.streams {
            let w = s.window.stats();
            sum.chunks_verified += w.chunks_verified;
            sum.chunks_rebuilt += w.chunks_rebuilt;
            sum.manifests_verified += w.manifests_verified;
            sum.manifest_missing += w.manifest_missing;
        }
        sum
    }

    /// Streams carried.
    pub fn stream_count(&self) -> usize {
        self.streams.len() - self.free_streams.len()
    }

    /// Streams whose signed DESCRIPTOR this relay holds: the ones it can
    /// serve now (a relay announces these on the DHT).
    pub fn live_streams(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.streams
            .iter()
            .filter_map(|s| s.window.descriptor().map(|(d, _)| d.stream))
    }

    /// Counters. Chunks and parity that waited in vain for their manifest
    /// are counted by the windows, and summed in here.
    pub fn stats(&self) -> RelayStats {
        let mut stats = self.stats;
        stats.drop_manifest_missing += self
            .streams
            .iter()
            .map(|s| s.window.stats().manifest_missing)
            .sum::<u64>();
        stats
    }

    /// The window of `stream`, if carried.
    pub fn window(&self, stream: &StreamId) -> Option<&Window> {
        self.stream_index
            .get(stream)
            .map(|i| &self.streams[i].window)
    }

    /// Whether this relay ingests (verifies) `stream` itself, rather than
    /// mirroring another worker's window of it.
    pub fn ingests(&self, stream: &StreamId) -> bool {
        self.stream_index
            .get(stream)
            .is_some_and(|i| !self.streams[i].mirror)
    }

    /// The next event. Events wait in a queue of at most [`MAX_EVENTS`];
    /// an owner that reads none loses the oldest, never memory.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    fn event(&mut self, e: RelayEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// Stops intake and tells every subscriber to go elsewhere.
    pub fn shutdown(&mut self) {
        self.shutting_down = true;
        for s in &mut self.streams {
            if let Some(up) = &mut s.upstream {
                up.close(&mut self.tx);
            }
        }
        for sub in self.subs.iter().flatten() {
            let leave = Leave {
                reason: LeaveReason::ShuttingDown,
                stream: self.streams[sub.stream].window.stream(),
                session: sub.session,
            };
            let _ = self.tx.push_message(sub.addr, &Message::Leave(leave));
        }
    }

    /// Handles one received datagram.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        let ty = match peek_type(bytes) {
            Ok(ty) => ty,
            Err(e) => {
                self.stats.count(Rejection::Malformed(e));
                if let DecodeError::UnsupportedVersion(_) = e {
                    self.answer_unsupported_version(from, bytes);
                }
                return;
            }
        };
        if self.shutting_down {
            return;
        }
        match StreamHeader::of(ty, bytes) {
            Ok(Some(header)) => self.ingest(now, from, header.into()),
            Ok(None) => match Message::parse(bytes) {
                Ok(msg) => self.handle_control(now, from, bytes.len(), &msg),
                Err(e) => self.stats.count(Rejection::Malformed(e)),
            },
            Err(e) => self.stats.count(Rejection::Malformed(e)),
        }
    }

    fn handle_control(&mut self, now: Time, from: SocketAddr, len: usize, msg: &Message<'_>) {
        match msg {
            Message::Hello(h) => self.answer_hello(now, from, h),
            Message::Query(q) => self.answer_query(now, from, q),
            Message::Subscribe(s) => self.subscribe(now, from, s),
            Message::Keepalive(k) => match self.bound(now, from, k.stream, k.session) {
                Ok(i) => {
                    if let Some(sub) = &mut self.subs[i] {
                        sub.report = Some(*k);
                    }
                }
                Err(Unbound::NoSubscription) => self.not_subscribed(from, len, k.stream),
                Err(_) => {}
            },
            Message::Nack(n) => match self.bound(now, from, n.stream, n.session) {
                Ok(i) => self.serve_nack(now, from, i, n),
                Err(Unbound::NoSubscription) => self.not_subscribed(from, len, n.stream),
                Err(_) => {}
            },
            Message::Leave(l) => {
                if self.sub_index.contains_key(&from) {
                    if let Ok(i) = self.bound(now, from, l.stream, l.session) {
                        self.remove_subscriber(i, LeaveReason::Done, false);
                    }
                } else {
                    self.upstream_message(now, from, msg);
                }
            }
            Message::Peers(p) => {
                if let Ok(i) = self.bound(now, from, p.stream, p.session)
                    && p.addrs().is_empty()
                {
                    self.answer_peers(now, from, i, p.club);
                }
            }
            Message::Have(h) => self.take_have(now, from, h),
            Message::Member(m) => self.take_member(now, from, m),
            Message::Introduce(intro) => self.introduce(now, from, intro),
            Message::Challenge(_) | Message::Accept(_) | Message::Reject(_) => {
                self.upstream_message(now, from, msg);
            }
            _ => {}
        }
    }

    /// Runs timers: window expiry, subscriber expiry, upstream sessions.
    pub fn handle_timeout(&mut self, now: Time) {
        self.nack_manifests(now);
        for i in 0..self.streams.len() {
            self.streams[i].window.handle_timeout(now);
            let resume = self.streams[i].window.newest_seq().map(|s| s + 1);
            let stream_id = self.streams[i].window.stream();
            if let Some(up) = &mut self.streams[i].upstream {
                let report = Keepalive {
                    highest_seq: resume.map_or(0, |s| s - 1),
                    // The session stamps its own id.
                    ..Keepalive::empty(stream_id, 0)
                };
                up.handle_timeout(now, resume, report, &mut self.tx);
            }
            self.drain_ready(now, i);
        }
        self.expire_subscribers(now);
        self.sweep_idle_streams(now);
    }

    /// When `handle_timeout` should next run.
    pub fn poll_timeout(&self) -> Option<Time> {
        let windows = self.streams.iter().filter_map(|s| s.window.poll_timeout());
        let upstreams = self
            .streams
            .iter()
            .filter_map(|s| s.upstream.as_ref().and_then(Upstream::poll_timeout));
        windows
            .chain(upstreams)
            .chain(self.next_sweep)
            .chain(self.next_idle_sweep)
            .chain(self.next_manifest_nack)
            .min()
    }

    /// The next datagram to send: control replies first, then fan-out.
    /// Its buffer may be kept past the next call (see [`SharedTransmit`]).
    /// Fan-out items come subscriber by subscriber, so consecutive
    /// datagrams to one address can go as one GSO train.
    pub fn poll_transmit(&mut self) -> Option<SharedTransmit<'_>> {
        if !self.tx.is_empty() {
            return self.tx.pop_shared();
        }
        let Some((dst, stream, item)) = self.next_fanout() else {
            return self.tx.pop_shared();
        };
        let payload = Self::item_buf(&self.streams[stream].window, item)?;
        self.stats.forwarded += 1;
        self.stats.forwarded_bytes += payload.len() as u64;
        Some(SharedTransmit {
            dst,
            payload,
            ttl: None,
        })
    }
}

#[cfg(test)]
mod admission_tests;
#[cfg(test)]
mod repair_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod swarm_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod token_tests;
