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
//! - **Replacement.** A neighbour silent for [`SILENCE`], one that sends a
//!   forged or corrupted datagram or more than [`REPLAY_LIMIT`] stale
//!   (replayed) chunks a second, one that refuses, and one whose
//!   handshake does not complete within [`HANDSHAKE_TIMEOUT`] (a NAT that
//!   would not open) is dropped, kept out for [`BAN`], and replaced; the
//!   relay serves the club meanwhile. [`Peer::recoveries`] holds, for each
//!   neighbour lost to silence, how long its club stopped flowing.
//! - **NAT.** When it subscribes to a candidate, the peer also asks the
//!   relay to INTRODUCE it; the relay tells the candidate, which sends a
//!   PUNCH back. Together with the HELLO that opened the peer's own NAT,
//!   that lets two peers behind endpoint-independent-mapping NATs reach
//!   each other. Behind a symmetric NAT the handshake never completes and
//!   the relay serves the peer.
//!
//! Run loop: `handle_datagram` / `handle_timeout`, then drain
//! `poll_transmit` and `poll_event`, then wait until `poll_timeout`.

mod bucket;
mod source;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::client::SessionEvent;
use crate::integrity::Rejection;
use crate::relay::{Export, Relay, RelayConfig};
use crate::transmit::{SharedBuf, TxQueue};
use crate::viewer::{Viewer, ViewerConfig, ViewerEvent, ViewerStats};
use crate::window::{Adopt, Ingested, Ready, WindowConfig};
use crate::wire::{
    HAVE_LEN, Have, Introduce, Keepalive, LeaveReason, MAX_CLUBS, Member, Message, MessageType,
    Peers, Punch, peek_type,
};
use crate::{StreamId, Time, Transmit};
use bucket::Bucket;
use source::Source;

/// A neighbour silent this long is replaced.
pub const SILENCE: Duration = Duration::from_millis(1000);
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
/// How often neighbours are checked and looked for.
const TICK: Duration = Duration::from_millis(100);
/// How often MEMBER is repeated to the relay.
const MEMBER_EVERY: Duration = Duration::from_secs(5);
/// How often upload sides beacon a HAVE to their subscribers.
const BEACON_EVERY: Duration = Duration::from_millis(250);
/// Least time between two PEERS requests about one club.
const ASK_EVERY: Duration = Duration::from_secs(2);
/// Least time between two changes of the clubs asked of the relay.
const RELAY_MASK_HOLD: Duration = Duration::from_millis(500);
/// Over how long the stream's DATA rate is measured.
const RATE_SPAN: Duration = Duration::from_secs(2);
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
    /// Download neighbours kept in each club it is a member of.
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
            club_sources: 2,
            max_subscribers: 256,
            cookie_secret: [0; 32],
            nonce_seed: 0x5eed,
            window: WindowConfig {
                capacity: 2048,
                manifest_wait: Duration::from_millis(1000),
            },
            token: Vec::new(),
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
    /// Stream bytes uploaded to other peers.
    pub uploaded_bytes: u64,
    /// Upload datagrams dropped at the limit.
    pub upload_dropped: u64,
    /// Neighbours dropped for silence.
    pub dropped_silent: u64,
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
    viewer: Viewer,
    upload: Relay,
    sources: Vec<Source>,
    tx: TxQueue,
    member: u64,
    clubs: u8,
    candidates: Vec<Vec<SocketAddr>>,
    asked: Vec<Option<Time>>,
    banned: HashMap<SocketAddr, Time>,
    /// Per club: when a silent neighbour was last heard, until the club
    /// flows again.
    lost: Vec<Option<Time>>,
    /// Per club: when its newest chunk arrived.
    last_arrival: Vec<Time>,
    /// DATA bytes verified since `rate_since`, for the on-wire rate.
    rate_bytes: u64,
    rate_since: Time,
    /// The stream's DATA rate on the wire, bits per second, once measured.
    data_bps: u64,
    recoveries: Vec<Duration>,
    bucket: Bucket,
    now: Time,
    next_tick: Time,
    next_member: Time,
    next_beacon: Time,
    mask_changed: Time,
    have: Have,
    rng: u64,
    stats: PeerStats,
    held: Option<(SocketAddr, SharedBuf)>,
    /// The viewer's relay when last looked at.
    relay: SocketAddr,
    /// The viewer moved to another relay, which is owed a MEMBER once it
    /// has accepted the subscription.
    member_owed: bool,
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
        let mut viewer = Viewer::new(vc, now)?;
        viewer.set_export(true);
        let mut upload = Relay::new(RelayConfig {
            window: config.window,
            max_subscribers: config.max_subscribers,
            max_streams: 1,
            cookie_secret: config.cookie_secret,
            accept_publishers: false,
            nonce_seed: config.nonce_seed ^ 0xa11ce,
            forward_manifests: false,
            ..RelayConfig::default()
        });
        // Nothing is admitted until the descriptor tells the bitrate.
        upload.set_club_slots(Some(0));
        let n = usize::from(MAX_CLUBS);
        Ok(Self {
            bucket: Bucket::new(config.upload_limit_bps, UPLOAD_BURST, now),
            have: Have {
                stream: config.stream,
                session: 0, // set per destination
                base: 0,
                mask: 0,
            },
            rng: config.nonce_seed | 1,
            relay: config.relay,
            member_owed: false,
            config,
            viewer,
            upload,
            sources: Vec::new(),
            tx: TxQueue::default(),
            member: 0,
            clubs: 0,
            candidates: vec![Vec::new(); n],
            asked: vec![None; n],
            banned: HashMap::new(),
            lost: vec![None; n],
            last_arrival: vec![now; n],
            rate_bytes: 0,
            rate_since: now,
            data_bps: 0,
            recoveries: Vec::new(),
            now,
            next_tick: now + TICK,
            next_member: now,
            next_beacon: now,
            mask_changed: now,
            stats: PeerStats::default(),
            held: None,
        })
    }

    /// Counters.
    pub fn stats(&self) -> PeerStats {
        let mut s = self.stats;
        s.viewer = self.viewer.stats();
        s.member_clubs = self.member;
        s.working_sources = self.sources.iter().filter(|s| s.working()).count() as u64;
        s.subscribers = self.upload.subscriber_count() as u64;
        s
    }

    /// Counters of the upload side.
    pub fn upload_stats(&self) -> crate::relay::RelayStats {
        self.upload.stats()
    }

    /// For each neighbour dropped for silence: how long its club stopped
    /// flowing, from the neighbour's last datagram to the next new chunk of
    /// the club from anywhere (0 when another neighbour kept it flowing).
    pub fn recoveries(&self) -> &[Duration] {
        &self.recoveries
    }

    /// Its upload limit, bits per second (0: a pure viewer).
    pub fn upload_limit_bps(&self) -> u64 {
        self.config.upload_limit_bps
    }

    /// Addresses of its download neighbours (working or not yet).
    pub fn source_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.sources.iter().map(|s| s.addr)
    }

    /// Addresses of the peers its upload side serves.
    pub fn subscriber_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.upload.subscriber_addrs()
    }

    /// The relay in use now (see [`Viewer::relay`]).
    pub fn relay(&self) -> SocketAddr {
        self.viewer.relay()
    }

    /// Clubs asked of the relay.
    pub fn relay_clubs(&self) -> u64 {
        self.viewer.clubs()
    }

    /// Whether the stream has ended.
    pub fn is_ended(&self) -> bool {
        self.viewer.is_ended()
    }

    /// The next playout event (as a viewer's).
    pub fn poll_event(&mut self) -> Option<ViewerEvent> {
        self.viewer.poll_event()
    }

    /// Leaves: LEAVE to the relay and to every neighbour, and tells the
    /// peers it serves to go elsewhere.
    pub fn close(&mut self) {
        for s in &mut self.sources {
            s.session.close(&mut self.tx);
        }
        self.sources.clear();
        self.viewer.close();
        self.upload.shutdown();
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.held = None;
        if !self.tx.is_empty() {
            return self.tx.pop();
        }
        if self.viewer.has_transmit() {
            return self.viewer.poll_transmit();
        }
        loop {
            let t = self.upload.poll_transmit()?;
            let (dst, buf) = (t.dst, SharedBuf::clone(t.payload));
            if is_stream_data(&buf) {
                if !self.bucket.take(buf.len()) {
                    self.stats.upload_dropped += 1;
                    continue;
                }
                self.stats.uploaded_bytes += buf.len() as u64;
            }
            self.held = Some((dst, buf));
            break;
        }
        let (dst, buf) = self.held.as_ref()?;
        Some(Transmit {
            dst: *dst,
            payload: buf,
        })
    }

    fn source_index(&self, addr: SocketAddr) -> Option<usize> {
        self.sources.iter().position(|s| s.addr == addr)
    }

    /// Handles one received datagram.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.now = now;
        self.bucket.refill(now);
        let Ok(ty) = peek_type(bytes) else {
            // The viewer counts what it cannot read.
            self.viewer.handle_datagram(now, from, bytes);
            return;
        };
        let data = matches!(
            ty,
            MessageType::Data
                | MessageType::Parity
                | MessageType::Manifest
                | MessageType::Descriptor
        );
        let source = self.source_index(from);
        if from == self.viewer.relay() {
            match ty {
                MessageType::Peers | MessageType::Introduce => self.relay_says(bytes),
                _ => {
                    self.viewer.handle_datagram(now, from, bytes);
                    if data {
                        self.count_ingest(now, None, bytes.len());
                    }
                }
            }
        } else if let Some(i) = source
            && data
        {
            self.viewer.handle_datagram(now, from, bytes);
            self.count_ingest(now, Some(i), bytes.len());
        } else if data {
            self.stats.unsolicited += 1;
        } else {
            self.control(now, from, source, ty, bytes);
        }
        self.follow_relay(now);
        self.drain_exports(now, Some(from));
    }

    /// Notices the viewer moving to another relay, and sends that relay
    /// the MEMBER as soon as it has accepted the subscription (it takes
    /// MEMBER from subscribers only) rather than at the next repeat.
    fn follow_relay(&mut self, now: Time) {
        let relay = self.viewer.relay();
        if relay != self.relay {
            self.relay = relay;
            self.member_owed = true;
        }
        if self.member_owed && self.viewer.is_subscribed() {
            self.member_owed = false;
            self.send_member(now);
        }
    }

    /// Tells the relay in use which clubs it is a member of, once it has
    /// picked them (an uploader only).
    fn send_member(&mut self, now: Time) {
        if self.config.upload_limit_bps == 0 || self.clubs == 0 {
            return;
        }
        self.next_member = now + MEMBER_EVERY;
        let member = Member {
            stream: self.config.stream,
            session: self.viewer.session_id(),
            clubs: self.member,
            upload_kbps: self.upload_kbps(),
        };
        let relay = self.viewer.relay();
        self.viewer.push_message(relay, &Message::Member(member));
    }

    /// PEERS and INTRODUCE from the relay, if they carry the session id
    /// of our subscription to it (a spoofer's would steer our PUNCHes and
    /// neighbours).
    fn relay_says(&mut self, bytes: &[u8]) {
        let ours = |stream: StreamId, session| {
            stream == self.config.stream && self.viewer.owns_session(session)
        };
        match Message::parse(bytes) {
            Ok(Message::Peers(p)) if ours(p.stream, p.session) => self.add_candidates(&p),
            Ok(Message::Introduce(i)) if ours(i.stream, i.session) => {
                self.stats.punches_sent += 1;
                let punch = Punch {
                    stream: self.config.stream,
                };
                let _ = self.tx.push_message(i.addr, &Message::Punch(punch));
            }
            _ => {}
        }
    }

    fn add_candidates(&mut self, p: &Peers) {
        let Some(list) = self.candidates.get_mut(usize::from(p.club)) else {
            return;
        };
        for &a in p.addrs() {
            if !list.contains(&a) && list.len() < 64 {
                list.push(a);
            }
        }
    }

    /// Control datagrams from other peers: a neighbour's session replies
    /// go to its session, everything else to the upload side.
    fn control(
        &mut self,
        now: Time,
        from: SocketAddr,
        source: Option<usize>,
        ty: MessageType,
        bytes: &[u8],
    ) {
        let Ok(msg) = Message::parse(bytes) else {
            self.upload.handle_datagram(now, from, bytes);
            return;
        };
        match (&msg, source) {
            (Message::Punch(_), _) => {}
            // A neighbour's answers count only with our session id with it.
            (Message::Peers(p), Some(i))
                if !p.addrs().is_empty() && self.sources[i].session.owns(p.session) =>
            {
                self.add_candidates(p)
            }
            (Message::Challenge(_) | Message::Accept(_) | Message::Reject(_), Some(i)) => {
                self.session_message(now, i, &msg)
            }
            (Message::Leave(l), Some(i)) if l.reason != LeaveReason::Done => {
                self.session_message(now, i, &msg);
            }
            _ => {
                // A HAVE with our session id at the neighbour is its
                // beacon to us: only that shows it alive as our server
                // (a HAVE it sends as our subscriber, with the id our
                // upload side gave it, is about what it holds, for the
                // upload side, and proves nothing about its serving).
                if let (Message::Have(h), Some(i)) = (&msg, source)
                    && self.sources[i].session.owns(h.session)
                {
                    self.sources[i].heard(now);
                    // If it is our subscriber too, what it holds is news
                    // to the upload side, in the session we gave it.
                    if let Some(session) = self.upload.subscriber_session(from) {
                        let mut buf = [0u8; HAVE_LEN];
                        let have = Message::Have(Have { session, ..*h });
                        if have.emit(&mut buf).is_ok() {
                            self.upload.handle_datagram(now, from, &buf);
                        }
                    }
                    return;
                }
                debug_assert!(ty != MessageType::Data);
                self.upload.handle_datagram(now, from, bytes);
            }
        }
    }

    fn session_message(&mut self, now: Time, i: usize, msg: &Message<'_>) {
        let resume = self.viewer.newest_seq().map(|n| n + 1);
        let upload_kbps = self.upload_kbps();
        let src = &mut self.sources[i];
        src.last_heard = now;
        match src.session.handle(now, msg, resume, &mut self.tx) {
            Some(SessionEvent::Accepted { .. }) => {
                let member = Member {
                    stream: self.config.stream,
                    session: src.session.id(),
                    clubs: self.member,
                    upload_kbps,
                };
                let _ = self.tx.push_message(src.addr, &Message::Member(member));
            }
            Some(SessionEvent::Rejected(_) | SessionEvent::ServerLeft(_)) => {
                self.stats.dropped_refused += 1;
                self.drop_source(now, i, Duration::from_secs(10), false);
            }
            None => {}
        }
    }

    fn count_ingest(&mut self, now: Time, source: Option<usize>, len: usize) {
        let Some(result) = self.viewer.take_ingest_result() else {
            return;
        };
        match result {
            Ok(Ingested::Verified | Ingested::Pending | Ingested::Descriptor) => {
                if source.is_some() {
                    self.stats.from_peers_bytes += len as u64;
                } else {
                    self.stats.from_relay_bytes += len as u64;
                }
                if let Some(i) = source {
                    self.sources[i].heard(now);
                }
            }
            Ok(Ingested::Duplicate) => {
                self.stats.duplicate_bytes += len as u64;
                if let Some(i) = source {
                    self.sources[i].heard(now);
                }
            }
            Err(Rejection::Forged | Rejection::Corrupted | Rejection::WrongStream) => {
                if let Some(i) = source {
                    self.stats.poisoned += 1;
                    self.stats.dropped_bad += 1;
                    self.drop_source(now, i, BAN, false);
                }
            }
            Err(Rejection::Replayed | Rejection::Stale) => {
                if let Some(i) = source {
                    self.stats.poisoned += 1;
                    if self.sources[i].stale(now) > REPLAY_LIMIT {
                        self.stats.dropped_bad += 1;
                        self.drop_source(now, i, BAN, false);
                    }
                }
            }
            Err(_) => {}
        }
    }

    /// Hands newly verified items to the upload side and announces new
    /// chunks to the club's other neighbours.
    fn drain_exports(&mut self, now: Time, from: Option<SocketAddr>) {
        while let Some((item, buf)) = self.viewer.poll_export() {
            if let Adopt::Ready(Ready::Data { seq, .. }) = item {
                self.rate_bytes += buf.len() as u64;
                self.announce(seq, from);
                if self.clubs > 0 {
                    let club = (seq % u64::from(self.clubs)) as usize;
                    self.last_arrival[club] = now;
                    if let Some(since) = self.lost[club].take() {
                        self.recoveries.push(now.saturating_since(since));
                    }
                }
            }
            let export = Export {
                stream: self.config.stream,
                item,
                buf,
            };
            self.upload.handle_adopt(now, export);
        }
    }

    fn announce(&mut self, seq: u64, from: Option<SocketAddr>) {
        // Slide the HAVE window so that `seq` is in it.
        if seq >= self.have.base + 64 {
            let shift = seq - 63 - self.have.base;
            self.have.mask = self.have.mask.checked_shr(shift as u32).unwrap_or(0);
            self.have.base = seq - 63;
        }
        if seq >= self.have.base {
            self.have.mask |= 1 << (seq - self.have.base);
        }
        if self.clubs == 0 {
            return;
        }
        let club = (seq % u64::from(self.clubs)) as u8;
        // Each server gets it with its own session id.
        let have = |session| {
            Message::Have(Have {
                session,
                ..self.have
            })
        };
        let mut peers_serve = false;
        for s in &self.sources {
            if s.club == club && s.working() {
                peers_serve = true;
                if Some(s.addr) != from {
                    let _ = self.tx.push_message(s.addr, &have(s.session.id()));
                }
            }
        }
        let relay = self.viewer.relay();
        if peers_serve && Some(relay) != from && self.viewer.clubs() & (1 << club) != 0 {
            let _ = self.tx.push_message(relay, &have(self.viewer.session_id()));
        }
    }

    fn upload_kbps(&self) -> u32 {
        u32::try_from(self.config.upload_limit_bps / 1000).unwrap_or(u32::MAX)
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn drop_source(&mut self, now: Time, i: usize, ban: Duration, silent: bool) {
        let mut s = self.sources.swap_remove(i);
        s.session.close(&mut self.tx);
        self.banned.insert(s.addr, now + ban);
        if silent {
            let club = usize::from(s.club);
            if self.last_arrival[club] > s.last_heard {
                // Another neighbour (or the relay) kept the club flowing.
                self.recoveries.push(Duration::ZERO);
            } else {
                self.lost[club].get_or_insert(s.last_heard);
            }
        }
        if let Some(list) = self.candidates.get_mut(usize::from(s.club)) {
            list.retain(|&a| a != s.addr);
        }
    }

    /// Runs timers: playout, sessions, upload, and neighbour upkeep.
    pub fn handle_timeout(&mut self, now: Time) {
        self.now = now;
        self.bucket.refill(now);
        self.viewer.handle_timeout(now);
        self.follow_relay(now);
        self.upload.handle_timeout(now);
        while self.upload.poll_event().is_some() {}
        let resume = self.viewer.newest_seq().map(|n| n + 1);
        let report = Keepalive {
            stream: self.config.stream,
            session: 0, // each session stamps its own
            highest_seq: resume.map_or(0, |s| s - 1),
            lost: 0,
            fec_repaired: 0,
            nack_repaired: 0,
            latency_us: 0,
        };
        for s in &mut self.sources {
            s.session.handle_timeout(now, resume, report, &mut self.tx);
        }
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.upkeep(now);
        }
        self.drain_exports(now, None);
    }

    /// When `handle_timeout` should next run.
    pub fn poll_timeout(&self) -> Option<Time> {
        let sessions = self.sources.iter().filter_map(|s| s.session.poll_timeout());
        [
            self.viewer.poll_timeout(),
            self.upload.poll_timeout(),
            (self.upload.subscriber_count() > 0 || !self.viewer.is_ended())
                .then_some(self.next_tick),
        ]
        .into_iter()
        .flatten()
        .chain(sessions)
        .min()
    }

    /// Joins clubs once the descriptor is known, keeps neighbours, and
    /// asks the relay for what peers do not bring.
    fn upkeep(&mut self, now: Time) {
        // The upload side outlives playout: beacon to the peers still
        // served, so that they do not take the end for a failure.
        if now >= self.next_beacon {
            self.next_beacon = now + BEACON_EVERY;
            for (addr, session) in self.upload.subscriber_sessions() {
                let have = Have {
                    session,
                    ..self.have
                };
                let _ = self.tx.push_message(addr, &Message::Have(have));
            }
        }
        if self.viewer.is_ended() {
            return;
        }
        let Some((clubs, bitrate)) = self
            .viewer
            .window()
            .descriptor()
            .map(|(d, _)| (d.clubs.max(1), d.bitrate_bps.max(1)))
        else {
            return;
        };
        if self.clubs != clubs {
            self.clubs = clubs;
            self.member = self.pick_clubs(clubs);
        }
        // Upload capacity in club-streams, at the rate DATA takes on the
        // wire: measured over the last few seconds (a peak decays by an
        // eighth per span), and never below the descriptor's bitrate plus
        // DATA headers.
        let span = now.saturating_since(self.rate_since);
        if span >= RATE_SPAN {
            let us = u64::try_from(span.as_micros()).unwrap_or(u64::MAX).max(1);
            let measured = self.rate_bytes.saturating_mul(8_000_000) / us;
            self.data_bps = measured.max(self.data_bps - self.data_bps / 8);
            self.rate_bytes = 0;
            self.rate_since = now;
        }
        // The bitrate is the publisher's word, any u64: saturate.
        let wire_bps = bitrate
            .saturating_add(bitrate / 20)
            .max(self.data_bps)
            .max(1);
        let slots = self
            .config
            .upload_limit_bps
            .saturating_mul(u64::from(clubs))
            / wire_bps;
        self.upload
            .set_club_slots(Some(u32::try_from(slots).unwrap_or(u32::MAX)));
        if now >= self.next_member {
            self.send_member(now);
        }
        self.banned.retain(|_, until| now < *until);
        self.expire_sources(now);
        for club in 0..clubs {
            self.fill_club(now, club);
        }
        self.update_relay_clubs(now);
        for club in 0..clubs {
            let route = self
                .sources
                .iter()
                .find(|s| s.club == club && s.working())
                .map(|s| (s.addr, s.session.id()));
            self.viewer.set_nack_route(club, route);
        }
    }

    fn pick_clubs(&mut self, clubs: u8) -> u64 {
        if self.config.upload_limit_bps == 0 {
            return 0;
        }
        let want = self.config.join_clubs.clamp(1, u32::from(clubs));
        let mut mask = 0u64;
        while mask.count_ones() < want {
            mask |= 1 << (self.next_random() % u64::from(clubs));
        }
        mask
    }

    fn wanted_sources(&self, club: u8) -> usize {
        if self.member & (1 << club) != 0 {
            self.config.club_sources
        } else {
            1
        }
    }

    fn expire_sources(&mut self, now: Time) {
        let mut i = 0;
        while i < self.sources.len() {
            let s = &self.sources[i];
            if !s.working() && now.saturating_since(s.started) > HANDSHAKE_TIMEOUT {
                self.stats.handshake_timeouts += 1;
                self.drop_source(now, i, BAN, false);
            } else if s.working() && now.saturating_since(s.last_heard) > SILENCE {
                self.stats.dropped_silent += 1;
                self.drop_source(now, i, BAN, true);
            } else {
                i += 1;
            }
        }
    }

    fn fill_club(&mut self, now: Time, club: u8) {
        let ci = usize::from(club);
        let have = self.sources.iter().filter(|s| s.club == club).count();
        if have >= self.wanted_sources(club) {
            return;
        }
        // A random candidate that is not already a neighbour or banned.
        let list = &self.candidates[ci];
        let usable: Vec<SocketAddr> = list
            .iter()
            .copied()
            .filter(|a| {
                !self.banned.contains_key(a)
                    && *a != self.config.relay
                    && !self.config.fallbacks.contains(a)
                    && !self.sources.iter().any(|s| s.addr == *a)
            })
            .collect();
        if usable.is_empty() {
            self.ask_peers(now, club);
            return;
        }
        let pick = usable[(self.next_random() % usable.len() as u64) as usize];
        let seed = self.next_random();
        let mut src = Source::new(pick, club, self.config.stream, now, seed);
        src.session.start(now, &mut self.tx);
        self.sources.push(src);
        let intro = Introduce {
            stream: self.config.stream,
            session: self.viewer.session_id(),
            addr: pick,
        };
        let relay = self.viewer.relay();
        self.viewer.push_message(relay, &Message::Introduce(intro));
    }

    fn ask_peers(&mut self, now: Time, club: u8) {
        let ci = usize::from(club);
        if self.asked[ci].is_some_and(|t| now < t + ASK_EVERY) {
            return;
        }
        self.asked[ci] = Some(now);
        let ask = Peers::new(self.config.stream, self.viewer.session_id(), club);
        let relay = self.viewer.relay();
        self.viewer.push_message(relay, &Message::Peers(ask));
        // For the last hop, neighbours' neighbours will do as well.
        if self.member & (1 << club) == 0 {
            let working: Vec<(SocketAddr, u64)> = self
                .sources
                .iter()
                .filter(|s| s.working())
                .map(|s| (s.addr, s.session.id()))
                .collect();
            if !working.is_empty() {
                let (to, session) = working[(self.next_random() % working.len() as u64) as usize];
                let ask = Peers::new(self.config.stream, session, club);
                let _ = self.tx.push_message(to, &Message::Peers(ask));
            }
        }
    }

    fn update_relay_clubs(&mut self, now: Time) {
        let mut mask = 0u64;
        for club in 0..self.clubs {
            let working = self
                .sources
                .iter()
                .filter(|s| s.club == club && s.working())
                .count();
            if working < self.wanted_sources(club) {
                mask |= 1 << club;
            }
        }
        if mask != self.viewer.clubs() && now.saturating_since(self.mask_changed) >= RELAY_MASK_HOLD
        {
            self.mask_changed = now;
            self.viewer.set_clubs(now, mask);
        }
    }
}

/// Whether a datagram is stream data (counted against the upload limit).
fn is_stream_data(bytes: &[u8]) -> bool {
    matches!(
        peek_type(bytes),
        Ok(MessageType::Data | MessageType::Parity | MessageType::Manifest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::PublisherKey;
    use crate::publisher::{Publisher, PublisherConfig};
    use crate::testutil::{addr, emit, t};
    use crate::wire::{Accept, Challenge, Codec, Cookie, Leave};

    const A: &str = "127.0.0.1:7401";
    const B: &str = "127.0.0.1:7402";

    fn sent(p: &mut Peer) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(t) = p.poll_transmit() {
            out.push((t.dst, t.payload.to_vec()));
        }
        out
    }

    fn members_to(out: &[(SocketAddr, Vec<u8>)]) -> Vec<SocketAddr> {
        out.iter()
            .filter(|(_, b)| matches!(Message::parse(b), Ok(Message::Member(_))))
            .map(|(to, _)| *to)
            .collect()
    }

    /// Answers the HELLO to `relay` among `out` and the SUBSCRIBE that
    /// follows; returns what the peer sent after the ACCEPT.
    fn accept(
        p: &mut Peer,
        now: Time,
        relay: SocketAddr,
        out: &[(SocketAddr, Vec<u8>)],
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        let nonce = out
            .iter()
            .find_map(|(to, b)| match Message::parse(b) {
                Ok(Message::Hello(h)) if *to == relay => Some(h.nonce),
                _ => None,
            })
            .expect("a HELLO to the relay");
        let cookie = Cookie {
            issued_at_us: 0,
            tag: [0; 16],
        };
        p.handle_datagram(
            now,
            relay,
            &emit(&Message::Challenge(Challenge { nonce, cookie })),
        );
        sent(p);
        let accept = Accept {
            keepalive_ms: 1000,
            stream: p.config.stream,
            session: 42,
            start_seq: 0,
        };
        p.handle_datagram(now, relay, &emit(&Message::Accept(accept)));
        sent(p)
    }

    #[test]
    fn a_peer_sends_its_member_to_the_relay_its_viewer_moved_to() {
        let config = PublisherConfig {
            codec: Codec::Opaque,
            ..PublisherConfig::default()
        };
        let key = PublisherKey::from_seed([5; 32]);
        let publisher = Publisher::new(key, config, vec![addr(A)], t(0)).expect("publisher");
        let mut config = PeerConfig::new(addr(A), publisher.stream_id());
        config.fallbacks = vec![addr(B)];
        let mut p = Peer::new(config, t(0)).expect("peer");
        let out = sent(&mut p);
        accept(&mut p, t(0), addr(A), &out);
        p.handle_datagram(t(10), addr(A), publisher.descriptor());
        // Upkeep picks clubs and tells A.
        let mut out = Vec::new();
        while let Some(now) = p.poll_timeout().filter(|&at| at <= t(200)) {
            p.handle_timeout(now);
            out.extend(sent(&mut p));
        }
        assert_eq!(members_to(&out), [addr(A)]);
        // A shuts down: the viewer moves to B, which gets the MEMBER as
        // soon as it accepts, not at the next repeat.
        let bye = Leave {
            reason: LeaveReason::ShuttingDown,
            stream: p.config.stream,
            session: 42,
        };
        p.handle_datagram(t(300), addr(A), &emit(&Message::Leave(bye)));
        assert_eq!(p.relay(), addr(B));
        let out = sent(&mut p);
        assert!(members_to(&out).is_empty());
        let after = accept(&mut p, t(310), addr(B), &out);
        assert_eq!(members_to(&after), [addr(B)]);
        assert_eq!(p.stats().viewer.relay_changes, 1);
    }
}

#[cfg(test)]
mod binding_tests;
