//! Repair: asking again for what neither the relay nor FEC delivered.
//!
//! Loss is repaired first by FEC inside the [`Window`](crate::window::Window);
//! what FEC cannot rebuild is NACKed, after the block has had time to
//! complete and only while a repair can still arrive before the chunk's
//! playout deadline. With [`ViewerConfig::club_nack`] (an ordinary peer,
//! whose clubs arrive over different paths) a chunk counts as lost once a
//! later chunk of its own club has arrived, and is NACKed
//! [`CLUB_REORDER`] after that, with no wait for FEC, or once no new chunk
//! at all has come for [`CLUB_SILENT`] (the end of the stream, where
//! nothing follows a club's last chunks), or once it is later than its
//! club's chunks usually are
//! ([`CLUB_LATE`](super::missing::CLUB_LATE)); its first NACK may go to
//! the peer serving its club ([`Repair::set_route`]), one that peer says it
//! lacks too ([`Repair::neighbour_have`]) is asked again later than the
//! others, and its second NACK goes to another neighbour, one whose last
//! HAVE holds it if there is one: only the third goes to the relay. A
//! block whose MANIFEST has not come is NACKed for its MANIFEST.

use std::collections::{BTreeMap, btree_map};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use super::missing::{CLUB_REORDER, CLUB_SILENT, DueContext, Missing, NACK_TRIES, late_at};
use super::{Playout, ViewerConfig};
use crate::client::{ClientSession, SessionState};
use crate::transmit::TxQueue;
use crate::wire::{Have, MAX_CLUBS, Message, Nack, NackEntry, NackKind};
use crate::{StreamId, Time};

/// The least round trip a NACK's timing assumes.
pub(super) const MIN_RTT: Duration = Duration::from_millis(5);
/// The least time between two NACK passes, so that what falls due close
/// together goes in one NACK. A pass runs when something is due (a chunk's
/// first NACK, a retry, a MANIFEST), not on a fixed tick: a peer with a
/// block in flight always awaits its MANIFEST, and a 10 ms tick woke every
/// peer 100 times a second, about 30% of a simulated swarm's events
/// (BENCHMARKS.md, "Issue 20, fourth session").
const TICK: Duration = Duration::from_millis(10);
/// How long a block awaits its MANIFEST before the MANIFEST is NACKed.
const MANIFEST_WAIT: Duration = Duration::from_millis(30);
/// See the module docs.
#[derive(Debug)]
pub(crate) struct Repair {
    stream: StreamId,
    nack: bool,
    club_nack: bool,
    /// How long a block may await its MANIFEST before it is forgotten.
    manifest_give_up: Duration,
    missing: BTreeMap<u64, Missing>,
    awaiting_manifest: BTreeMap<u64, Time>,
    /// The newest chunk held, and since when it has been the newest (for
    /// [`CLUB_SILENT`]).
    front: Option<(u64, Time)>,
    /// The newest chunk a MANIFEST lists, while it is beyond the newest
    /// held: noted missing once the stream has been quiet for
    /// [`CLUB_SILENT`].
    tail: Option<u64>,
    /// When the next NACK pass runs, if anything will fall due.
    next_tick: Option<Time>,
    /// When the last NACK pass ran.
    last_pass: Option<Time>,
    /// The relay session's round trip and FEC's wait, as the last pass
    /// saw them, for working out when the next is due.
    rtt: Duration,
    fec_wait: Duration,
    /// Chunks noted missing since [`Repair::schedule`] last ran.
    fresh: Vec<u64>,
    /// The missing chunks' numbers while a pass walks them (kept to
    /// reuse its allocation).
    scratch_seqs: Vec<u64>,
    /// The tail as the last pass noted it missing, the stream quiet.
    tail_noted: Option<u64>,
    /// Per club, where a chunk's first NACK goes (else the relay): the
    /// peer serving it and our session id with it.
    route: [Option<(SocketAddr, u64)>; MAX_CLUBS as usize],
    /// The newest HAVE from each peer in `route`: where a second NACK
    /// finds the chunk.
    haves: Vec<(SocketAddr, Have)>,
    /// Per club, (smoothed latency, smoothed deviation) of its chunks
    /// (`club_nack`; see [`CLUB_LATE`](super::missing::CLUB_LATE)).
    club_latency: [Option<(Duration, Duration)>; MAX_CLUBS as usize],
}

impl Repair {
    pub(crate) fn new(config: &ViewerConfig) -> Self {
        Self {
            stream: config.stream,
            nack: config.nack,
            club_nack: config.club_nack,
            manifest_give_up: config.window.manifest_wait * 2,
            missing: BTreeMap::new(),
            awaiting_manifest: BTreeMap::new(),
            front: None,
            tail: None,
            next_tick: None,
            last_pass: None,
            rtt: MIN_RTT,
            fec_wait: Duration::from_millis(50) + MIN_RTT / 2,
            fresh: Vec::new(),
            scratch_seqs: Vec::new(),
            tail_noted: None,
            route: [None; MAX_CLUBS as usize],
            haves: Vec::new(),
            club_latency: [None; MAX_CLUBS as usize],
        }
    }

    /// Sends the first NACK for chunks of `club` to `to` (the peer that
    /// serves it, with the session id it gave us) rather than to the
    /// relay. The second try of a chunk whose first went to a peer goes to
    /// the peer serving another club (see [`cross_peer`]); later tries go
    /// to the relay.
    pub(crate) fn set_route(&mut self, club: u8, to: Option<(SocketAddr, u64)>) {
        if let Some(slot) = self.route.get_mut(usize::from(club)) {
            *slot = to;
        }
        let route = &self.route;
        self.haves
            .retain(|(a, _)| route.iter().flatten().any(|(r, _)| r == a));
    }

    /// The window holds chunks of `block` but not its MANIFEST.
    pub(super) fn awaiting_manifest(&mut self, block: u64, now: Time) {
        self.awaiting_manifest.entry(block).or_insert(now);
    }

    /// `block`'s MANIFEST came.
    pub(super) fn manifest_came(&mut self, block: u64) {
        self.awaiting_manifest.remove(&block);
    }

    /// A new run began: nothing of the old one is asked for.
    pub(super) fn clear(&mut self) {
        self.missing.clear();
        self.awaiting_manifest.clear();
    }

    /// `seq` is held (arrived or rebuilt) at `now`: with `club_nack`,
    /// the missing chunks of its club it overtakes are due
    /// [`CLUB_REORDER`] from now.
    pub(super) fn came(&mut self, seq: u64, clubs: u8, now: Time) {
        if !self.club_nack || !self.nack || clubs == 0 {
            return;
        }
        let step = u64::from(clubs);
        for k in 1..=2 {
            if let Some(m) = seq
                .checked_sub(k * step)
                .and_then(|s| self.missing.get_mut(&s))
                && m.overtaken.is_none()
                && m.nacks < NACK_TRIES
            {
                m.overtaken = Some(now);
                self.pull(now + CLUB_REORDER);
            }
        }
    }

    /// `seq` arrived (not rebuilt) `latency` after the publisher stamped
    /// it: its club's usual latency learns from it, unless it was NACKed.
    pub(super) fn arrived(&mut self, seq: u64, clubs: u8, latency: Duration) {
        if !self.club_nack || clubs == 0 || self.was_nacked(seq) {
            return;
        }
        let Some(slot) = self.club_latency.get_mut((seq % u64::from(clubs)) as usize) else {
            return;
        };
        *slot = Some(match *slot {
            None => (latency, latency / 2),
            Some((smooth, deviation)) => {
                let error = latency.abs_diff(smooth);
                ((smooth * 7 + latency) / 8, (deviation * 3 + error) / 4)
            }
        });
    }

    /// `seq` is missing (noted once, at `now`).
    pub(super) fn missing(&mut self, seq: u64, now: Time) {
        if let btree_map::Entry::Vacant(e) = self.missing.entry(seq) {
            e.insert(Missing {
                overtaken: None,
                noticed: now,
                last_nack: None,
                nacks: 0,
                asked: None,
                lacks: false,
            });
            self.fresh.push(seq);
        }
    }

    /// A HAVE from `from`, a neighbour serving some of the stream's clubs
    /// (its answer to a NACK for chunks it lacks, or its beacon), at
    /// `now`: kept, for choosing where second NACKs go, and each missing
    /// chunk whose last NACK went to it and that it does not hold is
    /// missing there too. After a first NACK the chunk is on its way to
    /// that neighbour, and is asked again only
    /// [`LACK_WAIT_HALF_RTTS`](super::missing::LACK_WAIT_HALF_RTTS) half
    /// round trips after it; after a second, it is asked of the
    /// relay now.
    pub(crate) fn neighbour_have(&mut self, now: Time, from: SocketAddr, have: &Have) {
        if self.route.iter().flatten().any(|&(a, _)| a == from) {
            match self.haves.iter_mut().find(|(a, _)| *a == from) {
                Some((_, kept)) if have.base >= kept.base => *kept = *have,
                Some(_) => {}
                None => self.haves.push((from, *have)),
            }
        }
        let end = have.base.saturating_add(64);
        let mut ask_relay = false;
        for (&seq, m) in self.missing.range_mut(have.base..end) {
            if m.asked == Some(from) && !m.lacks && !have.holds(seq) {
                m.lacks = true;
                ask_relay |= m.nacks >= 2;
            }
        }
        if ask_relay {
            self.pull(now);
        }
    }

    /// Whether `seq` was NACKed while missing.
    pub(super) fn was_nacked(&self, seq: u64) -> bool {
        self.missing.get(&seq).is_some_and(|m| m.nacks > 0)
    }

    /// `seqs` were played or given up.
    pub(super) fn forget(&mut self, seqs: Range<u64>) {
        for s in seqs {
            self.missing.remove(&s);
        }
    }

    /// Everything below the play point `next` is past asking for.
    pub(super) fn forget_below(&mut self, next: u64) {
        // Nearly always nothing is below: splitting would rebuild the map.
        if self
            .missing
            .first_key_value()
            .is_some_and(|(&s, _)| s < next)
        {
            self.missing = self.missing.split_off(&next);
        }
    }

    /// The newest chunk a MANIFEST lists, if beyond the newest held.
    pub(super) fn set_tail(&mut self, tail: Option<u64>) {
        self.tail = tail;
    }

    /// Brings the next NACK pass forward to when what changed since the
    /// last call falls due: chunks newly noted missing, blocks awaiting
    /// their MANIFEST (chunks overtaken by their club are pulled in by
    /// [`Repair::came`], the stream going quiet with a tail to note is
    /// [`Repair::quiet_wake`]). The rest was planned by the last pass
    /// ([`Repair::plan`]), so per datagram this looks at what changed, not
    /// at every missing chunk. One thing it does not follow: a chunk that
    /// fills an older gap gives the missing chunks below it an earlier
    /// stamp, and every arrival nudges its club's usual latency, either of
    /// which can make a missing chunk
    /// [`CLUB_LATE`](super::missing::CLUB_LATE) a little sooner; such a
    /// chunk goes at the next pass planned for anything else, or at the
    /// latest [`CLUB_REORDER`] after the next chunk of its club.
    pub(super) fn schedule(&mut self, now: Time, playout: &Playout) {
        let held = playout.window().newest_seq();
        if self.front.map(|(s, _)| s) != held {
            self.front = held.map(|s| (s, now));
        }
        if !self.nack {
            self.fresh.clear();
            self.next_tick = None;
            return;
        }
        let ctx = self.due_context(playout);
        let mut due = self.manifest_due();
        for seq in self.fresh.drain(..) {
            if let Some(m) = self.missing.get_mut(&seq) {
                due = earliest(due, ctx.due(seq, m, now, playout));
            }
        }
        if let Some(at) = due {
            self.pull(at);
        }
    }

    /// Works out the next NACK pass from scratch, after a pass: when the
    /// first missing chunk, block or tail falls due, or none.
    fn plan(&mut self, now: Time, playout: &Playout) {
        self.fresh.clear();
        self.next_tick = None;
        if !self.nack {
            return;
        }
        let window = playout.window();
        let mut due = self.manifest_due();
        let ctx = self.due_context(playout);
        self.missing.retain(|&seq, m| {
            if window.chunk(seq).is_some() {
                // Came: kept until played only if NACKed.
                return m.nacks > 0;
            }
            due = earliest(due, ctx.due(seq, m, now, playout));
            true
        });
        if let Some(at) = due {
            self.pull(at);
        }
    }

    /// When the first block awaiting its MANIFEST is due to NACK it.
    fn manifest_due(&self) -> Option<Time> {
        self.awaiting_manifest
            .values()
            .map(|t| *t + MANIFEST_WAIT)
            .min()
    }

    /// When the stream goes quiet with a tail not yet noted missing: a
    /// timer apart from the passes due, as it moves with every new chunk.
    fn quiet_wake(&self) -> Option<Time> {
        let unnoted = self.nack && self.tail.is_some() && self.tail != self.tail_noted;
        let at = unnoted.then(|| self.quiet_at()).flatten()?;
        Some(self.last_pass.map_or(at, |last| at.max(last + TICK)))
    }

    /// When the stream counts as quiet (no new chunk for
    /// [`CLUB_SILENT`]), if there is a front to count from.
    fn quiet_at(&self) -> Option<Time> {
        self.front.map(|(_, since)| since + CLUB_SILENT)
    }

    /// A copy of what [`DueContext::due`] reads of `self` (a few hundred
    /// bytes, no allocation), so that the missing chunks can be updated
    /// while it is read.
    fn due_context(&self, playout: &Playout) -> DueContext {
        let club_step = self
            .club_nack
            .then(|| playout.window().descriptor())
            .flatten()
            .map(|(d, _)| u64::from(d.clubs.max(1)));
        DueContext {
            club_step,
            club_latency: self.club_latency,
            rtt: self.rtt,
            fec_wait: self.fec_wait,
            quiet_at: self.quiet_at(),
        }
    }

    /// Moves the next pass to `at` if that is sooner, but not sooner than
    /// [`TICK`] after the last pass.
    fn pull(&mut self, at: Time) {
        let at = match self.last_pass {
            Some(last) => at.max(last + TICK),
            None => at,
        };
        self.next_tick = Some(self.next_tick.map_or(at, |t| t.min(at)));
    }

    /// When [`Repair::handle_timeout`] should next run.
    pub(crate) fn poll_timeout(&self) -> Option<Time> {
        earliest(self.next_tick, self.quiet_wake())
    }

    /// Sends the NACKs due, in `session` (to its relay, or first to the
    /// peer routed to), and forgets blocks whose MANIFEST came or that the
    /// window gave up on.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Time,
        playout: &mut Playout,
        session: &ClientSession,
        tx: &mut TxQueue,
    ) {
        if self.poll_timeout().is_some_and(|t| now >= t) {
            self.last_pass = Some(now);
            self.send_nacks(now, playout, session, tx);
            self.plan(now, playout);
        }
        let give_up = self.manifest_give_up;
        let window = playout.window();
        self.awaiting_manifest
            .retain(|&b, &mut t| window.manifest(b).is_none() && now < t + give_up);
    }

    /// Sends NACKs for what FEC could not rebuild and can still arrive.
    fn send_nacks(
        &mut self,
        now: Time,
        playout: &mut Playout,
        session: &ClientSession,
        tx: &mut TxQueue,
    ) {
        if !self.nack || session.state() != SessionState::Subscribed {
            return;
        }
        let window = playout.window();
        let rtt = session.rtt.max(MIN_RTT);
        // Give FEC the block's time plus some jitter before asking.
        let fec_wait = window
            .descriptor()
            .map_or(Duration::from_millis(50), |(d, _)| {
                Duration::from_millis(u64::from(d.block_ms))
            })
            + rtt / 2;
        (self.rtt, self.fec_wait) = (rtt, fec_wait);
        let mut nack = Nack::new(self.stream, session.id());
        let mut run: Option<(u64, u16)> = None;
        let held = window.newest_seq();
        if self.front.map(|(s, _)| s) != held {
            self.front = held.map(|s| (s, now));
        }
        let quiet = self
            .front
            .is_some_and(|(_, since)| now >= since + CLUB_SILENT);
        if quiet && let (Some(tail), Some(held)) = (self.tail, held) {
            // Bounded as a deadline's search is.
            for s in held.saturating_add(1)..=tail.min(held.saturating_add(4096)) {
                self.missing(s, now);
            }
            self.tail_noted = Some(tail);
        }
        let mut seqs = std::mem::take(&mut self.scratch_seqs);
        seqs.clear();
        seqs.extend(self.missing.keys().copied());
        let club_of = window.descriptor().map(|(d, _)| d.clubs.max(1));
        let club_nack = self.club_nack.then_some(club_of).flatten();
        let mut routed: Vec<(SocketAddr, Nack)> = Vec::new();
        for &seq in &seqs {
            // Arrived since it was noted: never asked for again; kept
            // until played only if it was NACKed (for `was_nacked`), so
            // that the next ticks do not look at it again.
            if window.chunk(seq).is_some() {
                if self.missing.get(&seq).is_some_and(|m| m.nacks == 0) {
                    self.missing.remove(&seq);
                }
                continue;
            }
            let stamped = playout.stamped_by(seq);
            let deadline = stamped.map(|t| t + playout.budget());
            let overtaken = club_nack.is_some_and(|clubs| {
                let step = u64::from(clubs);
                (1..=2).any(|k| {
                    seq.checked_add(k * step)
                        .is_some_and(|s| window.chunk(s).is_some())
                })
            });
            let late = club_nack
                .and_then(|clubs| stamped.map(|t| (seq % u64::from(clubs), t)))
                .and_then(|(club, stamped)| late_at(&self.club_latency, club, stamped));
            let Some(m) = self.missing.get_mut(&seq) else {
                continue;
            };
            if overtaken && m.overtaken.is_none() {
                m.overtaken = Some(now);
            }
            let ripe = match club_nack {
                Some(_) => {
                    m.overtaken.is_some_and(|t| now >= t + CLUB_REORDER)
                        || (quiet && now >= m.noticed + CLUB_REORDER)
                        || late.is_some_and(|t| now >= t)
                }
                None => now >= m.noticed + fec_wait,
            };
            let due = ripe
                && m.nacks < NACK_TRIES
                && m.last_nack.is_none_or(|t| now >= t + m.retry_wait(rtt))
                && deadline.is_none_or(|d| now + rtt < d);
            if !due {
                continue;
            }
            let to = match (m.nacks, m.asked, club_of) {
                // The first to the peer serving its club.
                (0, _, Some(clubs)) => self.route[(seq % u64::from(clubs)) as usize],
                (1, Some(asked), Some(clubs)) => {
                    cross_peer(&self.route, &self.haves, seq, clubs, asked)
                }
                _ => None,
            };
            let before = *m;
            m.nacks += 1;
            m.last_nack = Some(now);
            m.asked = to.map(|(a, _)| a);
            m.lacks = false;
            if let Some((to, session)) = to {
                let entry = NackEntry {
                    kind: NackKind::Chunks,
                    start: seq,
                    len: 1,
                };
                match routed.iter_mut().find(|(a, _)| *a == to) {
                    Some((_, n)) => {
                        if !n.push(entry) {
                            // No room left in this NACK: not sent after
                            // all, and tried again after the usual wait.
                            *m = Missing {
                                last_nack: m.last_nack,
                                ..before
                            };
                        }
                    }
                    None => {
                        let mut n = Nack::new(self.stream, session);
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
        self.scratch_seqs = seqs;
        if let Some((start, len)) = run {
            nack.push(NackEntry {
                kind: NackKind::Chunks,
                start,
                len,
            });
        }
        for (&block, noticed) in self.awaiting_manifest.iter_mut() {
            if now >= *noticed + MANIFEST_WAIT {
                *noticed = now + rtt * 2;
                nack.push(NackEntry {
                    kind: NackKind::Manifests,
                    start: block,
                    len: 1,
                });
            }
        }
        if !nack.entries().is_empty() {
            playout.count_nack();
            let _ = tx.push_message(session.server(), &Message::Nack(nack));
        }
        for (to, n) in routed {
            playout.count_nack();
            let _ = tx.push_message(to, &Message::Nack(n));
        }
    }
}

/// Where the second NACK for `seq` goes, its first having gone to
/// `asked`: the peer serving another of the `clubs` (walking up from the
/// chunk's own, so that the load spreads), the first whose newest HAVE
/// holds it, else the first at all; none if no other peer serves us. That
/// peer is on another path from the relay, which a loss above the serving
/// neighbour did not cut: in 10,000 peers x 30 s it held the chunk so
/// often that the relays' NACK answers fell from 616,000 to 50,000
/// (BENCHMARKS.md, "Issue 20, twelfth session").
fn cross_peer(
    route: &[Option<(SocketAddr, u64)>],
    haves: &[(SocketAddr, Have)],
    seq: u64,
    clubs: u8,
    asked: SocketAddr,
) -> Option<(SocketAddr, u64)> {
    let clubs = usize::from(clubs.max(1));
    let club = (seq % clubs as u64) as usize;
    let mut others = (1..clubs)
        .filter_map(|k| route.get((club + k) % clubs).copied().flatten())
        .filter(|&(a, _)| a != asked);
    let first = others.next()?;
    let holds = |a: SocketAddr| haves.iter().any(|(h, have)| *h == a && have.holds(seq));
    if holds(first.0) {
        return Some(first);
    }
    Some(others.find(|&(a, _)| holds(a)).unwrap_or(first))
}

fn earliest(a: Option<Time>, b: Option<Time>) -> Option<Time> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
