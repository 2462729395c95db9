//! The viewer: subscribes, verifies, repairs, and plays out in order.
//!
//! Playout starts at the first keyframe at or after the relay's start
//! sequence number (the relay starts a new subscriber at its latest
//! keyframe and sends the window from there). Chunks are released in order
//! as soon as they are contiguous; a missing chunk holds the output back
//! until its deadline, its publisher timestamp (estimated from the next
//! chunk that did arrive) plus the latency budget, and is then given up as
//! a gap. Loss is repaired first by FEC inside the [`Window`]; what FEC
//! cannot rebuild is NACKed, after the block has had time to complete and
//! only while a repair can still arrive before the deadline.
//!
//! A viewer given [`ViewerConfig::fallbacks`] fails over the way a
//! relay's upstream does: when its relay has not accepted the subscription
//! within [`FAILOVER_AFTER`], when a flowing stream from it stops for
//! [`STALL_AFTER`](crate::client::STALL_AFTER), or at once when it leaves (other than at the end of
//! the stream), the viewer subscribes to the next relay in the list
//! (wrapping round), resuming from the next chunk to play. Only the relay
//! in use ([`Viewer::relay`]) is trusted.
//!
//! Run loop: `handle_datagram` / `handle_timeout`, then drain
//! `poll_transmit` and `poll_event`, then wait until `poll_timeout`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use crate::client::{ClientSession, FAILOVER_AFTER, SessionEvent, SessionState};
use crate::failover::ServerList;
use crate::integrity::{Rejection, StreamKey};
use crate::transmit::{SharedBuf, TxQueue};
use crate::window::{Adopt, Ingested, Ready, Window, WindowConfig};
use crate::wire::{
    Keepalive, LeaveReason, MAX_CLUBS, Message, MessageType, Nack, NackEntry, NackKind,
    RejectReason, peek_type,
};
use crate::{StreamId, Time, Transmit};

/// Viewer settings.
#[derive(Debug, Clone)]
pub struct ViewerConfig {
    /// The relay to subscribe to.
    pub relay: SocketAddr,
    /// Further relays, in order of preference, tried after `relay` when
    /// the relay in use fails (empty: stay with `relay`).
    pub fallbacks: Vec<SocketAddr>,
    /// The stream.
    pub stream: StreamId,
    /// Longest a chunk may take from publisher to output.
    pub latency: Duration,
    /// Window sizes.
    pub window: WindowConfig,
    /// Ask for lost chunks that FEC cannot rebuild.
    pub nack: bool,
    /// Access token, empty if none.
    pub token: Vec<u8>,
    /// Seed for handshake nonces (draw it from a random source).
    pub nonce_seed: u64,
    /// Clubs to take from the relay (all, for a plain viewer).
    pub clubs: u64,
    /// After a resubscription, start at the live edge rather than at the
    /// next chunk to play (an ordinary peer NACKs what it lacks instead).
    pub resume_live: bool,
    /// Chunks arrive club by club over different paths (an ordinary
    /// peer): a chunk counts as lost once a later chunk of its own club
    /// has arrived, and is NACKed [`CLUB_REORDER`] after that, with no
    /// wait for FEC.
    pub club_nack: bool,
}

impl ViewerConfig {
    /// Defaults for watching `stream` from `relay`: 500 ms budget, NACK on.
    pub fn new(relay: SocketAddr, stream: StreamId) -> Self {
        Self {
            relay,
            fallbacks: Vec::new(),
            stream,
            latency: Duration::from_millis(500),
            window: WindowConfig {
                capacity: 1024,
                manifest_wait: Duration::from_millis(500),
            },
            nack: true,
            token: Vec::new(),
            nonce_seed: 0x5eed,
            clubs: u64::MAX,
            resume_live: false,
            club_nack: false,
        }
    }
}

/// What the viewer tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerEvent {
    /// The relay accepted the subscription.
    Subscribed {
        /// Where the relay starts.
        start_seq: u64,
    },
    /// The next chunk of the stream, in order.
    Chunk {
        /// Its sequence number.
        seq: u64,
        /// Its bytes.
        payload: Vec<u8>,
        /// Publisher timestamp to output.
        latency: Duration,
    },
    /// Chunks `from..to` were lost: the output has a gap here.
    Gap {
        /// First lost.
        from: u64,
        /// One past the last lost.
        to: u64,
    },
    /// The stream moved to a later run of its publisher (it restarted),
    /// or jumped ahead within its run: what the old run still owed is
    /// given up (a [`ViewerEvent::Gap`] comes first if playout had begun),
    /// and output continues at the new run's first keyframe.
    NewRun {
        /// The run now followed (SPEC §8.1).
        epoch: u64,
    },
    /// The relay refused for good.
    Rejected(RejectReason),
    /// The stream ended; nothing more will come.
    EndOfStream,
    /// The viewer left its relay for the next one in its list and has
    /// started subscribing there.
    RelayChanged {
        /// The relay left.
        from: SocketAddr,
        /// The relay now in use.
        to: SocketAddr,
    },
}

/// What the viewer counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewerStats {
    /// Chunks output.
    pub played: u64,
    /// Bytes output.
    pub played_bytes: u64,
    /// Chunks given up as lost.
    pub lost: u64,
    /// Output chunks rebuilt from parity.
    pub fec_repaired: u64,
    /// Output chunks that arrived after a NACK.
    pub nack_repaired: u64,
    /// NACK datagrams sent.
    pub nacks_sent: u64,
    /// Datagrams refused (all reasons).
    pub rejected: u64,
    /// Of those, refused as forged or corrupted.
    pub rejected_integrity: u64,
    /// Highest latency seen at output, in microseconds.
    pub max_latency_us: u64,
    /// Latest latency at output, in microseconds.
    pub last_latency_us: u64,
    /// Moves to the next relay in the list.
    pub relay_changes: u64,
    /// Times the stream moved to a later run of its publisher (a restart)
    /// or jumped ahead: each a signalled gap.
    pub resets: u64,
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    noticed: Time,
    /// When a later chunk of its club was first seen (`club_nack`).
    overtaken: Option<Time>,
    last_nack: Option<Time>,
    nacks: u8,
}

const NACK_TRIES: u8 = 6;
/// With `club_nack`, how long after a later chunk of its club arrived a
/// missing chunk is NACKed (reordering allowance).
pub const CLUB_REORDER: Duration = Duration::from_millis(20);
const TICK: Duration = Duration::from_millis(10);

/// The relays a viewer may use, and when to leave the one in use: the
/// rules of a relay's upstream list.
#[derive(Debug)]
struct Relays {
    /// `ViewerConfig::relay`, then the fallbacks.
    list: ServerList,
    /// Since when the relay in use has had no working subscription.
    down_since: Option<Time>,
}

impl Relays {
    fn new(config: &ViewerConfig, now: Time) -> Self {
        Self {
            list: ServerList::new(config.relay, &config.fallbacks, config.nonce_seed),
            down_since: Some(now),
        }
    }

    /// Keeps `down_since` in step with the session.
    fn note(&mut self, now: Time, state: SessionState) {
        if state == SessionState::Subscribed {
            if self.down_since.take().is_some() {
                // A (re)subscription starts the stall rule afresh: the
                // stream must flow again before its silence counts, or a
                // relay that took a while to take us back would be left
                // at once.
                self.list.forget_stream();
            }
        } else {
            self.down_since.get_or_insert(now);
        }
    }

    /// When the relay in use is given up, with the session in `state`: a
    /// subscription not working for [`FAILOVER_AFTER`], or a flowing
    /// stream silent for [`STALL_AFTER`](crate::client::STALL_AFTER). None with a single relay or after
    /// a final refusal.
    fn deadline(&self, state: SessionState) -> Option<Time> {
        if !self.list.can_move() || state == SessionState::Closed {
            return None;
        }
        if state == SessionState::Subscribed {
            self.list.stall_deadline(true)
        } else {
            self.down_since.map(|t| t + FAILOVER_AFTER)
        }
    }

    /// Moves to the next relay (wrapping round) and returns it.
    fn next(&mut self, now: Time) -> SocketAddr {
        self.down_since = Some(now);
        self.list.advance()
    }
}

/// A viewer. See the module docs.
#[derive(Debug)]
pub struct Viewer {
    config: ViewerConfig,
    session: ClientSession,
    window: Window,
    tx: TxQueue,
    events: VecDeque<ViewerEvent>,
    start_seq: Option<u64>,
    next_play: Option<u64>,
    started: bool,
    missing: BTreeMap<u64, Missing>,
    awaiting_manifest: BTreeMap<u64, Time>,
    next_tick: Option<Time>,
    ended: bool,
    stats: ViewerStats,
    /// Verified items for an upload side, when exporting.
    export: bool,
    exports: VecDeque<(Adopt, SharedBuf)>,
    /// What ingest did with the last stream datagram.
    last_ingest: Option<Result<Ingested, Rejection>>,
    /// Per club, where a chunk's first NACK goes (else the relay).
    /// Per club: the peer serving it and our session id with it.
    nack_route: [Option<(SocketAddr, u64)>; MAX_CLUBS as usize],
    relays: Relays,
}

impl Viewer {
    /// A viewer that starts its handshake at `now`. Fails if the stream id
    /// is not a valid key.
    pub fn new(config: ViewerConfig, now: Time) -> Result<Self, Rejection> {
        let key = StreamKey::new(config.stream)?;
        let mut tx = TxQueue::default();
        let mut session = ClientSession::new(
            config.relay,
            config.stream,
            config.clubs,
            config.token.clone(),
            config.nonce_seed,
        );
        session.start(now, &mut tx);
        Ok(Self {
            window: Window::new(key, config.window),
            relays: Relays::new(&config, now),
            config,
            session,
            tx,
            events: VecDeque::new(),
            start_seq: None,
            next_play: None,
            started: false,
            missing: BTreeMap::new(),
            awaiting_manifest: BTreeMap::new(),
            next_tick: None,
            ended: false,
            stats: ViewerStats::default(),
            export: false,
            exports: VecDeque::new(),
            last_ingest: None,
            nack_route: [None; MAX_CLUBS as usize],
        })
    }

    /// Makes the viewer queue every item it verifies for
    /// [`Viewer::poll_export`] (an ordinary peer forwards them).
    pub fn set_export(&mut self, on: bool) {
        self.export = on;
    }

    /// The next verified item, with its datagram.
    pub fn poll_export(&mut self) -> Option<(Adopt, SharedBuf)> {
        self.exports.pop_front()
    }

    /// What ingest did with the last DATA, PARITY, MANIFEST or DESCRIPTOR
    /// handed to [`Viewer::handle_datagram`], once.
    pub fn take_ingest_result(&mut self) -> Option<Result<Ingested, Rejection>> {
        self.last_ingest.take()
    }

    /// Changes the clubs taken from the relay: resubscribes.
    pub fn set_clubs(&mut self, now: Time, clubs: u64) {
        if self.config.clubs != clubs && !self.ended {
            self.config.clubs = clubs;
            self.session.set_clubs(clubs);
            self.session.start(now, &mut self.tx);
            self.relays.note(now, self.session.state());
        }
    }

    /// The clubs asked of the relay.
    pub fn clubs(&self) -> u64 {
        self.config.clubs
    }

    /// Sends the first NACK for chunks of `club` to `to` (the peer that
    /// serves it, with the session id it gave us) rather than to the
    /// relay; later tries go to the relay.
    pub fn set_nack_route(&mut self, club: u8, to: Option<(SocketAddr, u64)>) {
        if let Some(slot) = self.nack_route.get_mut(usize::from(club)) {
            *slot = to;
        }
    }

    /// The session id of the subscription to the relay in use (0 before
    /// its first ACCEPT), for an ordinary peer's own messages to it.
    pub(crate) fn session_id(&self) -> u64 {
        self.session.id()
    }

    /// Whether a session message from the relay carrying `session` belongs
    /// to the subscription to it.
    pub(crate) fn owns_session(&self, session: u64) -> bool {
        self.session.owns(session)
    }

    /// Queues a datagram (an ordinary peer's own control messages share
    /// the viewer's queue).
    pub(crate) fn push_message(&mut self, to: SocketAddr, msg: &Message<'_>) {
        let _ = self.tx.push_message(to, msg);
    }

    /// The newest chunk held, if any.
    pub fn newest_seq(&self) -> Option<u64> {
        self.window.newest_seq()
    }

    /// The relay in use now: [`ViewerConfig::relay`] until the viewer
    /// fails over to a fallback.
    pub fn relay(&self) -> SocketAddr {
        self.session.server()
    }

    /// Round-trip time to the relay, smoothed.
    pub fn relay_rtt(&self) -> Duration {
        self.session.rtt
    }

    /// Counters.
    pub fn stats(&self) -> ViewerStats {
        self.stats
    }

    /// The stream's window (for its counters).
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// Whether the stream has ended.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Whether the relay has accepted the subscription.
    pub fn is_subscribed(&self) -> bool {
        self.session.state() == SessionState::Subscribed
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ViewerEvent> {
        self.events.pop_front()
    }

    /// Whether a datagram is waiting for [`Viewer::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.tx.is_empty()
    }

    /// Leaves: a LEAVE to the relay; nothing more is handled.
    pub fn close(&mut self) {
        self.session.close(&mut self.tx);
        self.ended = true;
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.tx.pop()
    }

    fn resume_seq(&self) -> Option<u64> {
        if self.config.resume_live && self.started {
            return self
                .window
                .newest_seq()
                .map(|n| n.saturating_add(1))
                .or(self.next_play);
        }
        self.next_play
    }

    /// Handles one received datagram.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        if self.ended {
            return;
        }
        let ty = match peek_type(bytes) {
            Ok(ty) => ty,
            Err(_) => {
                self.stats.rejected += 1;
                return;
            }
        };
        match ty {
            MessageType::Data
            | MessageType::Parity
            | MessageType::Manifest
            | MessageType::Descriptor => {
                let relay = from == self.relay();
                if relay {
                    self.session.heard(now);
                    self.relays.list.heard(now);
                }
                // A viewer trusts its relay (the one in use, not one it
                // left); an ordinary peer (exporting) has checked that
                // `from` is its relay or a neighbour.
                let trusted = relay || self.export;
                let result = self.window.ingest_from(now, bytes, trusted);
                if self.export
                    && result == Ok(Ingested::Descriptor)
                    && let Some(d) = self.window.descriptor_buf()
                {
                    self.exports
                        .push_back((Adopt::Descriptor, SharedBuf::clone(d)));
                }
                self.last_ingest = Some(result);
                if let Err(r) = result {
                    self.stats.rejected += 1;
                    if matches!(r, Rejection::Forged | Rejection::Corrupted) {
                        self.stats.rejected_integrity += 1;
                    }
                }
                self.drain_window(now);
            }
            _ if from == self.relay() => {
                let Ok(msg) = Message::parse(bytes) else {
                    self.stats.rejected += 1;
                    return;
                };
                let resume = self.resume_seq();
                match self.session.handle(now, &msg, resume, &mut self.tx) {
                    Some(SessionEvent::Accepted { start_seq }) => {
                        if self.start_seq.is_none() {
                            self.start_seq = Some(start_seq);
                            self.next_play = Some(start_seq);
                        }
                        self.events.push_back(ViewerEvent::Subscribed { start_seq });
                    }
                    Some(SessionEvent::Rejected(r)) => {
                        self.events.push_back(ViewerEvent::Rejected(r));
                        // A relay that is going away will not take us.
                        if r == RejectReason::ShuttingDown
                            && self.session.state() != SessionState::Closed
                            && self.relays.list.can_move()
                        {
                            self.fail_over(now);
                        }
                    }
                    Some(SessionEvent::ServerLeft(LeaveReason::EndOfStream)) => self.end(),
                    Some(SessionEvent::ServerLeft(_)) if self.relays.list.can_move() => {
                        self.fail_over(now);
                    }
                    Some(SessionEvent::ServerLeft(_)) | None => {}
                }
                self.relays.note(now, self.session.state());
            }
            _ => self.stats.rejected += 1,
        }
        self.advance(now);
    }

    fn drain_window(&mut self, now: Time) {
        while let Some(r) = self.window.poll_ready() {
            match r {
                Ready::AwaitingManifest { block } => {
                    self.awaiting_manifest.entry(block).or_insert(now);
                }
                Ready::Manifest { block } => {
                    self.awaiting_manifest.remove(&block);
                }
                Ready::Reset {
                    epoch,
                    floor_seq,
                    previous,
                } => self.reset(epoch, floor_seq, previous),
                Ready::Data { .. } | Ready::Parity { .. } => {}
            }
            if self.export
                && !matches!(r, Ready::AwaitingManifest { .. })
                && let Some(buf) = self.window.ready_buf(r)
            {
                self.exports
                    .push_back((Adopt::Ready(r), SharedBuf::clone(buf)));
            }
        }
    }

    /// The window moved to a later run of the publisher (or jumped ahead):
    /// what the old run still owed is a gap, and playout starts again at
    /// the new run's first keyframe, so the output never mixes two runs.
    fn reset(&mut self, epoch: u64, floor_seq: u64, previous: Option<u64>) {
        self.stats.resets += 1;
        self.missing.clear();
        self.awaiting_manifest.clear();
        let Some(next) = self.next_play.filter(|&n| n < floor_seq) else {
            self.events.push_back(ViewerEvent::NewRun { epoch });
            return;
        };
        if self.started {
            // Everything of the old run from the play point on is lost.
            self.stats.lost += previous.map_or(0, |p| (p + 1).saturating_sub(next));
            self.events.push_back(ViewerEvent::Gap {
                from: next,
                to: floor_seq,
            });
        }
        self.next_play = Some(floor_seq);
        self.started = false;
        self.events.push_back(ViewerEvent::NewRun { epoch });
    }

    /// The deadline of a missing chunk: the timestamp of the next chunk
    /// that did arrive, plus the budget.
    fn deadline(&self, seq: u64) -> Option<Time> {
        let newest = self.window.newest_seq()?;
        // Sequence numbers are the publisher's word, up to u64::MAX.
        (seq.saturating_add(1)..=newest.min(seq.saturating_add(4096)))
            .find_map(|s| self.window.chunk(s))
            .map(|c| Time::from_micros(c.timestamp_us) + self.config.latency)
    }

    /// Releases what can be released, gives up what is too late, and notes
    /// what is missing.
    fn advance(&mut self, now: Time) {
        let Some(mut next) = self.next_play else {
            return;
        };
        if !self.started && self.window.newest_seq().is_some() {
            // Before the first keyframe (at the start, or after a new run
            // began long ago) nothing below the window can come any more.
            next = next.max(self.window.oldest_seq());
        }
        loop {
            if self.ended {
                break;
            }
            if let Some(c) = self.window.chunk(next) {
                if !self.started {
                    if !c.keyframe {
                        next += 1;
                        continue;
                    }
                    self.started = true;
                }
                let latency = now.saturating_since(Time::from_micros(c.timestamp_us));
                let payload = c.payload().to_vec();
                let eos = c.end_of_stream;
                self.stats.played += 1;
                self.stats.played_bytes += payload.len() as u64;
                if c.rebuilt {
                    self.stats.fec_repaired += 1;
                } else if self.missing.get(&next).is_some_and(|m| m.nacks > 0) {
                    self.stats.nack_repaired += 1;
                }
                let us = latency.as_micros() as u64;
                self.stats.last_latency_us = us;
                self.stats.max_latency_us = self.stats.max_latency_us.max(us);
                self.events.push_back(ViewerEvent::Chunk {
                    seq: next,
                    payload,
                    latency,
                });
                self.missing.remove(&next);
                next += 1;
                if eos {
                    self.next_play = Some(next);
                    self.end();
                    return;
                }
                continue;
            }
            // `next` is missing. Give it up once its deadline has passed.
            match self.deadline(next) {
                Some(deadline) if now >= deadline => {
                    let newest = self.window.newest_seq().unwrap_or(next);
                    let mut to = next + 1;
                    while to <= newest
                        && self.window.chunk(to).is_none()
                        && self.deadline(to).is_some_and(|d| now >= d)
                    {
                        to += 1;
                    }
                    if self.started {
                        self.stats.lost += to - next;
                        self.events.push_back(ViewerEvent::Gap { from: next, to });
                    }
                    for s in next..to {
                        self.missing.remove(&s);
                    }
                    next = to;
                }
                _ => break,
            }
        }
        self.next_play = Some(next);
        // Note what is missing between the play point and the newest chunk.
        if let Some(newest) = self.window.newest_seq() {
            let lo = next.max(newest.saturating_sub(self.window_span()));
            for s in lo..newest {
                if self.window.chunk(s).is_none() {
                    self.missing.entry(s).or_insert(Missing {
                        overtaken: None,
                        noticed: now,
                        last_nack: None,
                        nacks: 0,
                    });
                }
            }
        }
        self.missing = self.missing.split_off(&next);
        if !self.missing.is_empty() || !self.awaiting_manifest.is_empty() {
            self.next_tick.get_or_insert(now + TICK);
        }
    }

    fn window_span(&self) -> u64 {
        self.config.window.capacity as u64 / 2
    }

    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.session.close(&mut self.tx);
            self.events.push_back(ViewerEvent::EndOfStream);
        }
    }

    /// Sends NACKs for what FEC could not rebuild and can still arrive.
    fn send_nacks(&mut self, now: Time) {
        if !self.config.nack || self.session.state() != SessionState::Subscribed {
            return;
        }
        let rtt = self.session.rtt.max(Duration::from_millis(5));
        // Give FEC the block's time plus some jitter before asking.
        let fec_wait = self
            .window
            .descriptor()
            .map_or(Duration::from_millis(50), |(d, _)| {
                Duration::from_millis(u64::from(d.block_ms))
            })
            + rtt / 2;
        let mut nack = Nack::new(self.config.stream, self.session.id());
        let mut run: Option<(u64, u16)> = None;
        let seqs: Vec<u64> = self.missing.keys().copied().collect();
        let club_of = self.window.descriptor().map(|(d, _)| d.clubs.max(1));
        let club_nack = self.config.club_nack.then_some(club_of).flatten();
        let mut routed: Vec<(SocketAddr, Nack)> = Vec::new();
        for seq in seqs {
            let deadline = self.deadline(seq);
            let overtaken = club_nack.is_some_and(|clubs| {
                let step = u64::from(clubs);
                (1..=2).any(|k| {
                    seq.checked_add(k * step)
                        .is_some_and(|s| self.window.chunk(s).is_some())
                })
            });
            let Some(m) = self.missing.get_mut(&seq) else {
                continue;
            };
            if overtaken && m.overtaken.is_none() {
                m.overtaken = Some(now);
            }
            let ripe = match club_nack {
                Some(_) => m.overtaken.is_some_and(|t| now >= t + CLUB_REORDER),
                None => now >= m.noticed + fec_wait,
            };
            let due = ripe
                && m.nacks < NACK_TRIES
                && m.last_nack.is_none_or(|t| now >= t + rtt * 2)
                && deadline.is_none_or(|d| now + rtt < d);
            if !due {
                continue;
            }
            m.nacks += 1;
            m.last_nack = Some(now);
            // A chunk's first NACK goes to the peer serving its club.
            let first = m.nacks == 1;
            if let Some(clubs) = club_of
                && first
                && let Some((to, session)) = self.nack_route[(seq % u64::from(clubs)) as usize]
            {
                let entry = NackEntry {
                    kind: NackKind::Chunks,
                    start: seq,
                    len: 1,
                };
                match routed.iter_mut().find(|(a, _)| *a == to) {
                    Some((_, n)) => {
                        if !n.push(entry) {
                            m.nacks -= 1;
                        }
                    }
                    None => {
                        let mut n = Nack::new(self.config.stream, session);
                        n.push(entry);
                        routed.push((to, n));
                    }
                }
                continue;
            }
            run = match run {
                Some((start, len))
                    if start.checked_add(u64::from(len)) == Some(seq) && len < u16::MAX =>
                {
                    Some((start, len + 1))
                }
                Some((start, len)) => {
                    nack.push(NackEntry {
                        kind: NackKind::Chunks,
                        start,
                        len,
                    });
                    Some((seq, 1))
                }
                None => Some((seq, 1)),
            };
        }
        if let Some((start, len)) = run {
            nack.push(NackEntry {
                kind: NackKind::Chunks,
                start,
                len,
            });
        }
        let wait = Duration::from_millis(30);
        for (&block, noticed) in self.awaiting_manifest.iter_mut() {
            if now >= *noticed + wait {
                *noticed = now + rtt * 2;
                nack.push(NackEntry {
                    kind: NackKind::Manifests,
                    start: block,
                    len: 1,
                });
            }
        }
        if !nack.entries().is_empty() {
            self.stats.nacks_sent += 1;
            let relay = self.relay();
            let _ = self.tx.push_message(relay, &Message::Nack(nack));
        }
        for (to, n) in routed {
            self.stats.nacks_sent += 1;
            let _ = self.tx.push_message(to, &Message::Nack(n));
        }
    }

    fn report(&self) -> Keepalive {
        let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Keepalive {
            stream: self.config.stream,
            session: self.session.id(),
            highest_seq: self.window.newest_seq().unwrap_or(0),
            lost: sat(self.stats.lost),
            fec_repaired: sat(self.stats.fec_repaired),
            nack_repaired: sat(self.stats.nack_repaired),
            latency_us: sat(self.stats.last_latency_us),
        }
    }

    /// Runs timers: handshake, keepalive, NACKs, playout deadlines.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.ended {
            return;
        }
        let resume = self.resume_seq();
        let report = self.report();
        if self
            .relays
            .deadline(self.session.state())
            .is_some_and(|t| now >= t)
        {
            self.fail_over(now);
        } else {
            self.session
                .handle_timeout(now, resume, report, &mut self.tx);
        }
        self.relays.note(now, self.session.state());
        self.window.handle_timeout(now);
        self.drain_window(now);
        if self.next_tick.is_some_and(|t| now >= t) {
            self.next_tick = None;
            self.send_nacks(now);
        }
        // Forget blocks whose manifest came, or that the window gave up on.
        let give_up = self.config.window.manifest_wait * 2;
        let window = &self.window;
        self.awaiting_manifest
            .retain(|&b, &mut t| window.manifest(b).is_none() && now < t + give_up);
        self.advance(now);
    }

    /// When `handle_timeout` should next run.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.ended {
            return None;
        }
        let play = self
            .next_play
            .filter(|&n| self.window.chunk(n).is_none())
            .and_then(|n| self.deadline(n));
        [
            self.session.poll_timeout(),
            self.relays.deadline(self.session.state()),
            self.window.poll_timeout(),
            self.next_tick,
            play,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Leaves the relay in use for the next in the list and starts
    /// subscribing there, from the next chunk to play.
    fn fail_over(&mut self, now: Time) {
        let from = self.relay();
        // A LEAVE in case it still serves us (a stall on the path only).
        self.session.close(&mut self.tx);
        let to = self.relays.next(now);
        self.session = ClientSession::new(
            to,
            self.config.stream,
            self.config.clubs,
            self.config.token.clone(),
            self.relays.list.nonce_seed(),
        );
        self.session.start(now, &mut self.tx);
        self.stats.relay_changes += 1;
        self.events
            .push_back(ViewerEvent::RelayChanged { from, to });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::STALL_AFTER;
    use crate::integrity::{PublisherKey, chunk_hash};
    use crate::publisher::{Publisher, PublisherConfig};
    use crate::testutil::{addr, emit, t};
    use crate::wire::{
        Accept, Challenge, Codec, Cookie, Data, DataFlags, Leave, Manifest, SIGNATURE_LEN,
    };

    const A: &str = "127.0.0.1:7401";
    const B: &str = "127.0.0.1:7402";

    /// The datagrams queued, with their destinations, emptying the queue.
    fn sent(v: &mut Viewer) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(t) = v.poll_transmit() {
            out.push((t.dst, t.payload.to_vec()));
        }
        out
    }

    /// The destinations of the HELLOs among `sent`.
    fn hellos(sent: &[(SocketAddr, Vec<u8>)]) -> Vec<SocketAddr> {
        sent.iter()
            .filter(|(_, b)| matches!(Message::parse(b), Ok(Message::Hello(_))))
            .map(|(to, _)| *to)
            .collect()
    }

    fn events(v: &mut Viewer) -> Vec<ViewerEvent> {
        std::iter::from_fn(|| v.poll_event()).collect()
    }

    /// A publisher of opaque bytes, fed 400 bytes a millisecond.
    struct Feed {
        publisher: Publisher,
    }

    impl Feed {
        fn new() -> Self {
            let config = PublisherConfig {
                codec: Codec::Opaque,
                ..PublisherConfig::default()
            };
            let key = PublisherKey::from_seed([5; 32]);
            let publisher = Publisher::new(key, config, vec![addr(A)], t(0)).expect("publisher");
            Self { publisher }
        }

        fn stream(&self) -> StreamId {
            self.publisher.stream_id()
        }

        /// The datagrams published over `ms`, by the time each was sent.
        fn run(&mut self, ms: std::ops::Range<u64>) -> Vec<(Time, Vec<u8>)> {
            let mut out = Vec::new();
            for step in ms {
                let now = t(step);
                self.publisher.handle_input(now, &[step as u8; 400]);
                if self.publisher.poll_timeout().is_some_and(|at| at <= now) {
                    self.publisher.handle_timeout(now);
                }
                while let Some(tx) = self.publisher.poll_transmit() {
                    out.push((now, tx.payload.to_vec()));
                }
            }
            out
        }
    }

    /// Runs the viewer's timers due up to `now`, then hands it `datagrams`
    /// from `from`; returns the time of the last.
    fn deliver(v: &mut Viewer, from: SocketAddr, datagrams: &[(Time, Vec<u8>)]) -> Time {
        let mut last = Time::ZERO;
        for (now, bytes) in datagrams {
            while let Some(at) = v.poll_timeout().filter(|at| at <= now) {
                v.handle_timeout(at);
            }
            v.handle_datagram(*now, from, bytes);
            last = *now;
        }
        last
    }

    /// Answers the viewer's HELLO to `relay` with a CHALLENGE and its
    /// SUBSCRIBE with an ACCEPT; returns the SUBSCRIBE's start.
    fn accept(v: &mut Viewer, now: Time, relay: SocketAddr, start_seq: u64) -> Option<u64> {
        let out = sent(v);
        answer(v, now, relay, &out, start_seq)
    }

    /// [`accept`], with the HELLO among `out`, sent earlier.
    fn answer(
        v: &mut Viewer,
        now: Time,
        relay: SocketAddr,
        out: &[(SocketAddr, Vec<u8>)],
        start_seq: u64,
    ) -> Option<u64> {
        let nonce = out
            .iter()
            .rev()
            .find_map(|(to, b)| match Message::parse(b) {
                Ok(Message::Hello(h)) if *to == relay => Some(h.nonce),
                _ => None,
            })
            .expect("a HELLO to the relay");
        let cookie = Cookie {
            issued_at_us: 0,
            tag: [0; 16],
        };
        v.handle_datagram(
            now,
            relay,
            &emit(&Message::Challenge(Challenge { nonce, cookie })),
        );
        let resume = sent(v)
            .iter()
            .find_map(|(to, b)| match Message::parse(b) {
                Ok(Message::Subscribe(s)) if *to == relay => Some(s.start_seq),
                _ => None,
            })
            .expect("a SUBSCRIBE to the relay");
        let accept = Accept {
            keepalive_ms: 1000,
            stream: v.config.stream,
            session: 42,
            start_seq,
        };
        v.handle_datagram(now, relay, &emit(&Message::Accept(accept)));
        assert!(v.is_subscribed());
        assert_eq!(v.relay(), relay);
        resume
    }

    /// A viewer of `feed` on A with B as its fallback, subscribed to A.
    fn on_a_with_b(feed: &Feed) -> Viewer {
        let mut config = ViewerConfig::new(addr(A), feed.stream());
        config.fallbacks = vec![addr(B)];
        let mut v = Viewer::new(config, t(0)).expect("viewer");
        assert_eq!(accept(&mut v, t(0), addr(A), 0), None);
        events(&mut v);
        v
    }

    fn leave(v: &Viewer, reason: LeaveReason) -> Vec<u8> {
        emit(&Message::Leave(Leave {
            reason,
            stream: v.config.stream,
            session: 42,
        }))
    }

    #[test]
    fn a_stalled_relay_is_left_for_the_next_after_the_stall_time() {
        let mut feed = Feed::new();
        let mut v = on_a_with_b(&feed);
        let last = deliver(&mut v, addr(A), &feed.run(0..300));
        let played: Vec<u64> = events(&mut v)
            .into_iter()
            .filter_map(|e| match e {
                ViewerEvent::Chunk { seq, .. } => Some(seq),
                _ => None,
            })
            .collect();
        let next = played.last().expect("chunks played") + 1;
        assert_eq!(v.next_play, Some(next));
        // A falls silent. (The session probes it with a KEEPALIVE first.)
        let stall = last + STALL_AFTER;
        let mut now = last;
        while v.relay() == addr(A) {
            now = v.poll_timeout().expect("a timer");
            assert!(now <= stall, "still on A at {now:?}");
            v.handle_timeout(now);
        }
        assert_eq!(now, stall);
        assert_eq!(
            events(&mut v),
            [ViewerEvent::RelayChanged {
                from: addr(A),
                to: addr(B)
            }]
        );
        assert_eq!(v.stats().relay_changes, 1);
        assert!(v.poll_timeout().is_some_and(|at| at > now));
        let out = sent(&mut v);
        assert_eq!(hellos(&out), [addr(B)]);
        // A LEAVE to A, in case only the path to it broke.
        assert!(out.iter().any(|(to, b)| *to == addr(A)
            && matches!(Message::parse(b), Ok(Message::Leave(_)))));
        // B continues from the next chunk to play.
        let resume = answer(&mut v, now, addr(B), &out, next);
        assert_eq!(resume, Some(next));
        assert_eq!(
            events(&mut v),
            [ViewerEvent::Subscribed { start_seq: next }]
        );
        assert_eq!(v.relay(), addr(B));
    }

    #[test]
    fn a_silent_relay_is_left_for_the_next_after_the_failover_time() {
        let stream = PublisherKey::from_seed([5; 32]).stream_id();
        let mut config = ViewerConfig::new(addr(A), stream);
        config.fallbacks = vec![addr(B)];
        let mut v = Viewer::new(config, t(0)).expect("viewer");
        let mut to = hellos(&sent(&mut v));
        let mut now = t(0);
        while v.relay() == addr(A) {
            now = v.poll_timeout().expect("a timer");
            v.handle_timeout(now);
            to.extend(hellos(&sent(&mut v)));
        }
        assert_eq!(now, t(0) + FAILOVER_AFTER);
        assert_eq!(to.last(), Some(&addr(B)));
        assert!(to[..to.len() - 1].iter().all(|&a| a == addr(A)), "{to:?}");
        assert_eq!(
            events(&mut v),
            [ViewerEvent::RelayChanged {
                from: addr(A),
                to: addr(B)
            }]
        );
        // B is silent too: back to A (the list wraps round).
        while v.relay() == addr(B) {
            now = v.poll_timeout().expect("a timer");
            v.handle_timeout(now);
        }
        assert_eq!(now, t(0) + FAILOVER_AFTER * 2);
        assert_eq!(v.relay(), addr(A));
        assert_eq!(v.stats().relay_changes, 2);
    }

    #[test]
    fn a_relay_that_keeps_refusing_is_left_but_a_final_refusal_is_final() {
        let stream = PublisherKey::from_seed([5; 32]).stream_id();
        let reject = |reason| {
            emit(&Message::Reject(crate::wire::Reject {
                reason,
                versions: crate::wire::SUPPORTED_VERSIONS,
                stream,
            }))
        };
        // A REJECT counts only in answer to a SUBSCRIBE (§11.7): the
        // session gets there with A's CHALLENGE.
        let challenge = |v: &mut Viewer, now, out: &[(SocketAddr, Vec<u8>)]| {
            let nonce = out.iter().find_map(|(_, b)| match Message::parse(b) {
                Ok(Message::Hello(h)) => Some(h.nonce),
                _ => None,
            });
            let cookie = Cookie {
                issued_at_us: 0,
                tag: [0; 16],
            };
            if let Some(nonce) = nonce {
                let c = Message::Challenge(Challenge { nonce, cookie });
                v.handle_datagram(now, addr(A), &emit(&c));
            }
            nonce.is_some()
        };
        let mut config = ViewerConfig::new(addr(A), stream);
        config.fallbacks = vec![addr(B)];
        let mut v = Viewer::new(config.clone(), t(0)).expect("viewer");
        // A is full, every time it is asked.
        let mut now = t(0);
        while v.relay() == addr(A) {
            let out = sent(&mut v);
            if challenge(&mut v, now, &out) {
                v.handle_datagram(now, addr(A), &reject(RejectReason::Full));
            }
            now = v.poll_timeout().expect("a timer");
            v.handle_timeout(now);
        }
        assert_eq!(now, t(0) + FAILOVER_AFTER);
        assert!(events(&mut v).contains(&ViewerEvent::RelayChanged {
            from: addr(A),
            to: addr(B)
        }));
        // A token A will never take: no move, as without fallbacks.
        let mut v = Viewer::new(config, t(0)).expect("viewer");
        let out = sent(&mut v);
        assert!(challenge(&mut v, t(10), &out));
        v.handle_datagram(t(10), addr(A), &reject(RejectReason::TokenInvalid));
        assert_eq!(
            events(&mut v),
            [ViewerEvent::Rejected(RejectReason::TokenInvalid)]
        );
        assert_eq!(v.poll_timeout(), None);
        v.handle_timeout(t(10) + FAILOVER_AFTER * 2);
        assert_eq!(v.relay(), addr(A));
        assert_eq!(v.stats().relay_changes, 0);
    }

    #[test]
    fn without_fallbacks_a_silent_relay_is_never_left() {
        let stream = PublisherKey::from_seed([5; 32]).stream_id();
        let mut v = Viewer::new(ViewerConfig::new(addr(A), stream), t(0)).expect("viewer");
        let mut to = hellos(&sent(&mut v));
        let mut now = t(0);
        while now < t(30_000) {
            let next = v.poll_timeout().expect("a timer");
            assert!(next > now, "timer went back: {next:?}");
            now = next;
            v.handle_timeout(now);
            let out = sent(&mut v);
            assert_eq!(hellos(&out).len(), out.len(), "only HELLOs");
            to.extend(hellos(&out));
        }
        assert!(to.len() > 10);
        assert!(to.iter().all(|&a| a == addr(A)));
        assert_eq!(v.relay(), addr(A));
        assert_eq!(v.stats().relay_changes, 0);
        assert!(events(&mut v).is_empty());
    }

    #[test]
    fn a_relay_shutting_down_is_left_at_once() {
        let feed = Feed::new();
        let mut v = on_a_with_b(&feed);
        let bye = leave(&v, LeaveReason::ShuttingDown);
        v.handle_datagram(t(100), addr(A), &bye);
        assert_eq!(v.relay(), addr(B));
        let out = sent(&mut v);
        assert_eq!(hellos(&out), [addr(B)]);
        assert_eq!(
            events(&mut v),
            [ViewerEvent::RelayChanged {
                from: addr(A),
                to: addr(B)
            }]
        );
        assert_eq!(answer(&mut v, t(110), addr(B), &out, 0), Some(0));
    }

    #[test]
    fn the_end_of_the_stream_is_not_a_reason_to_move() {
        let feed = Feed::new();
        let mut v = on_a_with_b(&feed);
        let end = leave(&v, LeaveReason::EndOfStream);
        v.handle_datagram(t(100), addr(A), &end);
        assert_eq!(v.relay(), addr(A));
        assert!(v.is_ended());
        assert_eq!(events(&mut v), [ViewerEvent::EndOfStream]);
        assert_eq!(v.stats().relay_changes, 0);
        assert!(hellos(&sent(&mut v)).is_empty());
        assert_eq!(v.poll_timeout(), None);
    }

    #[test]
    fn stream_data_from_a_relay_left_behind_is_not_trusted() {
        let mut feed = Feed::new();
        let mut v = on_a_with_b(&feed);
        deliver(&mut v, addr(A), &feed.run(0..100));
        let bye = leave(&v, LeaveReason::ShuttingDown);
        v.handle_datagram(t(100), addr(A), &bye);
        assert_eq!(v.relay(), addr(B));
        accept(&mut v, t(100), addr(B), 0);
        // The next block's first DATA, before its MANIFEST.
        let block = feed.run(100..160);
        let data = block
            .iter()
            .find(|(_, b)| peek_type(b) == Ok(MessageType::Data))
            .map(|(_, b)| b.clone())
            .expect("a DATA");
        v.handle_datagram(t(160), addr(A), &data);
        assert_eq!(v.take_ingest_result(), Some(Err(Rejection::Unproven)));
        // Nothing from A counts as B's stream flowing.
        deliver(&mut v, addr(A), &block);
        assert_eq!(v.relays.list.stream_heard(), None);
        assert_eq!(v.relay(), addr(B));
        assert_eq!(v.poll_timeout().map(|at| at > t(160)), Some(true));
        // From B, stream data counts.
        v.handle_datagram(t(161), addr(B), &data);
        assert_eq!(v.relays.list.stream_heard(), Some(t(161)));
    }

    /// Found by the `peer` fuzz target in CI: a missing chunk's deadline
    /// looked at the chunks after it with `seq + 1` and `seq + 4096`,
    /// which overflowed for a stream near the top of the sequence space
    /// (sequence numbers are the publisher's word, up to `u64::MAX`).
    #[test]
    fn a_deadline_near_the_end_of_the_sequence_space_does_not_overflow() {
        let key = PublisherKey::from_seed([9; 32]);
        let stream = key.stream_id();
        let relay = "127.0.0.1:7400".parse().expect("addr");
        let mut viewer = Viewer::new(ViewerConfig::new(relay, stream), Time::ZERO).expect("viewer");
        let seq = u64::MAX - 16;
        let (flags, timestamp_us, payload) = (DataFlags::KEYFRAME, 5_000_000, b"last");
        let hash = chunk_hash(flags, timestamp_us, payload);
        let man = Manifest {
            k: 1,
            m: 0,
            symbol_len: 0,
            stream,
            block: u64::MAX / 2,
            first_seq: seq,
            epoch: 0,
            timestamp_us: 0,
            hashes: &hash,
            signature: [0; SIGNATURE_LEN],
        };
        let mut buf = vec![0; man.buffer_len()];
        let n = man.emit(&mut buf).expect("emit");
        buf.truncate(n);
        key.sign_trailer(&mut buf);
        assert_eq!(
            viewer.window.ingest(Time::ZERO, &buf),
            Ok(Ingested::Verified)
        );
        let data = Data {
            flags: DataFlags::from_bits(flags).expect("flags"),
            club: 0,
            stream,
            seq,
            block: u64::MAX / 2,
            timestamp_us,
            index: 0,
            payload,
        };
        let mut buf = vec![0; data.buffer_len()];
        let n = data.emit(&mut buf).expect("emit");
        assert_eq!(
            viewer.window.ingest(Time::ZERO, &buf[..n]),
            Ok(Ingested::Verified)
        );
        // Every seq from just before the chunk to the very last.
        for missing in (seq - 2..=u64::MAX).rev().take(20) {
            let deadline = viewer.deadline(missing);
            if missing < seq {
                assert_eq!(
                    deadline,
                    Some(Time::from_micros(timestamp_us) + viewer.config.latency)
                );
            } else {
                assert_eq!(deadline, None, "{missing}");
            }
        }
    }
}
