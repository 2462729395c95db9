//! The subscribing side of the handshake, shared by viewers and by relays
//! that take a stream from an upstream relay.
//!
//! HELLO -> CHALLENGE -> SUBSCRIBE -> ACCEPT, then KEEPALIVE every interval
//! the server asked for. Lost handshake datagrams are resent with doubling
//! backoff; a server that falls silent, or answers NOT_SUBSCRIBED or
//! BAD_COOKIE, makes the session start over from HELLO and resume from the
//! owner's next wanted sequence number. A flowing stream that stops gets
//! one KEEPALIVE at once, so a server that restarted (and forgot us) says
//! NOT_SUBSCRIBED within a fraction of a second, not at the next keepalive.
//!
//! Binding (SPEC §11.7): ACCEPT brings the session id the server drew for
//! the subscription; the session stamps it on what it sends and drops a
//! server LEAVE that does not carry it, so that a spoofer who knows both
//! addresses cannot end the session. REJECT cannot be bound (its layout is
//! the same in every version), so a REJECT is acted on only in the state
//! it answers, and one that would end the session for good does so only
//! before the server ever accepted it: after that a spoofed REJECT costs
//! at most a new handshake.

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
/// The round-trip time assumed before the first HELLO/CHALLENGE sample.
const INITIAL_RTT: Duration = Duration::from_millis(100);
/// How long a widening ([`ClientSession::widen`]) may take before the
/// subscription in force is kept as it was: a few round trips.
const WIDEN_GIVE_UP: Duration = Duration::from_secs(1);
/// A flowing stream silent this long gets one KEEPALIVE at once, so that a
/// server that restarted and forgot the subscription says NOT_SUBSCRIBED
/// now rather than at the next keepalive.
const PROBE_AFTER: Duration = Duration::from_millis(300);
/// Stream datagrams at most this far apart mean the stream is flowing: a
/// live stream's blocks close every `block_ms` (50 ms by default), while
/// an idle one only repeats its DESCRIPTOR every second.
pub(crate) const FLOWING_GAP: Duration = Duration::from_millis(250);

/// How long one server (a relay's upstream, a viewer's relay) may go
/// without a working subscription before the next one in its list is
/// tried.
pub const FAILOVER_AFTER: Duration = Duration::from_secs(2);

/// How long a server that was delivering a flowing stream may then send
/// nothing before the next server is tried (with more than one).
pub const STALL_AFTER: Duration = Duration::from_millis(500);

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
    /// The server refused more clubs ([`ClientSession::widen`]) and still
    /// serves the ones it had.
    WidenRefused(RejectReason),
}

/// One subscription to one server.
#[derive(Debug)]
pub(crate) struct ClientSession {
    server: SocketAddr,
    stream: StreamId,
    clubs: u64,
    /// The clubs of the subscription in force (the last ACCEPT's); while
    /// a wider SUBSCRIBE is out ([`ClientSession::widen`]), the server
    /// still serves these.
    accepted_clubs: u64,
    /// A handshake for more clubs is under way on a subscription in
    /// force, since `widen_since`.
    widening: bool,
    widen_since: Time,
    token: Vec<u8>,
    state: SessionState,
    nonce_seed: u64,
    nonce: u64,
    cookie: Option<Cookie>,
    /// The session id from the latest ACCEPT; `None` before the first.
    session: Option<u64>,
    /// Our address as the server saw it, from the latest ACCEPT.
    observed: Option<SocketAddr>,
    attempt_delay: Duration,
    next_timer: Time,
    hello_sent_at: Time,
    keepalive_interval: Duration,
    last_heard: Time,
    silence_limit: Duration,
    /// Whether the last two datagrams heard were at most [`FLOWING_GAP`]
    /// apart.
    flowing: bool,
    /// Whether the current silence has had its KEEPALIVE.
    probed: bool,
    /// Smoothed round-trip time from HELLO/CHALLENGE exchanges: the first
    /// sample as it is (as TCP takes its first, RFC 6298), then a moving
    /// average; [`INITIAL_RTT`] before any.
    pub(crate) rtt: Duration,
    /// Whether `rtt` holds a sample yet.
    rtt_sampled: bool,
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
            accepted_clubs: 0,
            widening: false,
            widen_since: Time::ZERO,
            token,
            state: SessionState::Closed,
            nonce_seed,
            nonce: 0,
            cookie: None,
            session: None,
            observed: None,
            attempt_delay: FIRST_RETRY,
            next_timer: Time::ZERO,
            hello_sent_at: Time::ZERO,
            keepalive_interval: Duration::from_secs(1),
            last_heard: Time::ZERO,
            silence_limit: Duration::from_secs(3),
            flowing: false,
            probed: false,
            rtt: INITIAL_RTT,
            rtt_sampled: false,
        }
    }

    /// Changes the clubs asked for from the next SUBSCRIBE on.
    pub(crate) fn set_clubs(&mut self, clubs: u64) {
        self.clubs = clubs;
    }

    /// Asks the server for `clubs` more on the subscription in force: a
    /// new handshake whose SUBSCRIBE replaces the subscription (a server
    /// keeps the one in force until it accepts another from the same
    /// address, §11.3), so that nothing stops meanwhile:
    /// [`ClientSession::serving`] holds until the answer. Without a
    /// subscription in force, the clubs go in the next SUBSCRIBE.
    pub(crate) fn widen(&mut self, now: Time, clubs: u64, tx: &mut TxQueue) {
        self.clubs |= clubs;
        if self.state != SessionState::Subscribed {
            return;
        }
        // From HELLO: the cookie held may be older than its lifetime.
        self.hello_again(now, tx);
        self.widening = true;
        self.widen_since = now;
    }

    /// A widening that was refused, or not answered within
    /// [`WIDEN_GIVE_UP`], leaves the subscription in force as it was.
    fn widen_back(&mut self, now: Time) {
        self.widening = false;
        self.clubs = self.accepted_clubs;
        self.state = SessionState::Subscribed;
        self.next_timer = now + self.keepalive_interval;
    }

    /// The clubs the server sends: those of the last ACCEPT while the
    /// subscription is in force (or being widened), else none.
    pub(crate) fn accepted_clubs(&self) -> u64 {
        if self.serving() {
            self.accepted_clubs
        } else {
            0
        }
    }

    /// Whether a handshake for more clubs is under way on a subscription
    /// in force.
    pub(crate) fn is_widening(&self) -> bool {
        self.widening
    }

    /// Whether a subscription is in force: subscribed, or widening one.
    pub(crate) fn serving(&self) -> bool {
        self.state == SessionState::Subscribed || self.widening
    }

    pub(crate) fn server(&self) -> SocketAddr {
        self.server
    }

    pub(crate) fn state(&self) -> SessionState {
        self.state
    }

    /// The session id to put in what the owner sends the server: the one
    /// from the latest ACCEPT (0 before any, which no server draws).
    pub(crate) fn id(&self) -> u64 {
        self.session.unwrap_or(0)
    }

    /// Our address as the server saw it (from the latest ACCEPT).
    pub(crate) fn observed(&self) -> Option<SocketAddr> {
        self.observed
    }

    /// Whether a server session message carrying `session` is ours.
    pub(crate) fn owns(&self, session: u64) -> bool {
        self.session == Some(session)
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
        self.widening = false;
        self.last_heard = now;
        self.hello_again(now, tx);
    }

    /// A new handshake from HELLO, with a fresh cookie and retry delay.
    fn hello_again(&mut self, now: Time, tx: &mut TxQueue) {
        self.state = SessionState::Hello;
        self.cookie = None;
        self.attempt_delay = FIRST_RETRY;
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
        self.flowing = now.saturating_since(self.last_heard) <= FLOWING_GAP;
        self.probed = false;
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
                self.rtt = if self.rtt_sampled {
                    (self.rtt * 3 + sample) / 4
                } else {
                    sample
                };
                self.rtt_sampled = true;
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
                self.widening = false;
                self.accepted_clubs = self.clubs;
                self.session = Some(a.session);
                self.observed = Some(a.observed);
                self.keepalive_interval = Duration::from_millis(u64::from(a.keepalive_ms));
                self.next_timer = now + self.keepalive_interval;
                Some(SessionEvent::Accepted {
                    start_seq: a.start_seq,
                })
            }
            // A REJECT about another stream is not ours (several sessions
            // can share a socket); all zero means "not about a stream".
            Message::Reject(r)
                if answers(self.state, r.reason)
                    && (r.stream == self.stream || r.stream == StreamId([0; 32])) =>
            {
                if self.widening {
                    self.widen_back(now);
                    return Some(SessionEvent::WidenRefused(r.reason));
                }
                match r.reason {
                    RejectReason::BadCookie | RejectReason::NotSubscribed => {
                        self.start(now, tx);
                        None
                    }
                    // Final only before the server ever accepted this
                    // session: after that it may be spoofed (§14), and a
                    // retry every few seconds costs little.
                    reason if is_final(reason) && self.session.is_none() => {
                        self.state = SessionState::Closed;
                        Some(SessionEvent::Rejected(reason))
                    }
                    // Retry later from HELLO: a live stream may not have
                    // reached this server yet, and it may have room then.
                    reason => {
                        self.state = SessionState::Hello;
                        self.backoff();
                        self.next_timer = now + self.attempt_delay;
                        Some(SessionEvent::Rejected(reason))
                    }
                }
            }
            Message::Leave(l)
                if l.stream == self.stream
                    && self.owns(l.session)
                    && self.state != SessionState::Closed =>
            {
                self.widening = false;
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
        self.poll_timeout_with(None)
    }

    /// [`ClientSession::poll_timeout`] for an owner that wakes up at
    /// `tick` anyway: a subscription's regular KEEPALIVE (and its check
    /// for silence) waits for that wake-up rather than taking one of its
    /// own, if it comes within a quarter of the keepalive interval (SPEC
    /// §6.6; a server expires a subscription only after three). The owner
    /// runs the session's timers at every wake-up, so it goes out at the
    /// first one at or after it was due. A peer with a dozen neighbours
    /// would otherwise wake a dozen times a second for them alone.
    /// Handshakes, the probe after silence and a widening's end keep their
    /// own times.
    pub(crate) fn poll_timeout_by_tick(&self, tick: Time) -> Option<Time> {
        self.poll_timeout_with(Some(tick))
    }

    fn poll_timeout_with(&self, tick: Option<Time>) -> Option<Time> {
        let timer = match (self.state, tick) {
            (SessionState::Closed, _) => None,
            (SessionState::Subscribed, Some(tick)) if !self.widening => {
                let latest = self.next_timer + self.keepalive_interval / 4;
                Some(self.next_timer.max(tick.min(latest)))
            }
            _ => Some(self.next_timer),
        };
        let widen = self.widening.then(|| self.widen_since + WIDEN_GIVE_UP);
        [timer, self.probe_at(), widen].into_iter().flatten().min()
    }

    /// When a flowing stream's silence gets its KEEPALIVE.
    fn probe_at(&self) -> Option<Time> {
        let due = self.state == SessionState::Subscribed && self.flowing && !self.probed;
        due.then(|| self.last_heard + PROBE_AFTER)
    }

    /// Retransmits, keepalives, and restarts after silence.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Time,
        resume: Option<u64>,
        report: Keepalive,
        tx: &mut TxQueue,
    ) {
        let report = Keepalive {
            session: self.id(),
            ..report
        };
        if self.probe_at().is_some_and(|t| now >= t) {
            // Due now: if the regular timer is due too, its KEEPALIVE (or
            // restart) below is the probe; either way `probe_at` must not
            // stay in the past.
            self.probed = true;
            if now < self.next_timer {
                let _ = tx.push_message(self.server, &Message::Keepalive(report));
                return;
            }
        }
        if self.widening && now >= self.widen_since + WIDEN_GIVE_UP {
            self.widen_back(now);
        }
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
        // Widening, the server still holds the subscription in force.
        if self.serving() {
            let leave = Leave {
                reason: LeaveReason::Done,
                stream: self.stream,
                session: self.id(),
            };
            let _ = tx.push_message(self.server, &Message::Leave(leave));
        }
        self.widening = false;
        self.state = SessionState::Closed;
    }
}

/// Whether a REJECT for `reason` can answer what a session in `state`
/// last sent: HELLO in state HELLO, SUBSCRIBE in SUBSCRIBING, KEEPALIVE or
/// NACK in SUBSCRIBED. Any other is stale or spoofed and is ignored.
fn answers(state: SessionState, reason: RejectReason) -> bool {
    use RejectReason::*;
    match state {
        SessionState::Hello => matches!(reason, UnsupportedVersion | RateLimited | ShuttingDown),
        SessionState::Subscribing => !matches!(reason, UnsupportedVersion | NotSubscribed),
        SessionState::Subscribed => reason == NotSubscribed,
        SessionState::Closed => false,
    }
}

/// REJECT reasons a retry with the same request will not fix.
fn is_final(reason: RejectReason) -> bool {
    matches!(
        reason,
        RejectReason::UnsupportedVersion
            | RejectReason::TokenRequired
            | RejectReason::TokenInvalid
            | RejectReason::TokenExpired
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::t;
    use crate::wire::Reject;

    const STREAM: StreamId = StreamId([9; 32]);

    fn report() -> Keepalive {
        crate::testutil::keepalive(STREAM, 0)
    }

    /// The types of the queued datagrams, emptying the queue.
    fn sent(tx: &mut TxQueue) -> Vec<crate::wire::MessageType> {
        let mut out = Vec::new();
        while let Some(t) = tx.pop() {
            out.push(crate::wire::peek_type(t.payload).expect("a datagram"));
        }
        out
    }

    fn subscribed(tx: &mut TxQueue) -> ClientSession {
        let server = "127.0.0.1:7400".parse().expect("addr");
        let mut s = ClientSession::new(server, STREAM, u64::MAX, Vec::new(), 1);
        s.start(t(0), tx);
        for answer in crate::testutil::handshake_answers(STREAM, s.nonce, 0) {
            s.handle(t(0), &answer, None, tx);
        }
        assert_eq!(s.state(), SessionState::Subscribed);
        sent(tx);
        s
    }

    #[test]
    fn a_stalled_stream_gets_one_early_keepalive_and_a_restarted_server_is_found() {
        use crate::wire::MessageType;
        let mut tx = TxQueue::default();
        let mut s = subscribed(&mut tx);
        let probe = crate::testutil::flow(100, |now| s.heard(now)) + PROBE_AFTER;
        assert_eq!(s.poll_timeout(), Some(probe));
        s.handle_timeout(probe, Some(5), report(), &mut tx);
        assert_eq!(sent(&mut tx), [MessageType::Keepalive]);
        // Once per silence: the next timer is the regular keepalive.
        assert_eq!(s.poll_timeout(), Some(t(1000)));
        // The restarted server does not know us: start over at once.
        let reject = Reject {
            reason: RejectReason::NotSubscribed,
            versions: SUPPORTED_VERSIONS,
            stream: STREAM,
        };
        s.handle(probe, &Message::Reject(reject), Some(5), &mut tx);
        assert_eq!(s.state(), SessionState::Hello);
        assert_eq!(sent(&mut tx), [MessageType::Hello]);
    }

    /// The server's first answer to `s`'s HELLO: its CHALLENGE.
    fn first_answer(s: &ClientSession) -> Message<'static> {
        crate::testutil::handshake_answers(STREAM, s.nonce, 0)
            .into_iter()
            .next()
            .expect("a CHALLENGE")
    }

    /// The first handshake's round trip is the estimate at once, not a
    /// quarter of the way from a guess: on a 2 ms path, repair must not
    /// wait as if it were 75 ms (a late joiner's catch-up has little time).
    #[test]
    fn the_first_round_trip_is_taken_as_it_is_then_smoothed() {
        let server = "127.0.0.1:7400".parse().expect("addr");
        let mut tx = TxQueue::default();
        let mut s = ClientSession::new(server, STREAM, u64::MAX, Vec::new(), 1);
        assert_eq!(s.rtt, INITIAL_RTT);
        s.start(t(0), &mut tx);
        let challenge = first_answer(&s);
        s.handle(t(2), &challenge, None, &mut tx);
        assert_eq!(s.rtt, Duration::from_millis(2));
        // A later handshake's sample is averaged in.
        s.state = SessionState::Closed;
        s.start(t(100), &mut tx);
        let challenge = first_answer(&s);
        s.handle(t(110), &challenge, None, &mut tx);
        assert_eq!(s.rtt, Duration::from_millis(4));
    }

    #[test]
    fn an_idle_stream_gets_no_early_keepalive() {
        let mut tx = TxQueue::default();
        let mut s = subscribed(&mut tx);
        // A DESCRIPTOR a second, nothing else.
        s.heard(t(500));
        assert_eq!(s.poll_timeout(), Some(t(1000)));
    }

    /// A subscription's KEEPALIVE waits for its owner's next wake-up; a
    /// handshake's retransmit keeps its own time.
    #[test]
    fn a_keepalive_waits_for_the_owners_tick_a_handshake_does_not() {
        use crate::wire::MessageType;
        let mut tx = TxQueue::default();
        let mut s = subscribed(&mut tx);
        assert_eq!(s.poll_timeout(), Some(t(1000)));
        assert_eq!(s.poll_timeout_by_tick(t(1040)), Some(t(1040)));
        // A tick before it is due does not bring it forward; one more than
        // a quarter of the interval after it is not waited for.
        assert_eq!(s.poll_timeout_by_tick(t(900)), Some(t(1000)));
        assert_eq!(s.poll_timeout_by_tick(t(1300)), Some(t(1250)));
        s.handle_timeout(t(1040), None, report(), &mut tx);
        assert_eq!(sent(&mut tx), [MessageType::Keepalive]);
        assert_eq!(s.poll_timeout_by_tick(t(1100)), Some(t(2040)));

        let server = "127.0.0.1:7401".parse().expect("addr");
        let mut h = ClientSession::new(server, STREAM, u64::MAX, Vec::new(), 2);
        h.start(t(0), &mut tx);
        let retry = h.poll_timeout().expect("a HELLO retransmit");
        assert_eq!(
            h.poll_timeout_by_tick(retry + Duration::from_secs(5)),
            Some(retry)
        );
    }
}

#[cfg(test)]
mod binding_tests {
    //! The client's half of binding (SPEC §11.7): its messages carry the
    //! id from ACCEPT, a server LEAVE without it is ignored, and a REJECT
    //! counts only in the state it answers.

    use super::*;
    use crate::testutil::t;
    use crate::wire::{Accept, Challenge, MessageType, Reject};

    const STREAM: StreamId = StreamId([9; 32]);
    const ID: u64 = 0x5e55_1011;

    fn report() -> Keepalive {
        crate::testutil::keepalive(STREAM, 0)
    }

    fn drain(tx: &mut TxQueue) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| tx.pop().map(|t| t.payload.to_vec())).collect()
    }

    /// A session in state SUBSCRIBING (answering the CHALLENGE).
    fn subscribing(s: &mut ClientSession, now: Time, tx: &mut TxQueue) {
        let cookie = Cookie {
            issued_at_us: 0,
            tag: [0; 16],
        };
        let nonce = drain(tx)
            .iter()
            .find_map(|d| match Message::parse(d) {
                Ok(Message::Hello(h)) => Some(h.nonce),
                _ => None,
            })
            .expect("a HELLO");
        s.handle(
            now,
            &Message::Challenge(Challenge { nonce, cookie }),
            None,
            tx,
        );
        assert_eq!(s.state(), SessionState::Subscribing);
        drain(tx);
    }

    fn subscribed(tx: &mut TxQueue) -> ClientSession {
        let server = "127.0.0.1:7400".parse().expect("addr");
        let mut s = ClientSession::new(server, STREAM, u64::MAX, Vec::new(), 1);
        s.start(t(0), tx);
        assert_eq!(s.id(), 0, "no id before ACCEPT");
        subscribing(&mut s, t(0), tx);
        let accept = Accept {
            keepalive_ms: 1000,
            stream: STREAM,
            session: ID,
            start_seq: 0,
            observed: "192.0.2.9:4000".parse().expect("addr"),
        };
        s.handle(t(0), &Message::Accept(accept), None, tx);
        assert_eq!(s.observed(), Some(accept.observed));
        assert_eq!(s.state(), SessionState::Subscribed);
        s
    }

    fn leave(reason: LeaveReason, session: u64) -> Message<'static> {
        Message::Leave(Leave {
            reason,
            stream: STREAM,
            session,
        })
    }

    fn reject(reason: RejectReason) -> Message<'static> {
        Message::Reject(Reject {
            reason,
            versions: SUPPORTED_VERSIONS,
            stream: STREAM,
        })
    }

    #[test]
    fn keepalives_and_the_leave_carry_the_id_from_accept() {
        let mut tx = TxQueue::default();
        let mut s = subscribed(&mut tx);
        assert_eq!(s.id(), ID);
        s.handle_timeout(t(1000), None, report(), &mut tx);
        s.close(&mut tx);
        let sent: Vec<(MessageType, u64)> = drain(&mut tx)
            .iter()
            .map(|d| match Message::parse(d) {
                Ok(Message::Keepalive(k)) => (MessageType::Keepalive, k.session),
                Ok(Message::Leave(l)) => (MessageType::Leave, l.session),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            sent,
            [(MessageType::Keepalive, ID), (MessageType::Leave, ID)]
        );
    }

    #[test]
    fn a_server_leave_without_the_id_is_ignored() {
        let mut tx = TxQueue::default();
        let mut s = subscribed(&mut tx);
        for reason in [LeaveReason::EndOfStream, LeaveReason::ShuttingDown] {
            for guess in [0, ID ^ 1, u64::MAX] {
                let event = s.handle(t(5), &leave(reason, guess), None, &mut tx);
                assert_eq!(event, None);
                assert_eq!(s.state(), SessionState::Subscribed);
            }
        }
        let event = s.handle(t(6), &leave(LeaveReason::EndOfStream, ID), None, &mut tx);
        assert_eq!(
            event,
            Some(SessionEvent::ServerLeft(LeaveReason::EndOfStream))
        );
        assert_eq!(s.state(), SessionState::Closed);
    }

    #[test]
    fn a_subscribed_session_takes_only_not_subscribed_from_a_reject() {
        let mut tx = TxQueue::default();
        let mut s = subscribed(&mut tx);
        let reasons = crate::testutil::reject_reasons();
        for reason in reasons.filter(|&r| r != RejectReason::NotSubscribed) {
            assert_eq!(s.handle(t(5), &reject(reason), None, &mut tx), None);
            assert_eq!(s.state(), SessionState::Subscribed, "{reason:?}");
        }
        assert!(drain(&mut tx).is_empty());
        // NOT_SUBSCRIBED answers a KEEPALIVE: a new handshake, at worst.
        s.handle(t(5), &reject(RejectReason::NotSubscribed), None, &mut tx);
        assert_eq!(s.state(), SessionState::Hello);
    }

    #[test]
    fn a_final_reject_ends_only_a_session_never_accepted() {
        let mut tx = TxQueue::default();
        let server = "127.0.0.1:7400".parse().expect("addr");
        // Never accepted: TOKEN_INVALID to its SUBSCRIBE is final, but not
        // while it waits for a CHALLENGE (a REJECT then answers nothing).
        let mut fresh = ClientSession::new(server, STREAM, u64::MAX, Vec::new(), 1);
        fresh.start(t(0), &mut tx);
        let token = reject(RejectReason::TokenInvalid);
        assert_eq!(fresh.handle(t(0), &token, None, &mut tx), None);
        assert_eq!(fresh.state(), SessionState::Hello);
        subscribing(&mut fresh, t(1), &mut tx);
        fresh.handle(t(1), &token, None, &mut tx);
        assert_eq!(fresh.state(), SessionState::Closed);
        // Accepted once, then restarted (a spoofed NOT_SUBSCRIBED): a final
        // REJECT now means "later", so a spoofer cannot end it.
        let mut s = subscribed(&mut tx);
        s.handle(t(5), &reject(RejectReason::NotSubscribed), None, &mut tx);
        subscribing(&mut s, t(5), &mut tx);
        let event = s.handle(t(5), &token, None, &mut tx);
        assert_eq!(
            event,
            Some(SessionEvent::Rejected(RejectReason::TokenInvalid))
        );
        assert_eq!(s.state(), SessionState::Hello);
        assert!(s.poll_timeout().is_some(), "it retries");
    }
}

#[cfg(test)]
#[path = "client_widen_tests.rs"]
mod widen_tests;
