//! The relay in use and the ones to fall back to.
//!
//! A viewer (and an ordinary peer's download side) holds one subscription,
//! to one relay of its list, and leaves it by the rules of a relay's
//! upstream list: when the relay has not accepted the subscription within
//! [`FAILOVER_AFTER`], when a flowing stream from it stops for
//! [`STALL_AFTER`](crate::client::STALL_AFTER), or at once when it leaves
//! or refuses because it is shutting down. Only the relay in use is
//! trusted; the next one is subscribed from the next chunk to play.

use std::net::SocketAddr;

use super::{Playout, ViewerConfig, ViewerEvent};
use crate::client::{ClientSession, FAILOVER_AFTER, SessionEvent, SessionState};
use crate::failover::ServerList;
use crate::transmit::TxQueue;
use crate::wire::{LeaveReason, Message, RejectReason};
use crate::{StreamId, Time};

/// The subscription to the relay in use, and the list it moves along.
#[derive(Debug)]
pub(crate) struct Relays {
    session: ClientSession,
    /// `ViewerConfig::relay`, then the fallbacks.
    pub(super) list: ServerList,
    /// Since when the relay in use has had no working subscription.
    down_since: Option<Time>,
    stream: StreamId,
    /// The clubs asked of the relay.
    clubs: u64,
    token: Vec<u8>,
}

impl Relays {
    /// Starts subscribing to `config.relay` at `now`.
    pub(crate) fn new(config: &ViewerConfig, now: Time, tx: &mut TxQueue) -> Self {
        let mut session = ClientSession::new(
            config.relay,
            config.stream,
            config.clubs,
            config.token.clone(),
            config.nonce_seed,
        );
        session.start(now, tx);
        Self {
            session,
            list: ServerList::new(config.relay, &config.fallbacks, config.nonce_seed),
            down_since: Some(now),
            stream: config.stream,
            clubs: config.clubs,
            token: config.token.clone(),
        }
    }

    /// The subscription to the relay in use.
    pub(crate) fn session(&self) -> &ClientSession {
        &self.session
    }

    /// The relay session, to set what a test needs of it.
    #[cfg(test)]
    pub(crate) fn session_mut(&mut self) -> &mut ClientSession {
        &mut self.session
    }

    /// The relay in use.
    pub(crate) fn relay(&self) -> SocketAddr {
        self.session.server()
    }

    /// Whether the relay in use has accepted the subscription.
    pub(crate) fn is_subscribed(&self) -> bool {
        self.session.state() == SessionState::Subscribed
    }

    /// The clubs asked of the relay.
    pub(crate) fn clubs(&self) -> u64 {
        self.clubs
    }

    /// Changes the clubs asked of the relay: resubscribes.
    pub(crate) fn set_clubs(&mut self, now: Time, clubs: u64, tx: &mut TxQueue) {
        if self.clubs != clubs {
            self.clubs = clubs;
            self.session.set_clubs(clubs);
            self.session.start(now, tx);
            self.note(now);
        }
    }

    /// Stream data came from `from`; whether that is the relay in use
    /// (whose data counts as its stream flowing).
    pub(crate) fn heard_stream(&mut self, now: Time, from: SocketAddr) -> bool {
        let relay = from == self.relay();
        if relay {
            self.session.heard(now);
            self.list.heard(now);
        }
        relay
    }

    /// A session message from the relay in use: what it says goes to
    /// `playout`'s events; a relay going away is left for the next.
    pub(crate) fn handle(
        &mut self,
        now: Time,
        msg: &Message<'_>,
        playout: &mut Playout,
        tx: &mut TxQueue,
    ) {
        let resume = playout.resume_seq();
        match self.session.handle(now, msg, resume, tx) {
            Some(SessionEvent::Accepted { start_seq }) => playout.accepted(start_seq),
            Some(SessionEvent::Rejected(r)) => {
                playout.push_event(ViewerEvent::Rejected(r));
                // A relay that is going away will not take us.
                if r == RejectReason::ShuttingDown
                    && self.session.state() != SessionState::Closed
                    && self.list.can_move()
                {
                    self.fail_over(now, playout, tx);
                }
            }
            Some(SessionEvent::ServerLeft(LeaveReason::EndOfStream)) => {
                if playout.end() {
                    self.session.close(tx);
                }
            }
            Some(SessionEvent::ServerLeft(_)) if self.list.can_move() => {
                self.fail_over(now, playout, tx);
            }
            // The relay session never widens (it sets its clubs).
            Some(SessionEvent::ServerLeft(_) | SessionEvent::WidenRefused(_)) | None => {}
        }
        self.note(now);
    }

    /// Runs the session's timers, or leaves the relay if its deadline has
    /// passed.
    pub(crate) fn handle_timeout(&mut self, now: Time, playout: &mut Playout, tx: &mut TxQueue) {
        let resume = playout.resume_seq();
        let report = playout.report(self.session.id());
        if self.deadline().is_some_and(|t| now >= t) {
            self.fail_over(now, playout, tx);
        } else {
            self.session.handle_timeout(now, resume, report, tx);
        }
        self.note(now);
    }

    /// When [`Relays::handle_timeout`] should next run.
    pub(crate) fn poll_timeout(&self) -> Option<Time> {
        [self.session.poll_timeout(), self.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Leaves: a LEAVE to the relay in use.
    pub(crate) fn close(&mut self, tx: &mut TxQueue) {
        self.session.close(tx);
    }

    /// Keeps `down_since` in step with the session.
    fn note(&mut self, now: Time) {
        if self.session.state() == SessionState::Subscribed {
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

    /// When the relay in use is given up: a subscription not working for
    /// [`FAILOVER_AFTER`], or a flowing stream silent for
    /// [`STALL_AFTER`](crate::client::STALL_AFTER). None with a single
    /// relay or after a final refusal.
    fn deadline(&self) -> Option<Time> {
        let state = self.session.state();
        if !self.list.can_move() || state == SessionState::Closed {
            return None;
        }
        if state == SessionState::Subscribed {
            self.list.stall_deadline(true)
        } else {
            self.down_since.map(|t| t + FAILOVER_AFTER)
        }
    }

    /// Leaves the relay in use for the next in the list (wrapping round)
    /// and starts subscribing there, from the next chunk to play.
    fn fail_over(&mut self, now: Time, playout: &mut Playout, tx: &mut TxQueue) {
        let from = self.relay();
        // A LEAVE in case it still serves us (a stall on the path only).
        self.session.close(tx);
        self.down_since = Some(now);
        let to = self.list.advance();
        self.session = ClientSession::new(
            to,
            self.stream,
            self.clubs,
            self.token.clone(),
            self.list.nonce_seed(),
        );
        self.session.start(now, tx);
        playout.relay_changed(from, to);
    }
}
