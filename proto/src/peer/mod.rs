//! An ordinary peer: watches like a viewer and uploads part of the stream.
//!
//! The stream is split into clubs (a chunk's club is `seq mod clubs`, from
//! the signed descriptor). A peer with upload capacity joins
//! [`PeerConfig::join_clubs`] clubs, tells its relay so (MEMBER), and from
//! then on:
//!
//! - **Download.** For each club it is a member of it keeps
//!   [`PeerConfig::club_sources`] download neighbours among the club's
//!   members; for every other club, one member of that club serves it the
//!   last hop. A neighbour is a subscription (the usual cookie handshake,
//!   SPEC §6) to one club of another peer's upload side. Candidates come
//!   from the relay (PEERS); a member asking about its own club gets only
//!   members that joined before it, so club links run from older to newer
//!   members and never form a cycle cut off from the relay. For clubs it
//!   is not a member of, it also asks its neighbours (peer exchange).
//! - **Upload.** Every chunk it has verified goes to an embedded
//!   [`Relay`] (as a mirror: [`Relay::handle_adopt`]), which pushes it to
//!   the peers subscribed to that chunk's club: club neighbours and
//!   last-hop viewers alike. The upload side admits subscriptions up to
//!   `upload_limit / (bitrate / clubs)` club-streams and a token bucket
//!   holds it to the limit. It sends no MANIFESTs: every peer takes those
//!   from its relay. A peer never forwards a chunk it has not verified.
//! - **Duplicates.** Each newly verified chunk is announced in a HAVE to
//!   its club's other neighbours (and to the relay if it also serves that
//!   club), which then do not push it. Upload sides send their
//!   subscribers a HAVE every quarter second, which doubles as a liveness
//!   beacon.
//! - **The relay fills in.** The peer asks its relay only for the clubs it
//!   cannot get from peers: a member club with fewer than
//!   `club_sources` working neighbours, any other club with none (a
//!   subscription to no club at all still brings every MANIFEST). A pure
//!   viewer (`upload_limit_bps` 0) joins no club.
//! - **Repair.** A chunk's first NACK goes to the neighbour serving its
//!   club, later ones to the relay, which answers NACKs for every club.
//!   The upload side answers a NACK for chunks it does not hold with a
//!   HAVE of what it holds; a chunk the serving neighbour so says it lacks
//!   is asked of the relay later (the neighbour will push it once its own
//!   repair brings it).
//! - **Replacement.** A neighbour silent for [`SILENCE`], one that beacons
//!   but brings no stream data for [`STARVED`] while the stream flows, one
//!   that sends a
//!   forged or corrupted datagram or more than [`REPLAY_LIMIT`] stale
//!   (replayed) chunks a second, one that refuses, and one whose
//!   handshake does not complete within [`HANDSHAKE_TIMEOUT`] (a NAT that
//!   would not open) is dropped, kept out for [`BAN`], and replaced; the
//!   relay serves the club meanwhile. [`Peer::recoveries`] holds, for each
//!   neighbour lost to silence, how long its club stopped flowing.
//! - **NAT.** Before it subscribes to a candidate, the peer sends it a
//!   PUNCH at IP TTL [`FIRST_PUNCH_TTL`] (it opens the peer's own NAT and
//!   dies on the way), then asks the relay to INTRODUCE it; the relay tells
//!   the candidate, which PUNCHes back, and the peer's HELLO follows that
//!   PUNCH (or [`PUNCH_WAIT`]). So each NAT sees its own host's datagram
//!   first, and two peers behind cone NATs reach each other. A PUNCH that
//!   names the candidate (by the address the relay sees it at) but comes
//!   from elsewhere moves the handshake there (a candidate behind a
//!   symmetric NAT can so upload to an open peer). A
//!   candidate nothing comes back from is given up at [`GIVE_UP`] and not
//!   tried again for [`UNREACHABLE`]; the relay serves the club meanwhile.
//!   Each link that forms is reported ([`Peer::poll_link`]) with the way
//!   it got through ([`Reach`]).
//!
//! The peer composes a viewer's parts ([`Relays`], [`Playout`],
//! [`Repair`]) for its download side, trusting stream data from its
//! neighbours as well as its relay and handing what it verifies to the
//! upload side. Its other jobs each have a file: `neighbours.rs` (finding,
//! judging and replacing download neighbours), `neighbour.rs` (one of
//! them and its subscription), `widen.rs` (asking a neighbour for more
//! clubs, for a peer few can reach), `upload.rs` (the embedded relay, its
//! limit and its HAVEs) and `clubs.rs` (which clubs it joins, and what it
//! asks of its relay).
//!
//! Run loop: `handle_datagram` / `handle_timeout`, then drain
//! `poll_transmit` and `poll_event`, then wait until `poll_timeout`.

mod clubs;
mod neighbour;
mod neighbours;
mod upload;
mod widen;

pub use neighbours::{LinkUp, Reach};

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::integrity::{Rejection, StreamKey, VerifyMemo};
use crate::relay::{Relay, RelayConfig};
use crate::rng::Rng;
use crate::transmit::{SharedBuf, TxQueue};
use crate::viewer::{Playout, Relays, Repair, ViewerConfig, ViewerEvent, ViewerStats, is_stream};
use crate::window::{Adopt, Incoming, Ingested, WindowConfig};
use crate::wire::{Have, Message, MessageType, peek_type};
use crate::{SharedTransmit, StreamId, Time, Transmit};
use clubs::Membership;
use neighbours::Neighbours;
use upload::Upload;

/// A neighbour silent this long is replaced: two of its HAVE beacons
/// (every [`BEACON_EVERY`]) and the club's chunks in between lost in a
/// row. At 1 s, a neighbour that left stopped its club for 1.25 s, and a
/// whole subtree with it, long enough for chunks to miss their deadline.
pub const SILENCE: Duration = Duration::from_millis(500);
/// A working neighbour that has brought no new stream data for this long,
/// while the stream flows, is replaced: it beacons but does not serve (it
/// has lost its own source and not yet noticed, or the club links have
/// closed into a ring cut off from the relay, which nothing else breaks:
/// every member of the ring beacons to the next). Twice [`SILENCE`], so
/// that when a neighbour upstream goes silent the one below it replaces
/// it, and the club flows again down the line, before anyone further down
/// gives up its own working neighbour.
pub const STARVED: Duration = Duration::from_millis(1000);
/// A neighbour whose handshake takes longer is given up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a dropped neighbour is not asked again.
pub const BAN: Duration = Duration::from_secs(30);
/// Stale chunks (older than the window: `Rejection::Replayed`) a neighbour
/// may send in one [`REPLAY_SPAN`] before it is dropped as a replayer. An
/// honest one sends a few at most (a NACK answer that crossed the window's
/// edge); exact copies of chunks still in the window are duplicates, which
/// honest neighbours also send, so they are dropped without blame.
pub const REPLAY_LIMIT: u32 = 16;
/// The span [`REPLAY_LIMIT`] is counted over.
pub const REPLAY_SPAN: Duration = Duration::from_secs(1);
/// The IP TTL of a peer's first PUNCH to a candidate: enough to leave its
/// own NAT, too little to reach the candidate's (a home NAT, then at least
/// one router between any two of them). See SPEC §11.9.
pub const FIRST_PUNCH_TTL: u8 = 2;
/// How long a new neighbour's handshake waits for the candidate's PUNCH
/// before it starts anyway (a candidate that is not introduced, or whose
/// PUNCH is lost).
pub const PUNCH_WAIT: Duration = Duration::from_millis(500);
/// A candidate from which nothing at all (no PUNCH, no answer to our
/// HELLO) has come this long after we chose it is given up: a NAT between
/// us that will not open (a symmetric NAT on either side of a NAT).
/// [`PUNCH_WAIT`] plus a second for the HELLO: a round trip of up to about
/// half a second still gets through.
pub const GIVE_UP: Duration = Duration::from_millis(1500);
/// How long a candidate given up at [`GIVE_UP`] is not tried again: the
/// pair is remembered as one that cannot link, so that nobody waits on it
/// again (NAT mappings and kinds rarely change within a stream).
pub const UNREACHABLE: Duration = Duration::from_secs(300);
/// How often neighbours are checked and looked for.
const TICK: Duration = Duration::from_millis(100);
/// A neighbour asked to serve more clubs is not asked again for this long
/// unless it accepted (after a refusal, from the refusal).
const WIDEN_HOLD: Duration = Duration::from_secs(10);
/// Least time between two MEMBERs that say the upload side has become
/// full or has room again.
const FULL_HOLD: Duration = Duration::from_millis(500);
/// How often MEMBER is repeated to the relay.
const MEMBER_EVERY: Duration = Duration::from_secs(5);
/// How often upload sides beacon a HAVE to their subscribers.
const BEACON_EVERY: Duration = Duration::from_millis(250);
/// Least time between giving clubs back to the relay and the last club
/// added to those asked of it (clubs are added at once). Every moment of
/// it is the relay pushing a club a neighbour also pushes; without it, a
/// neighbour that comes and goes flaps the relay's mask. 500 ms cost
/// swarm_loopback 0.154 -> 0.133 x peers x stream against 200 ms; 0 ms
/// gave 0.110 there but more starved neighbours and stalls in the
/// simulator. Counted from the last change rather than the last add, it
/// also spaced out the clubs a joining peer gives back one after another
/// as its neighbours come up (nothing flaps there).
const RELAY_MASK_HOLD: Duration = Duration::from_millis(200);
/// Over how long the stream's DATA rate is measured.
const RATE_SPAN: Duration = Duration::from_secs(2);
/// The upload side does not answer NACKs with chunks that arrived this
/// recently (see [`RelayConfig::nack_skips_fresh`]): its push may still
/// be in its uplink's queue or on the way. With NACKs sent as soon as a
/// chunk is later than its club usually is (`viewer::CLUB_LATE`), 100 ms
/// (a round trip) gave 6.6-7.7% duplicates in the simulator's 300 peers
/// (seeds 1-3), 200 ms 5.4-6.1% at the same p99, 300 ms more relay
/// traffic (NACKs for real losses passed on to the relay).
const NACK_FRESH: Duration = Duration::from_millis(200);
/// Burst the upload limit allows.
const UPLOAD_BURST: Duration = Duration::from_millis(250);

/// Peer settings.

#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The relay it joins through.
    pub relay: SocketAddr,
    /// Further relays, in order of preference, its viewer fails over to
    /// when the relay in use fails (see [`ViewerConfig::fallbacks`]).
    pub fallbacks: Vec<SocketAddr>,
    /// The stream.
    pub stream: StreamId,
    /// Longest a chunk may take from publisher to output.
    pub latency: Duration,
    /// Upload offered to other peers, bits per second; 0: a pure viewer.
    pub upload_limit_bps: u64,
    /// Clubs to join when uploading (at least 2).
    pub join_clubs: u32,
    /// Download neighbours kept in each club it is a member of. One by
    /// default: a second one pushes every chunk of the club again (the
    /// HAVE that would stop it arrives after it has pushed), which in the
    /// 300-peer swarm cost about a fifth of all stream bytes received in
    /// duplicates and covered 6 of 39 neighbours lost to silence; without
    /// it a lost neighbour's club is NACKed and the relay fills in.
    pub club_sources: usize,
    /// Most peers its upload side serves.
    pub max_subscribers: usize,
    /// Secret for the upload side's cookies (from a secure random source).
    pub cookie_secret: [u8; 32],
    /// Seed for nonces and for picking clubs and neighbours.
    pub nonce_seed: u64,
    /// Window sizes.
    pub window: WindowConfig,
    /// Access token presented to the relay (§11.10), empty if none. Peers'
    /// upload sides ask for none.
    pub token: Vec<u8>,
    /// Successful signature checks shared with other receivers in this
    /// process (a simulator's peers); `None` (the default): every check
    /// runs. See [`VerifyMemo`].
    pub verify_memo: Option<Arc<VerifyMemo>>,
}

impl PeerConfig {
    /// Defaults for watching `stream` through `relay`, uploading up to
    /// 8 Mbit/s.
    pub fn new(relay: SocketAddr, stream: StreamId) -> Self {
        Self {
            relay,
            fallbacks: Vec::new(),
            stream,
            latency: Duration::from_secs(2),
            upload_limit_bps: 8_000_000,
            join_clubs: 2,
            club_sources: 1,
            max_subscribers: 256,
            cookie_secret: [0; 32],
            nonce_seed: 0x5eed,
            window: WindowConfig {
                capacity: 2048,
                manifest_wait: Duration::from_millis(1000),
                ..WindowConfig::default()
            },
            token: Vec::new(),
            verify_memo: None,
        }
    }
}

/// What the peer counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Playout counters.
    pub viewer: ViewerStats,
    /// Bytes of new stream data from the relay.
    pub from_relay_bytes: u64,
    /// Bytes of new stream data from other peers.
    pub from_peers_bytes: u64,
    /// Bytes of stream data that arrived twice.
    pub duplicate_bytes: u64,
    /// Of `from_relay_bytes`, those of DATA and PARITY datagrams: the
    /// stream's payload, without the MANIFESTs and DESCRIPTORs that only
    /// relays send.
    pub from_relay_payload_bytes: u64,
    /// Of `from_peers_bytes`, those of DATA and PARITY datagrams.
    pub from_peers_payload_bytes: u64,
    /// Of `duplicate_bytes`, those of DATA and PARITY datagrams.
    pub duplicate_payload_bytes: u64,
    /// Of `duplicate_payload_bytes`, those the relay sent.
    pub duplicate_from_relay_payload_bytes: u64,
    /// Stream bytes uploaded to other peers.
    pub uploaded_bytes: u64,
    /// Upload datagrams dropped at the limit.
    pub upload_dropped: u64,
    /// Neighbours dropped for silence.
    pub dropped_silent: u64,
    /// Neighbours dropped for bringing no new stream data ([`STARVED`]).
    pub dropped_starved: u64,
    /// Neighbours dropped for a forged or corrupted datagram, or for
    /// replaying stale chunks.
    pub dropped_bad: u64,
    /// Stream datagrams from neighbours that failed verification (forged,
    /// corrupted, wrong stream) or were stale; none is played or forwarded.
    pub poisoned: u64,
    /// Neighbours that refused or left.
    pub dropped_refused: u64,
    /// Neighbours whose handshake never completed.
    pub handshake_timeouts: u64,
    /// Stream datagrams from addresses that are not neighbours, dropped.
    pub unsolicited: u64,
    /// PUNCHes sent on the relay's introduction.
    pub punches_sent: u64,
    /// Candidates given up because nothing came from them within
    /// [`GIVE_UP`] (see [`UNREACHABLE`]).
    pub unreachable: u64,
    /// Working neighbours by how they got through: [`Reach::Direct`],
    /// [`Reach::Punched`], [`Reach::Remapped`].
    pub working_by_reach: [u64; 3],
    /// Clubs it is a member of.
    pub member_clubs: u64,
    /// Neighbours now working.
    pub working_sources: u64,
    /// Peers its upload side now serves.
    pub subscribers: u64,
}

/// An ordinary peer. See the module docs.
#[derive(Debug)]
pub struct Peer {
    config: PeerConfig,
    /// The download side: a viewer's parts.
    relays: Relays,
    playout: Playout,
    repair: Repair,
    /// The download side's datagrams to its relay, sent after `tx`'s.
    relay_tx: TxQueue,
    /// Items the download side verified, for the upload side.
    exports: VecDeque<(Adopt, SharedBuf)>,
    /// The download neighbours and what is known of candidates.
    neighbours: Neighbours,
    /// The upload side.
    upload: Upload,
    /// The clubs joined and told.
    membership: Membership,
    /// Datagrams to neighbours, sent first.
    tx: TxQueue,
    /// A HAVE being filled in, reused.
    have: Have,
    rng: Rng,
    stats: PeerStats,
    next_tick: Time,
}

impl Peer {
    /// A peer that starts joining at `now`. Fails if the stream id is not a
    /// valid key.
    pub fn new(config: PeerConfig, now: Time) -> Result<Self, Rejection> {
        let mut vc = ViewerConfig::new(config.relay, config.stream);
        vc.latency = config.latency;
        vc.window = config.window;
        vc.nonce_seed = config.nonce_seed;
        vc.resume_live = true;
        vc.club_nack = true;
        vc.token = config.token.clone();
        vc.fallbacks = config.fallbacks.clone();
        vc.verify_memo = config.verify_memo.clone();
        let key = StreamKey::new(vc.stream)?.with_memo(vc.verify_memo.clone());
        let mut relay_tx = TxQueue::default();
        let mut upload = Relay::new(RelayConfig {
            window: config.window,
            max_subscribers: config.max_subscribers,
            max_streams: 1,
            cookie_secret: config.cookie_secret,
            accept_publishers: false,
            nonce_seed: config.nonce_seed ^ 0xa11ce,
            forward_manifests: false,
            // A NACK for a chunk that came within a round trip crossed our
            // push of it: answering sends it twice (issue 20: most of the
            // duplicates peers sent each other).
            nack_skips_fresh: Some(NACK_FRESH),
            nack_tells_lack: true,
            verify_memo: config.verify_memo.clone(),
            ..RelayConfig::default()
        });
        // Nothing is admitted until the descriptor tells the bitrate.
        upload.set_club_slots(Some(0));
        Ok(Self {
            neighbours: Neighbours::new(now),
            upload: Upload::new(upload, config.upload_limit_bps, now),
            membership: Membership::new(config.relay, now),
            have: Have {
                stream: config.stream,
                session: 0, // set per destination
                base: 0,
                mask: 0,
            },
            rng: Rng::new(config.nonce_seed),
            relays: Relays::new(&vc, now, &mut relay_tx),
            playout: Playout::new(key, &vc),
            repair: Repair::new(&vc),
            relay_tx,
            exports: VecDeque::new(),
            config,
            tx: TxQueue::default(),
            next_tick: now + TICK,
            stats: PeerStats::default(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> PeerStats {
        let mut s = self.stats;
        s.viewer = self.playout.stats();
        s.member_clubs = self.membership.member;
        s.working_sources = self.neighbours.list.iter().filter(|s| s.working()).count() as u64;
        for n in self.neighbours.list.iter().filter(|s| s.working()) {
            s.working_by_reach[n.reach as usize] += 1;
        }
        s.subscribers = self.upload.relay.subscriber_count() as u64;
        s
    }

    /// Counters of the upload side.
    pub fn upload_stats(&self) -> crate::relay::RelayStats {
        self.upload.relay.stats()
    }

    /// For each neighbour dropped for silence: how long its club stopped
    /// flowing, from the neighbour's last datagram to the next new chunk of
    /// the club from anywhere (0 when another neighbour kept it flowing).
    pub fn recoveries(&self) -> &[Duration] {
        &self.neighbours.recoveries
    }

    /// The next download link that formed, for the user to see.
    pub fn poll_link(&mut self) -> Option<LinkUp> {
        self.neighbours.links.pop_front()
    }

    /// This peer's address as its relay sees it (from the relay's ACCEPT):
    /// where other peers reach it, unless a NAT maps it anew per
    /// destination.
    pub fn reflexive_addr(&self) -> Option<SocketAddr> {
        self.relays.session().observed()
    }

    /// Its upload limit, bits per second (0: a pure viewer).
    pub fn upload_limit_bps(&self) -> u64 {
        self.config.upload_limit_bps
    }

    /// Addresses of its download neighbours (working or not yet).
    pub fn source_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.neighbours.list.iter().map(|s| s.addr)
    }

    /// Working download neighbours and the club each serves.
    pub fn working_sources(&self) -> impl Iterator<Item = (SocketAddr, u8)> + '_ {
        self.neighbours
            .list
            .iter()
            .filter(|s| s.working())
            .flat_map(|s| {
                let clubs = s.clubs();
                (0..crate::wire::MAX_CLUBS)
                    .filter(move |&c| clubs >> c & 1 != 0)
                    .map(move |c| (s.addr, c))
            })
    }

    /// Addresses of the peers its upload side serves.
    pub fn subscriber_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.upload.relay.subscriber_addrs()
    }

    /// The relay in use now (see [`crate::viewer::Viewer::relay`]).
    pub fn relay(&self) -> SocketAddr {
        self.relays.relay()
    }

    /// Clubs asked of the relay.
    pub fn relay_clubs(&self) -> u64 {
        self.relays.clubs()
    }

    /// Whether the stream has ended.
    pub fn is_ended(&self) -> bool {
        self.playout.is_ended()
    }

    /// The next playout event (as a viewer's).
    pub fn poll_event(&mut self) -> Option<ViewerEvent> {
        self.playout.poll_event()
    }

    /// Leaves: LEAVE to the relay and to every neighbour, and tells the
    /// peers it serves to go elsewhere.
    pub fn close(&mut self) {
        for s in &mut self.neighbours.list {
            s.session.close(&mut self.tx);
        }
        self.neighbours.list.clear();
        self.relays.close(&mut self.relay_tx);
        self.playout.close();
        self.upload.relay.shutdown();
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.poll_transmit_shared().map(SharedTransmit::borrowed)
    }

    /// As [`Peer::poll_transmit`], lending the datagram's shared buffer,
    /// which the caller may keep (the chunks it forwards are its window's
    /// buffers, not copies).
    pub fn poll_transmit_shared(&mut self) -> Option<SharedTransmit<'_>> {
        self.upload.held = None;
        if let Some(dst) = self.neighbours.first_punches.pop_front() {
            return Some(SharedTransmit {
                dst,
                payload: &self.neighbours.punch,
                ttl: Some(FIRST_PUNCH_TTL),
            });
        }
        if !self.tx.is_empty() {
            return self.tx.pop_shared();
        }
        if !self.relay_tx.is_empty() {
            return self.relay_tx.pop_shared();
        }
        self.upload.held = self.poll_upload();
        let (dst, buf) = self.upload.held.as_ref()?;
        Some(SharedTransmit {
            dst: *dst,
            payload: buf,
            ttl: None,
        })
    }

    /// Handles one received datagram.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.handle(now, from, Incoming::Borrowed(bytes));
    }

    /// As [`Peer::handle_datagram`], for a datagram in a shared buffer:
    /// stream data it keeps is that buffer rather than a copy (see
    /// [`crate::window::Window::ingest_shared`]), and its upload side
    /// forwards the same buffer.
    pub fn handle_datagram_shared(&mut self, now: Time, from: SocketAddr, buf: &SharedBuf) {
        self.handle(now, from, Incoming::Shared(buf));
    }

    fn handle(&mut self, now: Time, from: SocketAddr, datagram: Incoming<'_>) {
        let bytes = datagram.bytes();
        self.upload.limit.refill(now);
        let Ok(ty) = peek_type(bytes) else {
            // The download side counts what it cannot read.
            if !self.playout.is_ended() {
                self.playout.count_rejected();
            }
            return;
        };
        let data = is_stream(ty);
        let source = self.neighbour_index(from);
        if from == self.relays.relay() {
            match ty {
                MessageType::Peers | MessageType::Introduce => self.relay_says(now, bytes),
                _ if data => {
                    let result = self.download(now, from, datagram);
                    self.count_ingest(now, None, result, ty, bytes.len());
                }
                _ => self.relay_control(now, bytes),
            }
        } else if let Some(i) = source
            && data
        {
            let result = self.download(now, from, datagram);
            self.count_ingest(now, Some(i), result, ty, bytes.len());
        } else if data {
            self.stats.unsolicited += 1;
        } else {
            self.control(now, from, source, ty, bytes);
        }
        self.follow_relay(now);
        self.start_when_live(now);
        self.drain_exports(now, Some(from));
    }

    /// Stream data from the relay or a neighbour (`from` checked: both are
    /// trusted) for the download side; what ingest did, unless playout has
    /// ended.
    fn download(
        &mut self,
        now: Time,
        from: SocketAddr,
        datagram: Incoming<'_>,
    ) -> Option<Result<Ingested, Rejection>> {
        if self.playout.is_ended() {
            return None;
        }
        self.relays.heard_stream(now, from);
        let exports = &mut self.exports;
        let mut export = |item, buf: &SharedBuf| exports.push_back((item, SharedBuf::clone(buf)));
        let result = self
            .playout
            .ingest(now, datagram, true, &mut self.repair, &mut export);
        self.advance(now);
        Some(result)
    }

    /// A session message from the relay, for the download side.
    fn relay_control(&mut self, now: Time, bytes: &[u8]) {
        if self.playout.is_ended() {
            return;
        }
        let Ok(msg) = Message::parse(bytes) else {
            self.playout.count_rejected();
            return;
        };
        self.relays
            .handle(now, &msg, &mut self.playout, &mut self.relay_tx);
        self.advance(now);
    }

    fn advance(&mut self, now: Time) {
        if self.playout.advance(now, &mut self.repair) {
            self.relays.close(&mut self.relay_tx);
        }
    }

    /// Runs timers: playout, sessions, upload, and neighbour upkeep.
    pub fn handle_timeout(&mut self, now: Time) {
        self.upload.limit.refill(now);
        if !self.playout.is_ended() {
            let (relays, playout, repair) = (&mut self.relays, &mut self.playout, &mut self.repair);
            relays.handle_timeout(now, playout, &mut self.relay_tx);
            let exports = &mut self.exports;
            let mut export =
                |item, buf: &SharedBuf| exports.push_back((item, SharedBuf::clone(buf)));
            playout.handle_timeout(now, repair, &mut export);
            repair.handle_timeout(now, playout, relays.session(), &mut self.relay_tx);
            self.advance(now);
        }
        self.follow_relay(now);
        self.upload.relay.handle_timeout(now);
        while self.upload.relay.poll_event().is_some() {}
        self.keep_neighbours_alive(now);
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.upkeep(now);
        }
        self.drain_exports(now, None);
    }

    /// When `handle_timeout` should next run.
    pub fn poll_timeout(&self) -> Option<Time> {
        let download = [
            self.relays.poll_timeout(),
            self.playout.poll_timeout(),
            self.repair.poll_timeout(),
        ];
        let download = download
            .into_iter()
            .flatten()
            .filter(|_| !self.playout.is_ended());
        let sessions = self.neighbours.list.iter().filter_map(|s| {
            s.start_at
                .or_else(|| s.session.poll_timeout_by_tick(self.next_tick))
        });
        [
            self.upload.relay.poll_timeout(),
            (self.upload.relay.subscriber_count() > 0 || !self.playout.is_ended())
                .then_some(self.next_tick),
        ]
        .into_iter()
        .flatten()
        .chain(download)
        .chain(sessions)
        .min()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod binding_tests;

#[cfg(test)]
mod nat_tests;

#[cfg(test)]
mod join_tests;
