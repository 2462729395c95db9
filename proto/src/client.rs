//! The subscribing side of the handshake, shared by viewers and by relays
//! that take a stream from an upstream relay.
//!
//! HELLO -> CHALLENGE -> SUBSCRIBE -> ACCEPT, then KEEPALIVE every interval
//! the server asked for. Lost handshake datagrams are resent with doubling
//! backoff; a server that falls silent, or answers NOT_SUBSCRIBED or
//! BAD_COOKIE, makes the session start over from HELLO and resume from the
//! owner's next wanted sequence number.

use std::net::SocketAddr;
use std::time::Duration;

use crate::transmit::TxQueue;
use crate::wire::{
    Cookie, HELLO_MIN_LEN, Hello, Keepalive, Leave, LeaveReason, Message, RejectReason,
    SUPPORTED_VERSIONS, Subscribe,
};
use crate::{StreamId, Time};

const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// Where the handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// HELLO sent, waiting for CHALLENGE.
    Hello,
    /// SUBSCRIBE sent, waiting for ACCEPT.
    Subscribing,
    /// Receiving the stream.
    Subscribed,
    /// Ended (LEAVE sent or a final REJECT).
    Closed,
}

/// What the session tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionEvent {
    /// The server accepted; it starts sending at `start_seq`.
    Accepted { start_seq: u64 },
    /// The server refused for a reason a retry will not fix.
    Rejected(RejectReason),
    /// The server left (for example shutting down); the session retries.
    ServerLeft(LeaveReason),
}

/// One subscription to one server.
#[derive(Debug)]
pub(crate) struct ClientSession {
    server: SocketAddr,
    stream: StreamId,
    clubs: u64,
    token: Vec<u8>,
    state: SessionState,
    nonce_seed: u64,
    nonce: u64,
    cookie: Option<Cookie>,
    attempt_delay: Duration,
    next_timer: Time,
    hello_sent_at: Time,
    keepalive_interval: Duration,
    last_heard: Time,
    silence_limit: Duration,
    /// Smoothed round-trip time from HELLO/CHALLENGE exchanges.
    pub(crate) rtt: Duration,
}

impl ClientSession {
    pub(crate) fn new(
        server: SocketAddr,
        stream: StreamId,
        clubs: u64,
        token: Vec<u8>,
        nonce_seed: u64,
    ) -> Self {
        Self {
            server,
            stream,
            clubs,
            token,
            state: SessionState::Closed,
            nonce_seed,
            nonce: 0,
            cookie: None,
            attempt_delay: FIRST_RETRY,
            next_timer: Time::ZERO,
            hello_sent_at: Time::ZERO,
            keepalive_interval: Duration::from_secs(1),
            last_heard: Time::ZERO,
            silence_limit: Duration::from_secs(3),
            rtt: Duration::from_millis(100),
        }
    }

    /// Changes the clubs asked for from the next SUBSCRIBE on.
    pub(crate) fn set_clubs(&mut self, clubs: u64) {
        self.clubs = clubs;
    }

    pub(crate) fn server(&self) -> SocketAddr {
        self.server
    }

    pub(crate) fn state(&self) -> SessionState {
        self.state
    }

    fn next_nonce(&mut self) -> u64 {
        self.nonce_seed = self
            .nonce_seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.nonce_seed ^ (self.nonce_seed >> 29)
    }

    /// Starts (or restarts) the handshake.
    pub(crate) fn start(&mut self, now: Time, tx: &mut TxQueue) {
        self.state = SessionState::Hello;
        self.cookie = None;
        self.attempt_delay = FIRST_RETRY;
        self.last_heard = now;
        self.send_hello(now, tx);
    }

    fn send_hello(&mut self, now: Time, tx: &mut TxQueue) {
        self.nonce = self.next_nonce();
        let hello = Hello {
            versions: SUPPORTED_VERSIONS,
            nonce: self.nonce,
            padded_len: HELLO_MIN_LEN as u16,
        };
        let _ = tx.push_message(self.server, &Message::Hello(hello));
        self.hello_sent_at = now;
        self.next_timer = now + self.attempt_delay;
    }

    fn send_subscribe(&mut self, now: Time, resume: Option<u64>, tx: &mut TxQueue) {
        let Some(cookie) = self.cookie else { return };
        let sub = Subscribe {
            stream: self.stream,
            clubs: self.clubs,
            start_seq: resume,
            cookie,
            token: &self.token,
        };
        let _ = tx.push_message(self.server, &Message::Subscribe(sub));
        self.next_timer = now + self.attempt_delay;
    }

    fn backoff(&mut self) {
        self.attempt_delay = (self.attempt_delay * 2).min(MAX_RETRY);
    }

    /// Any datagram from the server shows it is alive.
    pub(crate) fn heard(&mut self, now: Time) {
        self.last_heard = now;
    }

    /// Handles a handshake or session message from the server.
    pub(crate) fn handle(
        &mut self,
        now: Time,
        msg: &Message<'_>,
        resume: Option<u64>,
        tx: &mut TxQueue,
    ) -> Option<SessionEvent> {
        self.last_heard = now;
        match *msg {
            Message::Challenge(c) if self.state == SessionState::Hello && c.nonce == self.nonce => {
                let sample = now - self.hello_sent_at;
                self.rtt = (self.rtt * 3 + sample) / 4;
                self.cookie = Some(c.cookie);
                self.state = SessionState::Subscribing;
                self.attempt_delay = FIRST_RETRY;
                self.send_subscribe(now, resume, tx);
                None
            }
            Message::Accept(a)
                if a.stream == self.stream && self.state == SessionState::Subscribing =>
            {
                self.state = SessionState::Subscribed;
                self.keepalive_interval = Duration::from_millis(u64::from(a.keepalive_ms));
                self.next_timer = now + self.keepalive_interval;
                Some(SessionEvent::Accepted {
                    start_seq: a.start_seq,
                })
            }
            // A REJECT about another stream is not ours (several sessions
            // can share a socket); all zero means "not about a stream".
            Message::Reject(r)
                if self.state != SessionState::Closed
                    && (r.stream == self.stream || r.stream == StreamId([0; 32])) =>
            {
                match r.reason {
                    RejectReason::BadCookie | RejectReason::NotSubscribed => {
                        self.start(now, tx);
                        None
                    }
                    RejectReason::RateLimited
                    | RejectReason::ShuttingDown
                    | RejectReason::Full
                    | RejectReason::UnknownStream => {
                        // Retry later from HELLO: a live stream may not have
                        // reached this server yet.
                        self.state = SessionState::Hello;
                        self.backoff();
                        self.next_timer = now + self.attempt_delay;
                        Some(SessionEvent::Rejected(r.reason))
                    }
                    reason => {
                        self.state = SessionState::Closed;
                        Some(SessionEvent::Rejected(reason))
                    }
                }
            }
            Message::Leave(l) if l.stream == self.stream && self.state != SessionState::Closed => {
                if l.reason == LeaveReason::EndOfStream {
                    self.state = SessionState::Closed;
                } else {
                    self.state = SessionState::Hello;
                    self.next_timer = now + FIRST_RETRY;
                }
                Some(SessionEvent::ServerLeft(l.reason))
            }
            _ => None,
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Time> {
        (self.state != SessionState::Closed).then_some(self.next_timer)
    }

    /// Retransmits, keepalives, and restarts after silence.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Time,
        resume: Option<u64>,
        report: Keepalive,
        tx: &mut TxQueue,
    ) {
        if self.state == SessionState::Closed || now < self.next_timer {
            return;
        }
        match self.state {
            SessionState::Hello => {
                self.backoff();
                self.send_hello(now, tx);
            }
            SessionState::Subscribing => {
                self.backoff();
                self.send_subscribe(now, resume, tx);
            }
            SessionState::Subscribed => {
                if now - self.last_heard > self.silence_limit {
                    self.start(now, tx);
                    return;
                }
                let _ = tx.push_message(self.server, &Message::Keepalive(report));
                self.next_timer = now + self.keepalive_interval;
            }
            SessionState::Closed => {}
        }
    }

    /// Ends the subscription with a LEAVE.
    pub(crate) fn close(&mut self, tx: &mut TxQueue) {
        if self.state == SessionState::Subscribed {
            let leave = Leave {
                reason: LeaveReason::Done,
                stream: self.stream,
            };
            let _ = tx.push_message(self.server, &Message::Leave(leave));
        }
        self.state = SessionState::Closed;
    }
}
