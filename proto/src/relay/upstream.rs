//! A relay's subscription to the relays it takes a stream from: one
//! session at a time, retried with backoff, failing over down the list.
//!
//! The session backs off on its own (HELLO and SUBSCRIBE retries double
//! from 200 ms to 2 s; a silent server is re-handshaken after 3 s). When
//! the current server has not delivered a subscription for
//! [`FAILOVER_AFTER`], or refused for good, the next server in the list
//! is tried; the list wraps around, so an upstream that comes back is
//! found again.
//!
//! A server that dies while it serves the stream is noticed sooner: a
//! live stream arrives in blocks a few tens of milliseconds apart, so when
//! the stream was flowing and the current server then sends nothing for
//! [`STALL_AFTER`](crate::client::STALL_AFTER), the next server is tried at once. The server that has
//! the stream resumes it from this relay's next chunk, and the chunks its
//! catch-up covers (§11.3) were never missed downstream, only late: a
//! relay's window and its viewers' latency budget absorb the switch. An
//! idle stream (only a DESCRIPTOR a second) is not flowing, so a pause in
//! the input costs at most one needless switch.

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::client::FAILOVER_AFTER;

use super::{Relay, RelayEvent};
use crate::client::{ClientSession, SessionEvent, SessionState};
use crate::failover::ServerList;
use crate::integrity::Rejection;
use crate::token::Token;
use crate::transmit::TxQueue;
use crate::wire::{Keepalive, Message, Nack, NackKind};
use crate::{StreamId, Time};

#[derive(Debug)]
pub(crate) struct Upstream {
    servers: ServerList,
    stream: StreamId,
    /// Access token for the upstream (§11.10), empty if none.
    token: Vec<u8>,
    session: ClientSession,
    /// Since when there has been no working subscription.
    down_since: Option<Time>,
    pub(crate) failovers: u64,
}

impl Upstream {
    /// Starts subscribing to `stream` at the first of `servers` (not empty).
    pub(crate) fn new(
        now: Time,
        servers: Vec<SocketAddr>,
        stream: StreamId,
        token: Vec<u8>,
        nonce_seed: u64,
        tx: &mut TxQueue,
    ) -> Option<Self> {
        let (&first, rest) = servers.split_first()?;
        let servers = ServerList::new(first, rest, nonce_seed);
        let mut session = ClientSession::new(
            servers.current(),
            stream,
            u64::MAX,
            token.clone(),
            nonce_seed,
        );
        session.start(now, tx);
        Some(Self {
            servers,
            stream,
            token,
            session,
            down_since: Some(now),
            failovers: 0,
        })
    }

    /// The server in use.
    pub(crate) fn server(&self) -> SocketAddr {
        self.session.server()
    }

    /// The session id to put in what the relay sends the server itself.
    pub(crate) fn id(&self) -> u64 {
        self.session.id()
    }

    /// Whether a server session message carrying `session` is this one's.
    pub(crate) fn owns(&self, session: u64) -> bool {
        self.session.owns(session)
    }

    /// Whether `addr` is one of this upstream's servers.
    pub(crate) fn is_server(&self, addr: SocketAddr) -> bool {
        self.servers.contains(addr)
    }

    /// Whether the current server has accepted the subscription.
    pub(crate) fn subscribed(&self) -> bool {
        self.session.state() == SessionState::Subscribed
    }

    /// Stream data arrived from the current server.
    pub(crate) fn heard(&mut self, now: Time) {
        self.servers.heard(now);
        self.session.heard(now);
    }

    /// When the current server, silent since a flowing stream's last
    /// datagram, is given up for the next one.
    fn stall_deadline(&self) -> Option<Time> {
        self.servers.stall_deadline(self.subscribed())
    }

    pub(crate) fn handle(
        &mut self,
        now: Time,
        msg: &Message<'_>,
        resume: Option<u64>,
        tx: &mut TxQueue,
    ) -> Option<SessionEvent> {
        let event = self.session.handle(now, msg, resume, tx);
        match event {
            Some(SessionEvent::Accepted { .. }) => self.down_since = None,
            Some(SessionEvent::Rejected(_) | SessionEvent::ServerLeft(_)) => {
                self.down_since.get_or_insert(now);
                if self.session.state() == SessionState::Closed
                    || matches!(event, Some(SessionEvent::ServerLeft(_)))
                {
                    self.fail_over(now, tx);
                }
            }
            // Only a peer's neighbour sessions widen.
            Some(SessionEvent::WidenRefused(_)) | None => {}
        }
        event
    }

    pub(crate) fn poll_timeout(&self) -> Option<Time> {
        let failover = self.down_since.map(|t| t + FAILOVER_AFTER);
        [self.session.poll_timeout(), failover, self.stall_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    pub(crate) fn handle_timeout(
        &mut self,
        now: Time,
        resume: Option<u64>,
        report: Keepalive,
        tx: &mut TxQueue,
    ) {
        if self.stall_deadline().is_some_and(|t| now >= t) {
            self.fail_over(now, tx);
            return;
        }
        if self.subscribed() {
            self.down_since = None;
        } else {
            let since = *self.down_since.get_or_insert(now);
            if now.saturating_since(since) >= FAILOVER_AFTER {
                self.fail_over(now, tx);
                return;
            }
        }
        self.session.handle_timeout(now, resume, report, tx);
    }

    /// Moves to the next server (or, with one server, keeps backing off on
    /// it) and starts a fresh handshake there.
    fn fail_over(&mut self, now: Time, tx: &mut TxQueue) {
        self.down_since = Some(now);
        if !self.servers.can_move() && self.session.state() != SessionState::Closed {
            return;
        }
        self.failovers += 1;
        let server = self.servers.advance();
        self.session = ClientSession::new(
            server,
            self.stream,
            u64::MAX,
            self.token.clone(),
            self.servers.nonce_seed(),
        );
        self.session.start(now, tx);
    }

    /// Ends the subscription.
    pub(crate) fn close(&mut self, tx: &mut TxQueue) {
        self.session.close(tx);
    }
}

/// The state of one upstream subscription, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamStatus {
    /// The stream taken.
    pub stream: StreamId,
    /// The server in use.
    pub server: SocketAddr,
    /// Whether it has accepted the subscription.
    pub subscribed: bool,
    /// Times the relay moved to another upstream.
    pub failovers: u64,
}

/// A block waiting for its manifest from the upstream relay.
#[derive(Debug, Clone, Copy)]
pub(super) struct Awaiting {
    pub(super) noticed: Time,
    pub(super) last_nack: Option<Time>,
    pub(super) nacks: u8,
}

/// Blocks tracked as awaiting their manifest, per stream.
pub(super) const MAX_AWAITING: usize = 64;
/// A manifest missing this long after its block's first chunk is NACKed
/// to the upstream relay.
pub(super) const MANIFEST_NACK_AFTER: Duration = Duration::from_millis(30);
/// Between two NACKs for one manifest.
const MANIFEST_NACK_EVERY: Duration = Duration::from_millis(150);
/// Tries per manifest.
const MANIFEST_NACK_TRIES: u8 = 5;

impl Relay {
    /// The relay's upstream subscriptions.
    pub fn upstreams(&self) -> impl Iterator<Item = UpstreamStatus> + '_ {
        self.streams.iter().filter_map(|s| {
            let up = s.upstream.as_ref()?;
            Some(UpstreamStatus {
                stream: s.window.stream(),
                server: up.server(),
                subscribed: up.subscribed(),
                failovers: up.failovers,
            })
        })
    }

    /// Takes `stream` from the relay at `server`, subscribing to all clubs.
    pub fn add_upstream(
        &mut self,
        now: Time,
        server: SocketAddr,
        stream: StreamId,
    ) -> Result<(), Rejection> {
        self.add_upstreams(now, &[server], stream)
    }

    /// Takes `stream` from the first of `servers` that serves it: retried
    /// with backoff, failing over down the list (see [`FAILOVER_AFTER`]).
    pub fn add_upstreams(
        &mut self,
        now: Time,
        servers: &[SocketAddr],
        stream: StreamId,
    ) -> Result<(), Rejection> {
        let i = self.add_stream(stream)?;
        let seed = self.config.nonce_seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let token = self
            .config
            .upstream_tokens
            .iter()
            .find(|t| Token::parse(t).is_ok_and(|t| t.stream == stream))
            .cloned()
            .unwrap_or_default();
        self.streams[i].configured = true;
        self.streams[i].upstream =
            Upstream::new(now, servers.to_vec(), stream, token, seed, &mut self.tx);
        Ok(())
    }

    pub(super) fn upstream_message(&mut self, now: Time, from: SocketAddr, msg: &Message<'_>) {
        if let Message::Leave(l) = msg {
            // A LEAVE ends an upstream session only with its id (§11.7).
            let owned = self.streams.iter().any(|s| {
                s.upstream
                    .as_ref()
                    .is_some_and(|u| u.server() == from && u.owns(l.session))
            });
            if !owned {
                if self.is_upstream(from) {
                    self.stats.drop_bad_session += 1;
                } else {
                    self.stats.drop_not_subscribed += 1;
                }
                return;
            }
        }
        for i in 0..self.streams.len() {
            let resume = self.streams[i].window.newest_seq().map(|s| s + 1);
            let Some(up) = &mut self.streams[i].upstream else {
                continue;
            };
            if up.server() != from {
                continue;
            }
            match up.handle(now, msg, resume, &mut self.tx) {
                Some(SessionEvent::Accepted { .. }) => {
                    let id = self.streams[i].window.stream();
                    self.event(RelayEvent::UpstreamSubscribed(from, id));
                }
                Some(SessionEvent::Rejected(r)) => {
                    self.event(RelayEvent::UpstreamRejected(from, r));
                }
                Some(SessionEvent::ServerLeft(_) | SessionEvent::WidenRefused(_)) | None => {}
            }
        }
    }

    /// Whether `addr` is one of the upstream servers this relay may use.
    pub fn is_upstream(&self, addr: SocketAddr) -> bool {
        self.streams
            .iter()
            .any(|s| s.upstream.as_ref().is_some_and(|u| u.is_server(addr)))
    }

    /// NACKs to the upstream relay the manifests of blocks whose chunks
    /// came without them.
    pub(super) fn nack_manifests(&mut self, now: Time) {
        if self.next_manifest_nack.is_none_or(|t| now < t) {
            return;
        }
        self.next_manifest_nack = None;
        for s in &mut self.streams {
            let Some(up) = &s.upstream else { continue };
            if !up.subscribed() {
                continue;
            }
            let mut nack = Nack::new(s.window.stream(), up.id());
            s.awaiting.retain(|_, a| a.nacks < MANIFEST_NACK_TRIES);
            for (&block, a) in &mut s.awaiting {
                let due = now >= a.noticed + MANIFEST_NACK_AFTER
                    && a.last_nack.is_none_or(|t| now >= t + MANIFEST_NACK_EVERY);
                if due {
                    let entry = crate::wire::NackEntry {
                        kind: NackKind::Manifests,
                        start: block,
                        len: 1,
                    };
                    if !nack.push(entry) {
                        break;
                    }
                    a.nacks += 1;
                    a.last_nack = Some(now);
                }
            }
            if !nack.entries().is_empty() {
                self.stats.manifest_nacks += 1;
                let _ = self.tx.push_message(up.server(), &Message::Nack(nack));
            }
            if !s.awaiting.is_empty() {
                let next = now + MANIFEST_NACK_AFTER;
                self.next_manifest_nack =
                    Some(self.next_manifest_nack.map_or(next, |t| t.min(next)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::client::STALL_AFTER;
    use crate::testutil::{addr, t};

    const A: &str = "127.0.0.1:1";
    const B: &str = "127.0.0.1:2";

    /// The HELLO nonces sent, by destination, emptying the queue.
    fn hellos(tx: &mut TxQueue) -> Vec<(SocketAddr, u64)> {
        let mut out = Vec::new();
        while let Some(t) = tx.pop() {
            if let Ok(Message::Hello(h)) = Message::parse(t.payload) {
                out.push((t.dst, h.nonce));
            }
        }
        out
    }

    /// An upstream subscribed to A at `t(0)`.
    fn subscribed(tx: &mut TxQueue) -> Upstream {
        let stream = StreamId([7; 32]);
        let mut up = Upstream::new(t(0), vec![addr(A), addr(B)], stream, Vec::new(), 1, tx)
            .expect("servers");
        let (_, nonce) = hellos(tx)[0];
        for answer in crate::testutil::handshake_answers(stream, nonce, 0) {
            up.handle(t(0), &answer, None, tx);
        }
        assert!(up.subscribed());
        hellos(tx);
        up
    }

    fn report() -> Keepalive {
        crate::testutil::keepalive(StreamId([7; 32]), 0)
    }

    #[test]
    fn a_flowing_stream_that_stops_fails_over_after_the_stall_time() {
        let mut tx = TxQueue::default();
        let mut up = subscribed(&mut tx);
        let stall = crate::testutil::flow(200, |now| up.heard(now)) + STALL_AFTER;
        // (The session probes the silent server with a KEEPALIVE first.)
        let mut now = t(200);
        while up.server() == addr(A) {
            now = up.poll_timeout().expect("a timer");
            assert!(now <= stall, "still on A at {now:?}");
            up.handle_timeout(now, None, report(), &mut tx);
        }
        assert_eq!(now, stall);
        assert_eq!(up.server(), addr(B));
        assert_eq!(up.failovers, 1);
        assert_eq!(hellos(&mut tx).first().map(|h| h.0), Some(addr(B)));
        // Nothing has flowed from B yet: no stall timer until it does.
        assert!(up.stall_deadline().is_none());
    }

    #[test]
    fn an_idle_stream_keeps_its_server() {
        let mut tx = TxQueue::default();
        let mut up = subscribed(&mut tx);
        // Only the DESCRIPTOR, once a second.
        for s in 0..5 {
            let now = t(s * 1000);
            up.heard(now);
            while let Some(at) = up
                .poll_timeout()
                .filter(|&at| at <= now + Duration::from_millis(999))
            {
                up.handle_timeout(at, None, report(), &mut tx);
            }
        }
        assert_eq!(up.server(), addr(A));
        assert_eq!(up.failovers, 0);
    }
}
