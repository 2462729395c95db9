//! Download neighbours: finding them, judging them, replacing them.
//!
//! A neighbour is a subscription (the usual cookie handshake) to one club
//! of another peer's upload side. Candidates come from the relay's PEERS
//! (and, for the last hop, from neighbours'); the relay is asked to
//! INTRODUCE us to each, and answers a candidate's INTRODUCE with a PUNCH.
//! A neighbour silent for [`SILENCE`], one that sends a forged or
//! corrupted datagram or more than [`REPLAY_LIMIT`] stale chunks in a
//! [`REPLAY_SPAN`], one that refuses, and one whose handshake does not
//! complete within [`HANDSHAKE_TIMEOUT`] is dropped, kept out for [`BAN`],
//! and replaced. A candidate that sends nothing at all within [`GIVE_UP`]
//! (no PUNCH, no answer: a NAT between us that cannot be opened) is given
//! up and not tried again for [`UNREACHABLE`].
//!
//! A candidate's PUNCH (it names the candidate by the address the relay
//! sees it at) that comes from another address, before the candidate has
//! answered us, moves the neighbour there: the candidate's NAT gave it a
//! new mapping toward us (a symmetric NAT, or one that had to move the
//! port), and only that mapping lets our HELLO in.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::neighbour::Neighbour;
use super::{
    BAN, GIVE_UP, HANDSHAKE_TIMEOUT, PUNCH_WAIT, Peer, REPLAY_LIMIT, SILENCE, STARVED, UNREACHABLE,
    WIDEN_HOLD,
};
use crate::client::{ClientSession, SessionEvent};
use crate::integrity::Rejection;
use crate::transmit::SharedBuf;
use crate::window::Ingested;
use crate::wire::MAX_CLUBS;
use crate::wire::{
    HAVE_LEN, Have, Introduce, Keepalive, LeaveReason, Member, Message, MessageType, Peers, Punch,
};
use crate::{StreamId, Time};

/// Least time between two PEERS requests about one club.
pub(super) const ASK_EVERY: Duration = Duration::from_secs(2);
/// The same while the club has no candidate at all: a peer that joins
/// among the first finds few members, and asking again soon gets it a
/// neighbour soon after others join (the NAT lab's goal is one within 3 s
/// of joining), and at the start of a stream, when every peer asks before
/// any has told the relay its clubs, it shortens the time the relay
/// serves everyone everything (1 s -> 250 ms: swarm_loopback 0.164 ->
/// 0.154 x peers x stream). So does a club whose candidates are all of
/// no use (banned, or serving us another club already). Asking this
/// often with candidates in hand only churns neighbours (in the swarm
/// snapshot: more refusals, more duplicates).
pub(super) const ASK_EMPTY: Duration = Duration::from_millis(250);
/// Random candidates a member compares to choose its neighbour in its
/// own club (the oldest of them). 8 rather than 4: in 10,000 peers x
/// 30 s, p50 / p99 770 / 1210 -> 710 / 1120 ms, the same offload and
/// duplicates within 0.2 points, refusals 28,000 -> 32,000. 16 once
/// last-hop viewers take the youngest of [`LEAF_PICKS`] (fourteenth
/// session): with 6 clubs in 10,000 peers x 20 s, p99 1080 -> 1050 ms
/// at the same offload.
const CLUB_PICKS: usize = 16;
/// Random candidates a last-hop viewer (a club it is not a member of)
/// compares, taking the youngest: old members sit near the top of their
/// club's tree, and a viewer that takes one of their slots sends the next
/// member a level down. With 6 clubs in 10,000 peers x 20 s: uniformly
/// random p99 1070 ms, useful offload 89.0%, 30,800 refusals; youngest
/// of 2: 1080 ms, 89.9%, 20,300; of 4: 1080 ms, 90.4%, 15,800; oldest of
/// 2 (the other way): 1030 ms, 87.9%, 44,100.
const LEAF_PICKS: usize = 4;
/// Most links kept for [`Peer::poll_link`].
const LINKS_KEPT: usize = 64;

/// The download neighbours, and what the peer knows of the candidates.
#[derive(Debug)]
pub(super) struct Neighbours {
    pub(super) list: Vec<Neighbour>,
    /// Per club: candidates the relay (or a neighbour) named.
    pub(super) candidates: Vec<Vec<SocketAddr>>,
    /// Per club: when candidates were last asked for.
    pub(super) asked: Vec<Option<Time>>,
    /// Dropped neighbours and when they may be asked again.
    pub(super) banned: HashMap<SocketAddr, Time>,
    /// Per club: when a silent neighbour was last heard, until the club
    /// flows again.
    pub(super) lost: Vec<Option<Time>>,
    /// Per club: when its newest chunk arrived.
    pub(super) last_arrival: Vec<Time>,
    /// See [`Peer::recoveries`].
    pub(super) recoveries: Vec<Duration>,
    /// Candidates owed a first PUNCH at [`super::FIRST_PUNCH_TTL`].
    pub(super) first_punches: VecDeque<SocketAddr>,
    /// Our PUNCH, encoded anew for each new candidate (its `seen_as` is
    /// known once the relay has accepted us).
    pub(super) punch: SharedBuf,
    /// Links that formed, for [`Peer::poll_link`]: the newest
    /// [`LINKS_KEPT`], for an owner that does not ask.
    pub(super) links: VecDeque<LinkUp>,
}

/// How a download link got through (SPEC §11.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reach {
    /// The candidate answered our HELLO without its PUNCH reaching us
    /// first: no NAT of ours in the way, or one that our own datagrams
    /// opened (a symmetric NAT toward an open candidate).
    Direct,
    /// The candidate's PUNCH arrived from the address the relay named,
    /// and the handshake followed.
    Punched,
    /// The candidate's PUNCH arrived from another port of its address: its
    /// NAT maps it anew toward us, and the handshake went there.
    Remapped,
}

/// A download neighbour's subscription was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkUp {
    /// The neighbour, at the address the link uses.
    pub addr: SocketAddr,
    /// The club it serves us.
    pub club: u8,
    /// From choosing the candidate to its ACCEPT.
    pub after: Duration,
    /// How the link got through.
    pub reach: Reach,
}

impl Neighbours {
    pub(super) fn new(now: Time) -> Self {
        let n = usize::from(MAX_CLUBS);
        Self {
            list: Vec::new(),
            candidates: vec![Vec::new(); n],
            asked: vec![None; n],
            banned: HashMap::new(),
            lost: vec![None; n],
            last_arrival: vec![now; n],
            recoveries: Vec::new(),
            first_punches: VecDeque::new(),
            punch: SharedBuf::default(),
            links: VecDeque::new(),
        }
    }
}

impl Peer {
    pub(super) fn neighbour_index(&self, addr: SocketAddr) -> Option<usize> {
        self.neighbours.list.iter().position(|s| s.addr == addr)
    }

    /// PEERS and INTRODUCE from the relay, if they carry the session id
    /// of our subscription to it (a spoofer's would steer our PUNCHes and
    /// neighbours).
    pub(super) fn relay_says(&mut self, now: Time, bytes: &[u8]) {
        let ours = |stream: StreamId, session| {
            stream == self.config.stream && self.relays.session().owns(session)
        };
        match Message::parse(bytes) {
            Ok(Message::Peers(p)) if ours(p.stream, p.session) => self.add_candidates(now, &p),
            Ok(Message::Introduce(i)) if ours(i.stream, i.session) => {
                self.stats.punches_sent += 1;
                let punch = self.our_punch();
                let _ = self.tx.push_message(i.addr, &Message::Punch(punch));
            }
            _ => {}
        }
    }

    pub(super) fn add_candidates(&mut self, now: Time, p: &Peers) {
        let Some(list) = self.neighbours.candidates.get_mut(usize::from(p.club)) else {
            return;
        };
        let before = list.len();
        for &a in p.addrs() {
            if !list.contains(&a) && list.len() < 64 {
                list.push(a);
            }
        }
        // A new candidate for a club without a neighbour is tried now,
        // not at the next tick: until then the relay serves the club.
        if list.len() > before && !self.neighbours.list.iter().any(|s| s.serves(p.club)) {
            self.next_tick = now;
        }
    }

    /// Control datagrams from other peers: a neighbour's session replies
    /// go to its session, everything else to the upload side.
    pub(super) fn control(
        &mut self,
        now: Time,
        from: SocketAddr,
        source: Option<usize>,
        ty: MessageType,
        bytes: &[u8],
    ) {
        let Ok(msg) = Message::parse(bytes) else {
            self.upload.relay.handle_datagram(now, from, bytes);
            return;
        };
        match (&msg, source) {
            (Message::Punch(p), Some(i)) if p.stream == self.config.stream => {
                let s = &mut self.neighbours.list[i];
                if s.start_at.is_some() {
                    s.reach = Reach::Punched;
                }
                s.answered = true;
                self.start_neighbour(now, i);
            }
            (Message::Punch(p), None) if p.stream == self.config.stream => {
                self.punched_from_elsewhere(now, from, p.seen_as);
            }
            (Message::Punch(_), _) => {}
            // A neighbour's answers count only with our session id with it.
            (Message::Peers(p), Some(i))
                if !p.addrs().is_empty() && self.neighbours.list[i].session.owns(p.session) =>
            {
                self.add_candidates(now, p)
            }
            (Message::Challenge(_) | Message::Accept(_) | Message::Reject(_), Some(i)) => {
                self.session_message(now, i, &msg)
            }
            (Message::Leave(l), Some(i)) if l.reason != LeaveReason::Done => {
                self.session_message(now, i, &msg);
            }
            _ => {
                // A HAVE with our session id at the neighbour is its
                // beacon (or its answer to a NACK) to us: only that shows
                // it alive as our server
                // (a HAVE it sends as our subscriber, with the id our
                // upload side gave it, is about what it holds, for the
                // upload side, and proves nothing about its serving).
                if let (Message::Have(h), Some(i)) = (&msg, source)
                    && self.neighbours.list[i].session.owns(h.session)
                {
                    self.neighbours.list[i].heard(now);
                    // What it lacks of what we asked it for is asked
                    // of another later; what it holds is where a second
                    // NACK may go.
                    self.repair.neighbour_have(now, from, h);
                    // If it is our subscriber too, what it holds is news
                    // to the upload side, in the session we gave it.
                    if let Some(session) = self.upload.relay.subscriber_session(from) {
                        let mut buf = [0u8; HAVE_LEN];
                        let have = Message::Have(Have { session, ..*h });
                        if have.emit(&mut buf).is_ok() {
                            self.upload.relay.handle_datagram(now, from, &buf);
                        }
                    }
                    return;
                }
                debug_assert!(ty != MessageType::Data);
                self.upload.relay.handle_datagram(now, from, bytes);
            }
        }
    }

    /// Our PUNCH: the stream, and our address as the relay sees it.
    fn our_punch(&self) -> Punch {
        Punch {
            stream: self.config.stream,
            seen_as: self.reflexive_addr().unwrap_or(Punch::UNKNOWN),
        }
    }

    /// A PUNCH from `from`, which is no neighbour's address, sent by the
    /// peer the relay sees at `seen_as`: if that is a candidate not heard
    /// from yet, its NAT has mapped it anew toward us; the handshake moves
    /// to `from` (restarting if it had begun). The IP address alone would
    /// not tell: several peers may share one (a carrier NAT, one host).
    /// Only a neighbour still unheard moves, so a spoofed PUNCH can at most
    /// send a few HELLOs elsewhere, no more than the candidate would get.
    fn punched_from_elsewhere(&mut self, now: Time, from: SocketAddr, seen_as: SocketAddr) {
        let Some(i) = self
            .neighbours
            .list
            .iter()
            .position(|s| s.candidate == seen_as && !s.working() && s.unheard())
        else {
            return;
        };
        let seed = self.rng.next_u64();
        let s = &mut self.neighbours.list[i];
        s.addr = from;
        s.reach = Reach::Remapped;
        s.answered = true;
        s.session = ClientSession::new(from, self.config.stream, 1u64 << s.club, Vec::new(), seed);
        s.start_at = Some(now);
        self.start_neighbour(now, i);
    }

    pub(super) fn session_message(&mut self, now: Time, i: usize, msg: &Message<'_>) {
        let resume = self.playout.newest_seq().map(|n| n + 1);
        let upload_kbps = self.upload_kbps();
        let src = &mut self.neighbours.list[i];
        src.last_heard = now;
        src.answered = true;
        let widening = src.session.is_widening();
        match src.session.handle(now, msg, resume, &mut self.tx) {
            Some(SessionEvent::Accepted { .. }) if widening => {
                // Routes and the relay's clubs follow at once, and it may
                // be asked for another.
                src.widen_after = now;
                self.next_tick = now;
            }
            Some(SessionEvent::WidenRefused(_)) => {
                src.widen_after = now + WIDEN_HOLD;
            }
            Some(SessionEvent::Accepted { .. }) => {
                src.last_data = now;
                // Upkeep gives the club back to the relay now, not at the
                // next tick: until then the relay pushes what the
                // neighbour pushes.
                self.next_tick = now;
                if self.neighbours.links.len() >= LINKS_KEPT {
                    self.neighbours.links.pop_front();
                }
                self.neighbours.links.push_back(LinkUp {
                    addr: src.addr,
                    club: src.club,
                    after: now.saturating_since(src.started),
                    reach: src.reach,
                });
                let member = Member {
                    stream: self.config.stream,
                    session: src.session.id(),
                    clubs: self.membership.member,
                    upload_kbps,
                };
                let _ = self.tx.push_message(src.addr, &Message::Member(member));
            }
            Some(SessionEvent::Rejected(_) | SessionEvent::ServerLeft(_)) => {
                self.stats.dropped_refused += 1;
                self.drop_neighbour(now, i, Duration::from_secs(10), false);
            }
            None => {}
        }
    }

    /// Counts what ingest did with a datagram of `len` bytes and type `ty`
    /// (stream data) from the relay or neighbour `source`, and judges the
    /// neighbour by it.
    pub(super) fn count_ingest(
        &mut self,
        now: Time,
        source: Option<usize>,
        result: Option<Result<Ingested, Rejection>>,
        ty: MessageType,
        len: usize,
    ) {
        let Some(result) = result else {
            return;
        };
        let len = len as u64;
        let payload = if matches!(ty, MessageType::Data | MessageType::Parity) {
            len
        } else {
            0
        };
        match result {
            Ok(Ingested::Verified | Ingested::Pending | Ingested::Descriptor) => {
                if source.is_some() {
                    self.stats.from_peers_bytes += len;
                    self.stats.from_peers_payload_bytes += payload;
                } else {
                    self.stats.from_relay_bytes += len;
                    self.stats.from_relay_payload_bytes += payload;
                }
                if let Some(i) = source {
                    self.neighbours.list[i].heard(now);
                    self.neighbours.list[i].last_data = now;
                }
            }
            Ok(Ingested::Duplicate) => {
                self.stats.duplicate_bytes += len;
                self.stats.duplicate_payload_bytes += payload;
                if source.is_none() {
                    self.stats.duplicate_from_relay_payload_bytes += payload;
                }
                if let Some(i) = source {
                    self.neighbours.list[i].heard(now);
                }
            }
            Err(Rejection::Forged | Rejection::Corrupted | Rejection::WrongStream) => {
                if let Some(i) = source {
                    self.stats.poisoned += 1;
                    self.stats.dropped_bad += 1;
                    self.drop_neighbour(now, i, BAN, false);
                }
            }
            Err(Rejection::Replayed | Rejection::Stale) => {
                if let Some(i) = source {
                    self.stats.poisoned += 1;
                    if self.neighbours.list[i].stale(now) > REPLAY_LIMIT {
                        self.stats.dropped_bad += 1;
                        self.drop_neighbour(now, i, BAN, false);
                    }
                }
            }
            Err(_) => {}
        }
    }

    pub(super) fn drop_neighbour(&mut self, now: Time, i: usize, ban: Duration, silent: bool) {
        let mut s = self.neighbours.list.swap_remove(i);
        s.session.close(&mut self.tx);
        self.neighbours.banned.insert(s.addr, now + ban);
        self.neighbours.banned.insert(s.candidate, now + ban);
        let served = s.clubs();
        for club in (0..self.neighbours.candidates.len()).filter(|&c| served >> c & 1 != 0) {
            if silent {
                if self.neighbours.last_arrival[club] > s.last_heard {
                    // Another neighbour (or the relay) kept the club flowing.
                    self.neighbours.recoveries.push(Duration::ZERO);
                } else {
                    self.neighbours.lost[club].get_or_insert(s.last_heard);
                }
            }
            self.neighbours.candidates[club].retain(|&a| !s.is(a));
        }
    }

    pub(super) fn expire_neighbours(&mut self, now: Time) {
        // The stream flows if some club brought a new chunk lately.
        let newest = self.neighbours.last_arrival.iter().max().copied();
        let flowing = newest.is_some_and(|t| now.saturating_since(t) < SILENCE);
        let mut i = 0;
        while i < self.neighbours.list.len() {
            let s = &self.neighbours.list[i];
            if s.unheard() && now.saturating_since(s.started) > GIVE_UP {
                // Nothing came back, not even a PUNCH: remember the pair.
                self.stats.unreachable += 1;
                self.drop_neighbour(now, i, UNREACHABLE, false);
            } else if !s.working() && now.saturating_since(s.started) > HANDSHAKE_TIMEOUT {
                self.stats.handshake_timeouts += 1;
                self.drop_neighbour(now, i, BAN, false);
            } else if s.working() && now.saturating_since(s.last_heard) > SILENCE {
                self.stats.dropped_silent += 1;
                self.drop_neighbour(now, i, BAN, true);
            } else if s.working() && flowing && now.saturating_since(s.last_data) > STARVED {
                self.stats.dropped_starved += 1;
                self.drop_neighbour(now, i, BAN, false);
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn fill_club(&mut self, now: Time, club: u8) {
        let ci = usize::from(club);
        let have = self
            .neighbours
            .list
            .iter()
            .filter(|s| s.serves(club))
            .count();
        if have >= self.wanted_sources(club) {
            return;
        }
        // Candidates named long ago may have filled up since (the relay
        // stops naming a member with no room left): ask anew rather than
        // be refused. (3,000 peers x 30 s: refusals 24,751 -> 6,867.)
        if self.neighbours.asked[ci].is_some_and(|t| now.saturating_since(t) >= ASK_EVERY)
            && !self.neighbours.candidates[ci].is_empty()
        {
            self.neighbours.candidates[ci].clear();
            self.ask_peers(now, club);
            return;
        }
        // A random candidate that is not already a neighbour or banned.
        let list = &self.neighbours.candidates[ci];
        let usable: Vec<SocketAddr> = list
            .iter()
            .copied()
            .filter(|a| {
                !self.neighbours.banned.contains_key(a)
                    && *a != self.config.relay
                    && !self.config.fallbacks.contains(a)
                    && !self.neighbours.list.iter().any(|s| s.is(*a))
            })
            .collect();
        if usable.is_empty() {
            if have == 0 {
                if !self.hard_to_reach() {
                    // Candidates that are all banned or already serve us
                    // another club are no candidates: the relay, which
                    // serves the club meanwhile, is asked again as soon as
                    // after an empty answer, not after ASK_EVERY
                    // (swarm_loopback 0.094-0.103 -> 0.083-0.090 x peers x
                    // stream, most of it in the second second, where many
                    // peers waited with one such candidate). A peer few can
                    // reach keeps them: a working neighbour named may widen.
                    self.neighbours.candidates[ci].clear();
                } else if self.widen_for(now, club) {
                    return;
                }
            }
            self.ask_peers(now, club);
            return;
        }
        let mut pick = usable[(self.rng.next_u64() % usable.len() as u64) as usize];
        let member = self.membership.joined(club);
        // Inside its club, the oldest of a few random candidates (the
        // relay lists older members first): a uniformly random older
        // member makes the club's tree as deep as a random recursive
        // tree, about ln(members) hops; the oldest of `k` makes it about
        // log_(k+1)(members), without sending every newcomer to the same
        // few first members. (Last-hop viewers choosing so too crowded
        // the oldest members: in 1,000 peers x 30 s three times the
        // refusals and 15 times the stalls.) A last-hop viewer takes the
        // youngest of a few, leaving the old members' room to members.
        let picks = if member { CLUB_PICKS } else { LEAF_PICKS };
        for _ in 1..picks {
            let other = usable[(self.rng.next_u64() % usable.len() as u64) as usize];
            let older =
                list.iter().position(|&a| a == other) < list.iter().position(|&a| a == pick);
            if older == member {
                pick = other;
            }
        }
        let seed = self.rng.next_u64();
        let mut src = Neighbour::new(pick, club, self.config.stream, now, seed);
        // Our NAT opens toward the candidate first, with a PUNCH too short-
        // lived to reach the candidate's NAT; our HELLO waits for the
        // candidate's PUNCH (sent on the INTRODUCE below), so that neither
        // NAT sees the other side's datagram before its own host has sent
        // one (SPEC §11.9).
        src.start_at = Some(now + PUNCH_WAIT);
        let punch = Message::Punch(self.our_punch());
        // A PUNCH already lent out (and kept) is left to its holder.
        let buf = Arc::make_mut(&mut self.neighbours.punch);
        buf.resize(punch.buffer_len(), 0);
        match punch.emit(buf) {
            Ok(len) => buf.truncate(len),
            Err(_) => buf.clear(),
        }
        self.neighbours.first_punches.push_back(pick);
        self.neighbours.list.push(src);
        let intro = Introduce {
            stream: self.config.stream,
            session: self.relays.session().id(),
            addr: pick,
        };
        let relay = self.relays.relay();
        let _ = self
            .relay_tx
            .push_message(relay, &Message::Introduce(intro));
    }

    pub(super) fn ask_peers(&mut self, now: Time, club: u8) {
        let ci = usize::from(club);
        let every = if self.neighbours.candidates[ci].is_empty() {
            ASK_EMPTY
        } else {
            ASK_EVERY
        };
        if self.neighbours.asked[ci].is_some_and(|t| now < t + every) {
            return;
        }
        self.neighbours.asked[ci] = Some(now);
        let ask = Peers::new(self.config.stream, self.relays.session().id(), club);
        let relay = self.relays.relay();
        let _ = self.relay_tx.push_message(relay, &Message::Peers(ask));
        // For the last hop, neighbours' neighbours will do as well.
        if !self.membership.joined(club) {
            let working: Vec<(SocketAddr, u64)> = self
                .neighbours
                .list
                .iter()
                .filter(|s| s.working())
                .map(|s| (s.addr, s.session.id()))
                .collect();
            if !working.is_empty() {
                let (to, session) = working[(self.rng.next_u64() % working.len() as u64) as usize];
                let ask = Peers::new(self.config.stream, session, club);
                let _ = self.tx.push_message(to, &Message::Peers(ask));
            }
        }
    }

    /// Starts neighbour `i`'s handshake if it has not started yet.
    fn start_neighbour(&mut self, now: Time, i: usize) {
        let s = &mut self.neighbours.list[i];
        if s.start_at.take().is_some() {
            s.session.start(now, &mut self.tx);
        }
    }

    /// Runs the neighbours' sessions' timers (KEEPALIVEs report only the
    /// newest chunk held), starting the handshakes whose PUNCH is late.
    pub(super) fn keep_neighbours_alive(&mut self, now: Time) {
        for i in 0..self.neighbours.list.len() {
            if self.neighbours.list[i].start_at.is_some_and(|t| now >= t) {
                self.start_neighbour(now, i);
            }
        }
        let resume = self.playout.newest_seq().map(|n| n + 1);
        let report = Keepalive {
            highest_seq: resume.map_or(0, |s| s - 1),
            // Each session stamps its own id.
            ..Keepalive::empty(self.config.stream, 0)
        };
        for s in &mut self.neighbours.list {
            s.session.handle_timeout(now, resume, report, &mut self.tx);
        }
    }
}
