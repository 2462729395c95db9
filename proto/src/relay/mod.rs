//! The relay core: a super-peer's protocol logic, with no IO.
//!
//! It verifies ingest once per stream (a [`Window`] per stream), keeps a
//! bounded window of recent chunks, runs the cookie handshake for
//! subscribers, expires silent ones, fans every verified item out to the
//! subscribers that want it, serves NACKs from the window, rebuilds lost
//! chunks from parity before forwarding (inside the window), and can itself
//! subscribe to an upstream relay.
//!
//! Run loop, as for every state machine in this crate: call
//! `handle_datagram` or `handle_timeout`, then drain `poll_transmit` until
//! `None`, then wait until `poll_timeout`.
//!
//! Buffers: ingest copies each datagram once into its window slot; fan-out
//! transmits borrow that slot, for every subscriber, so forwarding copies
//! nothing. Control replies come from a pooled queue. Nothing here
//! allocates per chunk once the window and queues are warm.
//!
//! Amplification: an address that has not echoed a valid cookie gets only
//! CHALLENGE or REJECT, each no longer than the datagram it answers.
//!
//! Binding: each subscription has a session id, drawn at its first ACCEPT
//! ([`session_ids`]); every later session message must carry it, or it is
//! dropped unanswered and counted (`drop_bad_session`). The one check is
//! [`Relay::bound`]; what the relay sends a subscriber carries the id too.

mod admission;
mod budget;
mod fanout;
mod host;
mod limiter;
mod repair;
mod session_ids;
mod sources;
mod stats;
mod token_cache;
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

pub use stats::RelayStats;
pub use upstream::FAILOVER_AFTER;

use crate::client::SessionEvent;
use crate::cookie::CookieJar;
use crate::integrity::{Rejection, StreamKey};
use crate::token::{Scope, Token, TokenError};
use crate::transmit::{SharedBuf, TxQueue};
use crate::window::{Adopt, Ingested, Ready, Window, WindowConfig};
use crate::wire::{
    Accept, Challenge, DecodeError, Have, Introduce, Keepalive, Leave, LeaveReason, MAX_PEERS,
    Message, MessageType, Nack, NackKind, Peers, Reject, RejectReason, SUPPORTED_VERSIONS,
    peek_type,
};
use crate::{StreamId, Time, Transmit};
use admission::Refusal;
use budget::RepairBudget;
use fanout::{Fanout, Item};
use host::{Host, HostCounts};
use limiter::HandshakeLimiter;
use session_ids::SessionIds;
use sources::ProvenSources;
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
    /// Push each block's MANIFEST to subscribers. An ordinary peer's
    /// upload side turns this off: its subscribers take manifests from
    /// their relay, so that ten sources do not send ten copies.
    pub forward_manifests: bool,
    /// Refuse SUBSCRIBEs without a valid access token for the stream
    /// (§11.10). Needs the wall clock: see [`Relay::set_wall_clock`].
    pub require_token: bool,
    /// Access tokens to present to upstream relays; each names its stream,
    /// and an upstream subscription uses the one for its stream.
    pub upstream_tokens: Vec<Vec<u8>>,
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
            require_token: false,
            upstream_tokens: Vec::new(),
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

#[derive(Debug)]
struct Subscriber {
    addr: SocketAddr,
    /// Its session id (ACCEPT): every session message it sends carries it.
    session: u64,
    stream: usize,
    clubs: u64,
    start_seq: u64,
    last_heard: Time,
    report: Option<Keepalive>,
    /// Clubs it forwards as an ordinary peer (MEMBER); 0: none.
    member: u64,
    /// Upload it offers (MEMBER), kbit/s.
    upload_kbps: u32,
    /// When it first subscribed: PEERS orders club members by it.
    joined: Time,
    /// Its newest HAVE: chunks not to push.
    have: Option<Have>,
    /// INTRODUCE requests in the current second, and when it began.
    intros: (Time, u32),
    /// May announce itself as an uploader (MEMBER): its token's scope, or
    /// always when tokens are not required.
    may_upload: bool,
    /// What it may still cost in repairs.
    budget: RepairBudget,
}

#[derive(Debug)]
struct Stream {
    window: Window,
    upstream: Option<Upstream>,
    /// Fed by [`Relay::handle_adopt`] from the relay worker that ingests
    /// it, rather than by ingest here.
    mirror: bool,
    /// Blocks whose chunks came from the upstream without their manifest.
    awaiting: std::collections::BTreeMap<u64, Awaiting>,
    /// Who may send chunks ahead of their manifest.
    sources: ProvenSources,
    /// Verified data last came (or, for a stream never live, a subscriber
    /// last waited).
    last_active: Option<Time>,
    /// The host that created it, counted against its stream limit.
    creator: Option<Host>,
    /// Pulled from upstreams by configuration: never idle.
    configured: bool,
    /// A free slot: see [`Relay::remove_stream`].
    vacant: bool,
}

/// A block waiting for its manifest from the upstream relay.
#[derive(Debug, Clone, Copy)]
struct Awaiting {
    noticed: Time,
    last_nack: Option<Time>,
    nacks: u8,
}

/// Blocks tracked as awaiting their manifest, per stream.
const MAX_AWAITING: usize = 64;
/// A manifest missing this long after its block's first chunk is NACKed
/// to the upstream relay.
const MANIFEST_NACK_AFTER: Duration = Duration::from_millis(30);
/// Between two NACKs for one manifest.
const MANIFEST_NACK_EVERY: Duration = Duration::from_millis(150);
/// Tries per manifest.
const MANIFEST_NACK_TRIES: u8 = 5;

/// The state of one upstream subscription, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamStatus {
    /// The stream taken.
    pub stream: StreamId,
    /// The server in use.
    pub server: SocketAddr,
    /// Whether it has accepted the subscription.
    pub subscribed: bool,
    /// Times the relay moved to another upstream.
    pub failovers: u64,
}

/// A verified item for the mirrors of a stream: see [`Relay::poll_export`].
#[derive(Debug, Clone)]
pub struct Export {
    /// The stream.
    pub stream: StreamId,
    /// What it is.
    pub item: Adopt,
    /// Its datagram, shared.
    pub buf: SharedBuf,
}

/// The relay. See the module docs.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    cookies: CookieJar,
    session_ids: SessionIds,
    streams: Vec<Stream>,
    stream_index: HashMap<StreamId, usize>,
    subs: Vec<Option<Subscriber>>,
    sub_index: HashMap<SocketAddr, usize>,
    free_subs: Vec<usize>,
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
    /// State of the generator that samples PEERS answers.
    rng: u64,
    /// When to NACK lost manifests to upstream relays next.
    next_manifest_nack: Option<Time>,
    /// A monotonic time and the Unix second it corresponded to: the clock
    /// token expiry is checked against.
    wall_clock: (Time, u64),
    /// Bounds the signature checks that fail on DESCRIPTORs for streams
    /// not carried yet (the windows bound their own).
    new_streams: crate::window::Guard,
    /// A DESCRIPTOR for a new stream that [`Relay::prove_new_stream`]
    /// checked, taken by the next ingest of the same bytes unchecked.
    proven_descriptor: Option<Vec<u8>>,
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

/// Why a session message was not taken from its source (see
/// [`Relay::bound`]); the drop is already counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unbound {
    /// No subscription at the source address.
    NoSubscription,
    /// A subscription, but not this session id.
    BadSession,
    /// The session's, but for another stream.
    OtherStream,
}

/// INTRODUCE requests forwarded per subscriber per second.
const INTRODUCE_RATE: u32 = 20;

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
        let rng = (u64::from_be_bytes(seed) ^ config.nonce_seed) | 1;
        Self {
            cookies: CookieJar::new(config.cookie_secret),
            session_ids: SessionIds::new(config.cookie_secret, config.nonce_seed),
            config,
            streams: Vec::new(),
            stream_index: HashMap::new(),
            subs: Vec::new(),
            sub_index: HashMap::new(),
            free_subs: Vec::new(),
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
            wall_clock: (Time::ZERO, 0),
            tokens: TokenCache::default(),
            new_streams: crate::window::Guard::default(),
            proven_descriptor: None,
            free_streams: Vec::new(),
            stream_hosts: HostCounts::default(),
            sub_hosts: HostCounts::default(),
            retired: Default::default(),
            next_idle_sweep: None,
        }
    }

    /// Tells the relay that monotonic time `now` is `unix_secs` on the wall
    /// clock. Token expiry (§11.10) is checked against it; call it at start
    /// and now and then (the IO shell does at each metrics snapshot).
    pub fn set_wall_clock(&mut self, now: Time, unix_secs: u64) {
        self.wall_clock = (now, unix_secs);
    }

    fn unix_now(&self, now: Time) -> u64 {
        let (at, secs) = self.wall_clock;
        secs + now.saturating_since(at).as_secs()
    }

    /// Limits subscriptions to `slots` club-streams in total (a subscriber
    /// to `n` clubs takes `n`), for an ordinary peer's upload side;
    /// `None` lifts the limit.
    pub fn set_club_slots(&mut self, slots: Option<u32>) {
        self.club_slots = slots;
    }

    /// Club-streams the current subscribers take.
    pub fn used_club_slots(&self) -> u32 {
        self.subs
            .iter()
            .flatten()
            .map(|s| s.clubs.count_ones())
            .sum()
    }

    /// Addresses of the current subscribers.
    pub fn subscriber_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.subs.iter().flatten().map(|s| s.addr)
    }

    /// The session id of the subscriber at `addr`, if there is one.
    pub fn subscriber_session(&self, addr: SocketAddr) -> Option<u64> {
        let &i = self.sub_index.get(&addr)?;
        self.subs[i].as_ref().map(|s| s.session)
    }

    /// The current subscribers' addresses with their session ids, for
    /// what an owner sends them itself (an ordinary peer's HAVE).
    pub fn subscriber_sessions(&self) -> impl Iterator<Item = (SocketAddr, u64)> + '_ {
        self.subs.iter().flatten().map(|s| (s.addr, s.session))
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic, good enough to sample peers.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Makes the relay hand every item it verifies to [`Relay::poll_export`],
    /// for the other workers of a multi-threaded relay to adopt.
    pub fn set_export(&mut self, on: bool) {
        self.export = on;
    }

    /// The next verified item to hand to the mirrors.
    pub fn poll_export(&mut self) -> Option<Export> {
        self.exports.pop_front()
    }

    /// Takes an item verified by the worker that ingests `stream` (see
    /// [`Window::adopt`]) and fans it out to this relay's subscribers.
    pub fn handle_adopt(&mut self, now: Time, export: Export) {
        let index = match self.add_stream(export.stream) {
            Ok(i) => i,
            Err(r) => {
                self.stats.count(r);
                return;
            }
        };
        let stream = &mut self.streams[index];
        stream.mirror = true;
        let descriptor = export.item == Adopt::Descriptor;
        match stream.window.adopt(now, export.item, export.buf) {
            Ok(()) if descriptor => self.fanout.push(index, Item::Descriptor),
            Ok(()) => {}
            Err(r) => self.stats.count(r),
        }
        self.drain_ready(now, index);
    }

    /// The relay's upstream subscriptions.
    pub fn upstreams(&self) -> impl Iterator<Item = UpstreamStatus> + '_ {
        self.streams.iter().filter_map(|s| {
            let up = s.upstream.as_ref()?;
            Some(UpstreamStatus {
                stream: s.window.stream(),
                server: up.server(),
                subscribed: up.subscribed(),
                failovers: up.failovers,
            })
        })
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

    /// Current subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.sub_index.len()
    }

    /// The window of `stream`, if carried.
    pub fn window(&self, stream: &StreamId) -> Option<&Window> {
        self.stream_index
            .get(stream)
            .map(|&i| &self.streams[i].window)
    }

    /// Whether this relay ingests (verifies) `stream` itself, rather than
    /// mirroring another worker's window of it.
    pub fn ingests(&self, stream: &StreamId) -> bool {
        self.stream_index
            .get(stream)
            .is_some_and(|&i| !self.streams[i].mirror)
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

    fn add_stream(&mut self, id: StreamId) -> Result<usize, Rejection> {
        if let Some(&i) = self.stream_index.get(&id) {
            return Ok(i);
        }
        if self.stream_count() >= self.config.max_streams {
            return Err(Rejection::WrongStream);
        }
        let key = StreamKey::new(id)?;
        let stream = Stream {
            window: Window::new(key, self.config.window),
            upstream: None,
            mirror: false,
            awaiting: Default::default(),
            sources: ProvenSources::default(),
            last_active: None,
            creator: None,
            configured: false,
            vacant: false,
        };
        let i = match self.free_streams.pop() {
            Some(i) => {
                self.streams[i] = stream;
                i
            }
            None => {
                self.streams.push(stream);
                self.streams.len() - 1
            }
        };
        self.stream_index.insert(id, i);
        self.event(RelayEvent::StreamAdded(id));
        Ok(i)
    }

    /// Takes `stream` from the relay at `server`, subscribing to all clubs.
    pub fn add_upstream(
        &mut self,
        now: Time,
        server: SocketAddr,
        stream: StreamId,
    ) -> Result<(), Rejection> {
        self.add_upstreams(now, &[server], stream)
    }

    /// Takes `stream` from the first of `servers` that serves it: retried
    /// with backoff, failing over down the list (see [`FAILOVER_AFTER`]).
    pub fn add_upstreams(
        &mut self,
        now: Time,
        servers: &[SocketAddr],
        stream: StreamId,
    ) -> Result<(), Rejection> {
        let i = self.add_stream(stream)?;
        let seed = self.config.nonce_seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let token = self
            .config
            .upstream_tokens
            .iter()
            .find(|t| Token::parse(t).is_ok_and(|t| t.stream == stream))
            .cloned()
            .unwrap_or_default();
        self.streams[i].configured = true;
        self.streams[i].upstream =
            Upstream::new(now, servers.to_vec(), stream, token, seed, &mut self.tx);
        Ok(())
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
        match ty {
            MessageType::Data
            | MessageType::Parity
            | MessageType::Manifest
            | MessageType::Descriptor => self.ingest(now, from, ty, bytes),
            _ => match Message::parse(bytes) {
                Ok(msg) => self.handle_control(now, from, bytes.len(), &msg),
                Err(e) => self.stats.count(Rejection::Malformed(e)),
            },
        }
    }

    /// A HELLO in a version we do not speak gets a REJECT listing ours, if
    /// that is no larger than what it answers.
    fn answer_unsupported_version(&mut self, from: SocketAddr, bytes: &[u8]) {
        if bytes.get(1) == Some(&(MessageType::Hello as u8))
            && bytes.len() >= crate::wire::REJECT_LEN
        {
            self.reject(from, RejectReason::UnsupportedVersion, StreamId([0; 32]));
        }
    }

    fn reject(&mut self, to: SocketAddr, reason: RejectReason, stream: StreamId) {
        let r = Reject {
            reason,
            versions: SUPPORTED_VERSIONS,
            stream,
        };
        let _ = self.tx.push_message(to, &Message::Reject(r));
    }

    /// The stream a DATA, PARITY, MANIFEST or DESCRIPTOR datagram belongs
    /// to (unchecked); `None` for other datagrams. IO shells with several
    /// workers route ingest by it.
    pub fn ingest_stream(bytes: &[u8]) -> Option<StreamId> {
        match peek_type(bytes).ok()? {
            ty @ (MessageType::Data
            | MessageType::Parity
            | MessageType::Manifest
            | MessageType::Descriptor) => Self::stream_of(ty, bytes),
            _ => None,
        }
    }

    fn stream_of(ty: MessageType, bytes: &[u8]) -> Option<StreamId> {
        let at = match ty {
            MessageType::Data | MessageType::Parity => 4,
            _ => 8,
        };
        let mut id = [0; 32];
        id.copy_from_slice(bytes.get(at..at + 32)?);
        Some(StreamId(id))
    }

    /// Checks a DESCRIPTOR for stream `id`, not carried here, before
    /// anything is created for it: the cheap admission checks first (a
    /// refused stream costs no signature check), then the signature,
    /// within the relay's budget for checks that fail (forged descriptors
    /// for streams it does not carry). Counts what it refuses.
    fn check_new_stream(
        &mut self,
        now: Time,
        from: SocketAddr,
        id: StreamId,
        bytes: &[u8],
    ) -> bool {
        if let Err(r) = self.may_create(&id, Some(Host::of(from.ip()))) {
            self.stats.count_refusal(r);
            return false;
        }
        let parsed = crate::wire::Descriptor::parse(bytes).map_err(Rejection::from);
        if parsed.is_ok() && !self.new_streams.may_check(now, None, false) {
            self.stats.count(Rejection::Throttled);
            return false;
        }
        let valid = parsed.and_then(|d| StreamKey::new(id)?.verify_descriptor(bytes, &d));
        if let Err(r) = valid {
            if r == Rejection::Forged {
                self.new_streams.failed(None);
            }
            self.stats.count(r);
            return false;
        }
        true
    }

    /// For the IO shell, before it takes the lock under which a worker
    /// claims a stream nobody carries: checks a DESCRIPTOR for a stream
    /// not carried here (see `check_new_stream`), so that the signature
    /// check runs outside the lock and only once. `false`: the datagram
    /// was refused and counted, and creates nothing; `true`: hand it to
    /// [`Relay::handle_datagram`] (under the lock), which takes this
    /// DESCRIPTOR without checking it again. Anything else is `true`.
    pub fn prove_new_stream(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) -> bool {
        if peek_type(bytes) != Ok(MessageType::Descriptor) || !self.config.accept_publishers {
            return true;
        }
        let Some(id) = Self::stream_of(MessageType::Descriptor, bytes) else {
            return true;
        };
        if self.stream_index.contains_key(&id) || self.shutting_down {
            return true;
        }
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        if !self.check_new_stream(now, from, id, bytes) {
            return false;
        }
        self.stats.datagrams_in -= 1;
        self.stats.bytes_in -= bytes.len() as u64;
        self.proven_descriptor = Some(bytes.to_vec());
        true
    }

    fn ingest(&mut self, now: Time, from: SocketAddr, ty: MessageType, bytes: &[u8]) {
        let Some(id) = Self::stream_of(ty, bytes) else {
            self.stats
                .count(Rejection::Malformed(DecodeError::Truncated));
            return;
        };
        let index = match self.stream_index.get(&id) {
            Some(&i) => i,
            None if ty == MessageType::Descriptor && self.config.accept_publishers => {
                let proven = self
                    .proven_descriptor
                    .take()
                    .is_some_and(|p| p.as_slice() == bytes);
                if !proven && !self.check_new_stream(now, from, id, bytes) {
                    return;
                }
                match self.create_stream(now, id, Some(Host::of(from.ip()))) {
                    Ok(i) => i,
                    Err(r) => {
                        self.stats.count_refusal(r);
                        return;
                    }
                }
            }
            None => {
                self.stats.count(Rejection::WrongStream);
                return;
            }
        };
        let stream = &mut self.streams[index];
        if stream.mirror {
            // The worker that ingests this stream verifies it; datagrams
            // for it do not belong here (the IO shell routes them there).
            self.stats.count(Rejection::WrongStream);
            return;
        }
        let mut trusted = stream.sources.contains(from, now);
        if let Some(up) = &mut stream.upstream
            && up.server() == from
        {
            up.heard(now);
            trusted = true;
        }
        let ingested = stream.window.ingest_from(now, bytes, trusted);
        if matches!(ingested, Ok(Ingested::Descriptor | Ingested::Verified)) {
            stream.last_active = Some(now);
        }
        match ingested {
            Ok(Ingested::Descriptor) => {
                stream.sources.prove(from, now);
                self.fanout.push(index, Item::Descriptor);
                self.export_item(index, Adopt::Descriptor);
            }
            Ok(Ingested::Verified) if ty == MessageType::Manifest => {
                stream.sources.prove(from, now);
            }
            Ok(_) => {}
            Err(r) => self.stats.count(r),
        }
        self.drain_ready(now, index);
    }

    fn drain_ready(&mut self, now: Time, index: usize) {
        while let Some(ready) = self.streams[index].window.poll_ready() {
            let stream = &mut self.streams[index];
            match ready {
                // Taken from an upstream relay: ask it for a lost manifest.
                Ready::AwaitingManifest { block } if stream.upstream.is_some() => {
                    if stream.awaiting.len() >= MAX_AWAITING
                        && let Some((&oldest, _)) = stream.awaiting.iter().next()
                    {
                        stream.awaiting.remove(&oldest);
                    }
                    stream.awaiting.entry(block).or_insert(Awaiting {
                        noticed: now,
                        last_nack: None,
                        nacks: 0,
                    });
                    let due = now + MANIFEST_NACK_AFTER;
                    self.next_manifest_nack =
                        Some(self.next_manifest_nack.map_or(due, |t| t.min(due)));
                }
                Ready::Manifest { block } => {
                    stream.awaiting.remove(&block);
                }
                // A later run (or a jump ahead): what was awaited is gone.
                // Subscribers follow by themselves, as the new run's items
                // reach them; mirrors by the items they adopt.
                Ready::Reset { .. } => {
                    stream.awaiting.clear();
                    continue;
                }
                _ => {}
            }
            if !matches!(ready, Ready::AwaitingManifest { .. }) {
                self.fanout.push(index, Item::Ready(ready));
                self.export_item(index, Adopt::Ready(ready));
            }
        }
    }

    fn export_item(&mut self, index: usize, item: Adopt) {
        let stream = &self.streams[index];
        if !self.export || stream.mirror {
            return;
        }
        let buf = match item {
            Adopt::Descriptor => stream.window.descriptor_buf(),
            Adopt::Ready(r) => stream.window.ready_buf(r),
        };
        if let Some(buf) = buf {
            self.exports.push_back(Export {
                stream: stream.window.stream(),
                item,
                buf: SharedBuf::clone(buf),
            });
        }
    }

    fn handle_control(&mut self, now: Time, from: SocketAddr, len: usize, msg: &Message<'_>) {
        match msg {
            Message::Hello(h) => {
                if !self.limiter.allow(now, from.ip()) {
                    self.stats.drop_rate_limited += 1;
                    return;
                }
                if h.versions & SUPPORTED_VERSIONS == 0 {
                    self.reject(from, RejectReason::UnsupportedVersion, StreamId([0; 32]));
                    return;
                }
                let c = Challenge {
                    nonce: h.nonce,
                    cookie: self.cookies.issue(now, from),
                };
                let _ = self.tx.push_message(from, &Message::Challenge(c));
            }
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
            Message::Have(h) => {
                if let Ok(i) = self.bound(now, from, h.stream, h.session)
                    && let Some(sub) = &mut self.subs[i]
                {
                    let newer = sub.have.is_none_or(|old| h.base >= old.base);
                    if newer {
                        sub.have = Some(*h);
                    }
                }
            }
            Message::Member(m) => {
                if let Ok(i) = self.bound(now, from, m.stream, m.session)
                    && let Some(sub) = &mut self.subs[i]
                {
                    if !sub.may_upload && m.clubs != 0 {
                        self.stats.drop_token_scope += 1;
                        return;
                    }
                    sub.member = m.clubs;
                    sub.upload_kbps = m.upload_kbps;
                }
            }
            Message::Introduce(intro) => self.introduce(now, from, intro),
            Message::Challenge(_) | Message::Accept(_) | Message::Reject(_) => {
                self.upstream_message(now, from, msg);
            }
            _ => {}
        }
    }

    /// The subscriber a session message from `from` for `stream`, carrying
    /// `session`, belongs to: the one check every session message after
    /// the handshake passes (SPEC §11.4). Marks it heard; counts a drop.
    fn bound(
        &mut self,
        now: Time,
        from: SocketAddr,
        stream: StreamId,
        session: u64,
    ) -> Result<usize, Unbound> {
        let sub = self
            .sub_index
            .get(&from)
            .and_then(|&i| Some((i, self.subs[i].as_mut()?)));
        let Some((i, sub)) = sub else {
            self.stats.drop_not_subscribed += 1;
            return Err(Unbound::NoSubscription);
        };
        // The id first: a spoofer's guess is counted as what it is,
        // whatever stream it names.
        if sub.session != session {
            self.stats.drop_bad_session += 1;
            return Err(Unbound::BadSession);
        }
        if self.streams[sub.stream].window.stream() != stream {
            self.stats.drop_not_subscribed += 1;
            return Err(Unbound::OtherStream);
        }
        sub.last_heard = now;
        Ok(i)
    }

    /// Forwards a subscriber's INTRODUCE to the subscriber it names, with
    /// the requester's address, so that the named peer PUNCHes toward it.
    fn introduce(&mut self, now: Time, from: SocketAddr, intro: &Introduce) {
        let Ok(requester) = self.bound(now, from, intro.stream, intro.session) else {
            return;
        };
        let Some(&target) = self.sub_index.get(&intro.addr) else {
            self.stats.drop_not_subscribed += 1;
            return;
        };
        let Some(sub) = self.subs[requester].as_mut() else {
            return;
        };
        let stream = sub.stream;
        if now - sub.intros.0 >= Duration::from_secs(1) {
            sub.intros = (now, 0);
        }
        if sub.intros.1 >= INTRODUCE_RATE {
            self.stats.drop_rate_limited += 1;
            return;
        }
        sub.intros.1 += 1;
        let Some(target) = self.subs[target].as_ref().filter(|t| t.stream == stream) else {
            self.stats.drop_not_subscribed += 1;
            return;
        };
        // The receiver checks the id of its own subscription.
        let forward = Introduce {
            stream: intro.stream,
            session: target.session,
            addr: from,
        };
        self.stats.introduced += 1;
        let _ = self
            .tx
            .push_message(intro.addr, &Message::Introduce(forward));
    }

    /// REJECT NOT_SUBSCRIBED to a KEEPALIVE or NACK from an address with
    /// no subscription ([`Relay::bound`] counted it), if no larger.
    fn not_subscribed(&mut self, from: SocketAddr, len: usize, stream: StreamId) {
        if len >= crate::wire::REJECT_LEN {
            self.reject(from, RejectReason::NotSubscribed, stream);
        }
    }

    fn upstream_message(&mut self, now: Time, from: SocketAddr, msg: &Message<'_>) {
        if let Message::Leave(l) = msg {
            // A LEAVE ends an upstream session only with its id (§11.7).
            let owned = self.streams.iter().any(|s| {
                s.upstream
                    .as_ref()
                    .is_some_and(|u| u.server() == from && u.owns(l.session))
            });
            if !owned {
                if self.is_upstream(from) {
                    self.stats.drop_bad_session += 1;
                } else {
                    self.stats.drop_not_subscribed += 1;
                }
                return;
            }
        }
        for i in 0..self.streams.len() {
            let resume = self.streams[i].window.newest_seq().map(|s| s + 1);
            let Some(up) = &mut self.streams[i].upstream else {
                continue;
            };
            if up.server() != from {
                continue;
            }
            match up.handle(now, msg, resume, &mut self.tx) {
                Some(SessionEvent::Accepted { .. }) => {
                    let id = self.streams[i].window.stream();
                    self.event(RelayEvent::UpstreamSubscribed(from, id));
                }
                Some(SessionEvent::Rejected(r)) => {
                    self.event(RelayEvent::UpstreamRejected(from, r));
                }
                Some(SessionEvent::ServerLeft(_)) | None => {}
            }
        }
    }

    /// Whether `addr` is one of the upstream servers this relay may use.
    pub fn is_upstream(&self, addr: SocketAddr) -> bool {
        self.streams
            .iter()
            .any(|s| s.upstream.as_ref().is_some_and(|u| u.is_server(addr)))
    }

    fn subscribe(&mut self, now: Time, from: SocketAddr, s: &crate::wire::Subscribe<'_>) {
        if self.cookies.check(now, from, &s.cookie).is_err() {
            self.stats.drop_bad_cookie += 1;
            self.reject(from, RejectReason::BadCookie, s.stream);
            return;
        }
        // From here on the address is proven.
        let may_upload = if self.config.require_token {
            match self.check_token(now, from, s) {
                Some(Ok(scope)) => scope.contains(Scope::UPLOAD),
                Some(Err(e)) => {
                    let (counter, reason) = match e {
                        TokenError::Missing => (
                            &mut self.stats.drop_token_missing,
                            RejectReason::TokenRequired,
                        ),
                        TokenError::Expired => (
                            &mut self.stats.drop_token_expired,
                            RejectReason::TokenExpired,
                        ),
                        _ => (
                            &mut self.stats.drop_token_invalid,
                            RejectReason::TokenInvalid,
                        ),
                    };
                    *counter += 1;
                    self.reject(from, reason, s.stream);
                    return;
                }
                None => return,
            }
        } else {
            true
        };
        let existing = self.sub_index.get(&from).copied();
        let host = Host::of(from.ip());
        if existing.is_none()
            && self.sub_hosts.get(host) as usize >= self.config.max_subscriptions_per_ip
        {
            self.stats.drop_source_subscriptions += 1;
            self.reject(from, RejectReason::RateLimited, s.stream);
            return;
        }
        // A relay that takes publishers holds a subscription to a stream
        // that has not gone live yet, so viewers can wait for its start;
        // such a stream counts against the subscriber's host.
        let known = self.stream_index.get(&s.stream).copied();
        let stream = match known {
            Some(i) => i,
            None if self.config.accept_publishers => {
                match self.create_stream(now, s.stream, Some(host)) {
                    Ok(i) => i,
                    Err(r) => {
                        self.stats.count_refusal(r);
                        self.reject(from, r.reject_reason(), s.stream);
                        return;
                    }
                }
            }
            None => {
                self.reject(from, RejectReason::UnknownStream, s.stream);
                return;
            }
        };
        let previous = existing.and_then(|i| self.subs[i].as_ref());
        let over_slots = self.club_slots.is_some_and(|slots| {
            let freed = previous.map_or(0, |p| p.clubs.count_ones());
            self.used_club_slots() - freed + s.clubs.count_ones() > slots
        });
        if (existing.is_none() && self.sub_index.len() >= self.config.max_subscribers) || over_slots
        {
            self.stats.drop_full += 1;
            self.reject(from, RejectReason::Full, s.stream);
            return;
        }
        let (member, upload_kbps, joined, budget) = previous
            .map_or((0, 0, now, RepairBudget::full()), |p| {
                (p.member, p.upload_kbps, p.joined, p.budget)
            });
        // A replacement keeps the session id: the answer to a retransmitted
        // SUBSCRIBE must not change it under the client, and the cookie
        // already proved the address (§11.3).
        let session = match previous {
            Some(p) => p.session,
            None => self.session_ids.draw(from),
        };
        let window = &self.streams[stream].window;
        // Before the run's first chunk, its start (the window's floor).
        let live_edge = window.newest_seq().map_or(window.oldest_seq(), |n| n + 1);
        let start_seq = match s.start_seq {
            // Never `clamp`: a bound the subscriber's numbers cross must
            // not panic.
            Some(seq) => seq.max(window.oldest_seq()).min(live_edge),
            // A keyframe further back than one catch-up can cover would
            // cost a burst of old chunks and still leave a hole: start at
            // the live edge and let the viewer wait for the next one.
            None => window
                .latest_keyframe()
                .filter(|&k| live_edge.saturating_sub(k) <= self.config.nack_limit as u64)
                .unwrap_or(live_edge),
        };
        let sub = Subscriber {
            addr: from,
            session,
            stream,
            clubs: s.clubs,
            start_seq,
            last_heard: now,
            report: None,
            member,
            upload_kbps,
            joined,
            have: None,
            intros: (now, 0),
            may_upload,
            budget,
        };
        let index = match existing {
            Some(i) => {
                self.subs[i] = Some(sub);
                i
            }
            None => {
                let i = match self.free_subs.pop() {
                    Some(i) => {
                        self.subs[i] = Some(sub);
                        i
                    }
                    None => {
                        self.subs.push(Some(sub));
                        self.subs.len() - 1
                    }
                };
                self.sub_index.insert(from, i);
                self.sub_hosts.add(host);
                i
            }
        };
        self.stats.accepted += 1;
        self.event(RelayEvent::SubscriberJoined(from, s.stream));
        let accept = Accept {
            keepalive_ms: u16::try_from(self.config.keepalive_interval.as_millis())
                .unwrap_or(u16::MAX)
                .max(1),
            stream: s.stream,
            session,
            start_seq,
        };
        let _ = self.tx.push_message(from, &Message::Accept(accept));
        if let Some(d) = self.streams[stream].window.descriptor_buf() {
            self.tx.push_shared(from, d);
        }
        // A subscription's first catch-up is free; a resubscription's is a
        // repair like any other.
        self.catch_up(now, index, start_seq, live_edge, existing.is_some());
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.config.subscriber_timeout / 4);
        }
    }

    /// Checks a SUBSCRIBE's token: its scope, or why it is refused; `None`
    /// when the check was dropped by the per-IP rate limit (a signature
    /// check costs about as much as answering a HELLO, so unverified tokens
    /// take from the same budget; the client retries).
    fn check_token(
        &mut self,
        now: Time,
        from: SocketAddr,
        s: &crate::wire::Subscribe<'_>,
    ) -> Option<Result<Scope, TokenError>> {
        let unix_now = self.unix_now(now);
        if let Some(t) = self.tokens.get(s.token) {
            if t.stream != s.stream {
                return Some(Err(TokenError::WrongStream));
            }
            if unix_now >= t.expires {
                return Some(Err(TokenError::Expired));
            }
            return Some(Ok(t.scope));
        }
        // Refusals that need no signature check cost nothing to repeat.
        let parsed = match Token::parse(s.token) {
            Ok(t) if t.stream == s.stream && unix_now < t.expires => t,
            _ => {
                return Some(
                    Token::verify(s.token, &s.stream, Scope::WATCH, unix_now).map(|t| t.scope),
                );
            }
        };
        if !self.limiter.allow(now, from.ip()) {
            self.stats.drop_rate_limited += 1;
            return None;
        }
        let checked = Token::verify(s.token, &s.stream, Scope::WATCH, unix_now);
        if checked.is_ok() {
            self.tokens.insert(s.token, parsed);
        }
        Some(checked.map(|t| t.scope))
    }

    /// Answers a PEERS request with up to [`MAX_PEERS`] members of `club`,
    /// sampled at random. An asker that is itself a member of `club` gets
    /// only members that joined before it: club links then always run
    /// from older to newer members, so they never form a cycle cut off
    /// from the relay.
    fn answer_peers(&mut self, now: Time, from: SocketAddr, sub: usize, club: u8) {
        let Some(s) = &self.subs[sub] else { return };
        let (stream, joined, asker_member) = (s.stream, s.joined, s.member);
        let mut peers = Peers::new(self.streams[stream].window.stream(), s.session, club);
        let bit = 1u64.checked_shl(u32::from(club)).unwrap_or(0);
        let older_only = asker_member & bit != 0;
        let mut chosen = [from; MAX_PEERS];
        let mut seen = 0usize;
        for i in 0..self.subs.len() {
            let Some(other) = &self.subs[i] else { continue };
            let eligible = other.stream == stream
                && other.addr != from
                && other.member & bit != 0
                && (!older_only || (other.joined, other.addr) < (joined, from));
            if !eligible {
                continue;
            }
            let addr = other.addr;
            // Reservoir sampling: every eligible member equally likely.
            if seen < MAX_PEERS {
                chosen[seen] = addr;
            } else {
                let j = (self.next_random() % (seen as u64 + 1)) as usize;
                if let Some(slot) = chosen.get_mut(j) {
                    *slot = addr;
                }
            }
            seen += 1;
        }
        for &addr in chosen.iter().take(seen.min(MAX_PEERS)) {
            peers.push(addr);
        }
        let answer = Message::Peers(peers);
        let mut budget = self.repair_budget(now, sub);
        let paid = budget.as_mut().is_none_or(|b| b.spend(answer.buffer_len()));
        self.settle_repair(sub, budget, !paid);
        if paid {
            let _ = self.tx.push_message(from, &answer);
        }
    }

    fn remove_subscriber(&mut self, index: usize, reason: LeaveReason, tell: bool) {
        let Some(sub) = self.subs.get_mut(index).and_then(Option::take) else {
            return;
        };
        self.sub_index.remove(&sub.addr);
        self.sub_hosts.remove(Host::of(sub.addr.ip()));
        self.free_subs.push(index);
        if tell {
            let leave = Leave {
                reason,
                stream: self.streams[sub.stream].window.stream(),
                session: sub.session,
            };
            let _ = self.tx.push_message(sub.addr, &Message::Leave(leave));
        }
        self.event(RelayEvent::SubscriberLeft(sub.addr, reason));
    }

    /// NACKs to the upstream relay the manifests of blocks whose chunks
    /// came without them.
    fn nack_manifests(&mut self, now: Time) {
        if self.next_manifest_nack.is_none_or(|t| now < t) {
            return;
        }
        self.next_manifest_nack = None;
        for s in &mut self.streams {
            let Some(up) = &s.upstream else { continue };
            if !up.subscribed() {
                continue;
            }
            let mut nack = Nack::new(s.window.stream(), up.id());
            s.awaiting.retain(|_, a| a.nacks < MANIFEST_NACK_TRIES);
            for (&block, a) in &mut s.awaiting {
                let due = now >= a.noticed + MANIFEST_NACK_AFTER
                    && a.last_nack.is_none_or(|t| now >= t + MANIFEST_NACK_EVERY);
                if due {
                    let entry = crate::wire::NackEntry {
                        kind: NackKind::Manifests,
                        start: block,
                        len: 1,
                    };
                    if !nack.push(entry) {
                        break;
                    }
                    a.nacks += 1;
                    a.last_nack = Some(now);
                }
            }
            if !nack.entries().is_empty() {
                self.stats.manifest_nacks += 1;
                let _ = self.tx.push_message(up.server(), &Message::Nack(nack));
            }
            if !s.awaiting.is_empty() {
                let next = now + MANIFEST_NACK_AFTER;
                self.next_manifest_nack =
                    Some(self.next_manifest_nack.map_or(next, |t| t.min(next)));
            }
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
                    stream: stream_id,
                    session: 0, // the session stamps its own
                    highest_seq: resume.map_or(0, |s| s - 1),
                    lost: 0,
                    fec_repaired: 0,
                    nack_repaired: 0,
                    latency_us: 0,
                };
                up.handle_timeout(now, resume, report, &mut self.tx);
            }
            self.drain_ready(now, i);
        }
        if let Some(t) = self.next_sweep
            && now >= t
        {
            for i in 0..self.subs.len() {
                let expired = self.subs[i]
                    .as_ref()
                    .is_some_and(|s| now - s.last_heard > self.config.subscriber_timeout);
                if expired {
                    self.stats.expired += 1;
                    self.remove_subscriber(i, LeaveReason::Expired, true);
                }
            }
            self.next_sweep =
                (!self.sub_index.is_empty()).then(|| now + self.config.subscriber_timeout / 4);
        }
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

    /// Whether chunk `seq` belongs to one of the clubs in the mask `clubs`
    /// (club 0 until a descriptor says how many there are).
    fn in_clubs(window: &Window, clubs: u64, seq: u64) -> bool {
        let club = window.descriptor().map_or(0, |(d, _)| d.club_of(seq));
        clubs & 1u64.checked_shl(u32::from(club)).unwrap_or(0) != 0
    }

    /// Whether a subscriber wants an item of its stream.
    fn wants(window: &Window, sub: &Subscriber, item: Item, manifests: bool) -> bool {
        match item {
            Item::Descriptor => true,
            Item::Ready(Ready::Data { seq, .. }) => {
                seq >= sub.start_seq
                    && Self::in_clubs(window, sub.clubs, seq)
                    && !sub.have.is_some_and(|h| h.holds(seq))
                    && window.chunk(seq).is_some()
            }
            Item::Ready(Ready::Manifest { block }) => {
                manifests
                    && window
                        .block_span(block)
                        .is_some_and(|(first, k)| first + u64::from(k) > sub.start_seq)
            }
            Item::Ready(Ready::Parity { block, index }) => {
                sub.clubs == u64::MAX
                    && window.parity(block, index).is_some()
                    && window
                        .block_span(block)
                        .is_some_and(|(first, k)| first + u64::from(k) > sub.start_seq)
            }
            Item::Ready(Ready::AwaitingManifest { .. } | Ready::Reset { .. }) => false,
        }
    }

    fn item_buf(window: &Window, item: Item) -> Option<&SharedBuf> {
        match item {
            Item::Descriptor => window.descriptor_buf(),
            Item::Ready(r) => window.ready_buf(r),
        }
    }

    /// The next fan-out item that some subscriber wants.
    fn next_fanout(&mut self) -> Option<(SocketAddr, usize, Item)> {
        loop {
            let (si, stream, item) = self.fanout.next(self.subs.len())?;
            let Some(sub) = &self.subs[si] else {
                self.fanout.skip_subscriber();
                continue;
            };
            let manifests = self.config.forward_manifests;
            if sub.stream == stream
                && Self::wants(&self.streams[stream].window, sub, item, manifests)
            {
                return Some((sub.addr, stream, item));
            }
        }
    }

    /// The next datagram to send: control replies first, then fan-out.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        if !self.tx.is_empty() {
            return self.tx.pop();
        }
        let Some((dst, stream, item)) = self.next_fanout() else {
            return self.tx.pop();
        };
        let payload = Self::item_buf(&self.streams[stream].window, item)?;
        self.stats.forwarded += 1;
        self.stats.forwarded_bytes += payload.len() as u64;
        Some(Transmit { dst, payload })
    }

    /// As [`Relay::poll_transmit`], for IO shells that send asynchronously
    /// or in batches: the datagram comes as a [`SharedBuf`] that stays
    /// valid as long as it is held (window slots are not rewritten while
    /// shared). Fan-out items come subscriber by subscriber, so
    /// consecutive datagrams to one address can go as one GSO train.
    pub fn poll_send(&mut self) -> Option<(SocketAddr, SharedBuf)> {
        if !self.tx.is_empty() {
            return self.tx.pop_shared();
        }
        let (dst, stream, item) = self.next_fanout()?;
        let buf = Self::item_buf(&self.streams[stream].window, item)?;
        self.stats.forwarded += 1;
        self.stats.forwarded_bytes += buf.len() as u64;
        Some((dst, SharedBuf::clone(buf)))
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
