//! One download neighbour: a peer that pushes one club to us.

use std::net::SocketAddr;

use crate::client::{ClientSession, SessionState};
use crate::{StreamId, Time};

/// A download neighbour and the session with it.
#[derive(Debug)]
pub(super) struct Source {
    pub(super) addr: SocketAddr,
    pub(super) club: u8,
    pub(super) session: ClientSession,
    pub(super) started: Time,
    pub(super) last_heard: Time,
    /// Stale chunks it sent since `stale_since`.
    stale: (Time, u32),
}

impl Source {
    pub(super) fn new(
        addr: SocketAddr,
        club: u8,
        stream: StreamId,
        now: Time,
        nonce_seed: u64,
    ) -> Self {
        Self {
            addr,
            club,
            session: ClientSession::new(addr, stream, 1u64 << club, Vec::new(), nonce_seed),
            started: now,
            last_heard: now,
            stale: (now, 0),
        }
    }

    /// Counts a stale (replayed) chunk from it; returns how many it sent
    /// in the current [`super::REPLAY_SPAN`].
    pub(super) fn stale(&mut self, now: Time) -> u32 {
        let (since, n) = &mut self.stale;
        if now.saturating_since(*since) >= super::REPLAY_SPAN {
            *since = now;
            *n = 0;
        }
        *n += 1;
        *n
    }

    /// Something came from it.
    pub(super) fn heard(&mut self, now: Time) {
        self.last_heard = now;
        self.session.heard(now);
    }

    /// Accepted and not yet known to have failed.
    pub(super) fn working(&self) -> bool {
        self.session.state() == SessionState::Subscribed
    }
}
