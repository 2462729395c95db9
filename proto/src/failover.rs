//! A list of servers to subscribe to, one at a time, and the stall rule
//! that leaves the one in use: what a relay's upstream
//! ([`crate::relay`]) and a viewer with fallbacks ([`crate::viewer`])
//! share. Each owner keeps its own rule for a subscription that does not
//! work at all ([`crate::client::FAILOVER_AFTER`]), as they differ on a
//! single server and on a final refusal.

use std::net::SocketAddr;

use crate::Time;
use crate::client::{FLOWING_GAP, STALL_AFTER};

/// Servers in order of preference, and how the one in use is doing.
#[derive(Debug)]
pub(crate) struct ServerList {
    servers: Vec<SocketAddr>,
    current: usize,
    /// Seed of the current session's handshake nonces.
    nonce_seed: u64,
    /// When the server in use last sent stream data.
    stream_heard: Option<Time>,
    /// Whether its last two stream datagrams were [`FLOWING_GAP`] apart
    /// or less.
    flowing: bool,
}

impl ServerList {
    /// `first` (in use now), then `rest`.
    pub(crate) fn new(first: SocketAddr, rest: &[SocketAddr], nonce_seed: u64) -> Self {
        let mut servers = Vec::with_capacity(1 + rest.len());
        servers.push(first);
        servers.extend_from_slice(rest);
        Self {
            servers,
            current: 0,
            nonce_seed,
            stream_heard: None,
            flowing: false,
        }
    }

    /// The server in use.
    pub(crate) fn current(&self) -> SocketAddr {
        self.servers[self.current]
    }

    /// The nonce seed for a session with the server in use.
    pub(crate) fn nonce_seed(&self) -> u64 {
        self.nonce_seed
    }

    /// Whether there is another server to move to.
    pub(crate) fn can_move(&self) -> bool {
        self.servers.len() > 1
    }

    /// Whether `addr` is one of the servers.
    pub(crate) fn contains(&self, addr: SocketAddr) -> bool {
        self.servers.contains(&addr)
    }

    /// When the server in use last sent stream data.
    #[cfg(test)]
    pub(crate) fn stream_heard(&self) -> Option<Time> {
        self.stream_heard
    }

    /// Stream data arrived from the server in use.
    pub(crate) fn heard(&mut self, now: Time) {
        self.flowing = self
            .stream_heard
            .is_some_and(|t| now.saturating_since(t) <= FLOWING_GAP);
        self.stream_heard = Some(now);
    }

    /// Forgets how the stream was flowing: its silence counts only once
    /// it flows again.
    pub(crate) fn forget_stream(&mut self) {
        self.stream_heard = None;
        self.flowing = false;
    }

    /// When the server in use, silent since a flowing stream's last
    /// datagram, is given up for the next: only while `subscribed`, and
    /// with another server to move to.
    pub(crate) fn stall_deadline(&self, subscribed: bool) -> Option<Time> {
        let stalls = self.can_move() && self.flowing && subscribed;
        self.stream_heard
            .filter(|_| stalls)
            .map(|t| t + STALL_AFTER)
    }

    /// Moves to the next server (wrapping round) with a fresh nonce seed,
    /// and returns it.
    pub(crate) fn advance(&mut self) -> SocketAddr {
        self.current = (self.current + 1) % self.servers.len();
        self.nonce_seed = self.nonce_seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.forget_stream();
        self.current()
    }
}
