//! A download neighbour: the peer it subscribes to, for which clubs, and
//! how that subscription is going.

use std::net::SocketAddr;

use super::REPLAY_SPAN;
use super::neighbours::Reach;
use crate::client::ClientSession;
use crate::{StreamId, Time};

/// A download neighbour and the session with it.
#[derive(Debug)]
pub(super) struct Neighbour {
    /// Where its session talks to it.
    pub(super) addr: SocketAddr,
    /// The address the relay (or a neighbour) named: `addr` until a PUNCH
    /// moves it.
    pub(super) candidate: SocketAddr,
    /// How it got through, so far.
    pub(super) reach: Reach,
    pub(super) club: u8,
    pub(super) session: ClientSession,
    pub(super) started: Time,
    /// When its handshake starts if its PUNCH has not come first; `None`
    /// once started.
    pub(super) start_at: Option<Time>,
    pub(super) last_heard: Time,
    /// When it last brought new stream data (duplicates do not count: in
    /// a ring, what one member got from the relay comes back to it from
    /// the next), or was chosen or accepted.
    pub(super) last_data: Time,
    /// Whether anything (a PUNCH, an answer, data) has come from it.
    pub(super) answered: bool,
    /// Not asked for more clubs before this: [`WIDEN_HOLD`](super::WIDEN_HOLD)
    /// after it was asked without accepting, or refused.
    pub(super) widen_after: Time,
    /// Stale chunks it sent since `stale_since`.
    stale: (Time, u32),
}

impl Neighbour {
    pub(super) fn new(
        addr: SocketAddr,
        club: u8,
        stream: StreamId,
        now: Time,
        nonce_seed: u64,
    ) -> Self {
        Self {
            addr,
            candidate: addr,
            reach: Reach::Direct,
            club,
            session: ClientSession::new(addr, stream, 1u64 << club, Vec::new(), nonce_seed),
            started: now,
            start_at: None,
            last_heard: now,
            last_data: now,
            answered: false,
            widen_after: now,
            stale: (now, 0),
        }
    }

    /// Counts a stale (replayed) chunk from it; returns how many it sent
    /// in the current [`REPLAY_SPAN`].
    pub(super) fn stale(&mut self, now: Time) -> u32 {
        let (since, n) = &mut self.stale;
        if now.saturating_since(*since) >= REPLAY_SPAN {
            *since = now;
            *n = 0;
        }
        *n += 1;
        *n
    }

    /// Something came from it.
    pub(super) fn heard(&mut self, now: Time) {
        self.last_heard = now;
        self.answered = true;
        self.session.heard(now);
    }

    /// Accepted and not yet known to have failed.
    pub(super) fn working(&self) -> bool {
        self.session.serving()
    }

    /// Whether it is the source of `club`: the club it was chosen for, and
    /// any its subscription was widened to (accepted; not while asked).
    pub(super) fn serves(&self, club: u8) -> bool {
        1u64.checked_shl(u32::from(club))
            .is_some_and(|bit| self.clubs() & bit != 0)
    }

    /// The clubs it serves, a bit each.
    pub(super) fn clubs(&self) -> u64 {
        self.session.accepted_clubs() | 1u64.checked_shl(u32::from(self.club)).unwrap_or(0)
    }

    /// Nothing at all has come from it yet.
    pub(super) fn unheard(&self) -> bool {
        !self.answered
    }

    /// Whether `a` is this neighbour, at either of its addresses.
    pub(super) fn is(&self, a: SocketAddr) -> bool {
        self.addr == a || self.candidate == a
    }
}
