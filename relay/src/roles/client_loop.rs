//! The run loop `shoal watch` and `shoal peer` share.
//!
//! One UDP socket drives a [`Client`] (a [`Viewer`], or a [`Peer`] that
//! also uploads): wait for a datagram until the client's next timer (at
//! most [`MAX_WAIT`](super::udp::MAX_WAIT)), feed it, run the timers, send
//! what it queued, then write the chunks it released. The end of the
//! stream flushes the output; a viewer then exits 0, a peer first goes on
//! serving the peers it feeds for up to [`LINGER`]. A reader closing our
//! stdout ends the run the same way, without the linger. A relay that
//! never answers, or that does not carry the stream, is an error after
//! 5 s (see [`Progress`]).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shoal_proto::peer::{Peer, PeerStats};
use shoal_proto::viewer::{Viewer, ViewerEvent, ViewerStats};
use shoal_proto::{StreamId, Time, Transmit};

use super::args::{parse_latency, parse_stream, parse_token, parse_wait};
use super::join::Join;
use super::output::{Output, Written};
use super::progress::Progress;
use super::stop::StopFlag;
use super::udp::{is_transient, recv_until};
use crate::os;
use crate::web::Feed;

/// How often the status line is printed.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Longest a peer goes on serving other peers after the end of the
/// stream.
pub(super) const LINGER: Duration = Duration::from_secs(2);

/// A client state machine, as the loop drives it: the sans-IO door of
/// [`Viewer`] and [`Peer`], and what their status lines say.
pub(super) trait Client {
    /// The counters the status line is made of.
    type Stats: Copy + Default;
    /// Whether it uploads to other peers: they reach it at the socket's
    /// address (told once subscribed), a failed exchange with one of them
    /// is no reason to stop, and at the end of the stream it lingers for
    /// them, then leaves all of them.
    const UPLOADS: bool;

    fn poll_timeout(&self) -> Option<Time>;
    fn handle_timeout(&mut self, now: Time);
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]);
    fn poll_event(&mut self) -> Option<ViewerEvent>;
    fn poll_transmit(&mut self) -> Option<Transmit<'_>>;
    fn relay(&self) -> SocketAddr;
    fn close(&mut self);
    fn stats(&self) -> Self::Stats;
    /// Whether the relay accepts the subscription now; a client that
    /// cannot tell answers whether it ever did (`ever`).
    fn is_subscribed(&self, ever: bool) -> bool;
    /// Peers it serves.
    fn peers_served(stats: &Self::Stats) -> u64;
    /// The status line for the `elapsed` seconds from `before` to `stats`.
    fn status_line(
        latency: Option<Duration>,
        stats: &Self::Stats,
        before: &Self::Stats,
        elapsed: f64,
    ) -> String;
    /// Its address as the relay sees it, once known.
    fn reflexive_addr(&self) -> Option<SocketAddr> {
        None
    }
    /// The next line of news for the user (a peer's new neighbour).
    fn poll_news(&mut self) -> Option<String> {
        None
    }
}

/// The sans-IO door: [`Viewer`] and [`Peer`] have the same methods.
macro_rules! door {
    () => {
        fn poll_timeout(&self) -> Option<Time> {
            self.poll_timeout()
        }
        fn handle_timeout(&mut self, now: Time) {
            self.handle_timeout(now);
        }
        fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
            self.handle_datagram(now, from, bytes);
        }
        fn poll_event(&mut self) -> Option<ViewerEvent> {
            self.poll_event()
        }
        fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
            self.poll_transmit()
        }
        fn relay(&self) -> SocketAddr {
            self.relay()
        }
        fn close(&mut self) {
            self.close();
        }
    };
}

impl Client for Viewer {
    type Stats = ViewerStats;
    const UPLOADS: bool = false;

    door!();

    fn stats(&self) -> ViewerStats {
        self.stats()
    }
    fn is_subscribed(&self, _ever: bool) -> bool {
        self.is_subscribed()
    }
    fn peers_served(_: &ViewerStats) -> u64 {
        0
    }
    fn status_line(
        latency: Option<Duration>,
        stats: &ViewerStats,
        before: &ViewerStats,
        elapsed: f64,
    ) -> String {
        let bits = stats.played_bytes.saturating_sub(before.played_bytes) as f64 * 8.0;
        super::watch::status_line(latency, stats, bits / elapsed)
    }
}

impl Client for Peer {
    type Stats = PeerStats;
    const UPLOADS: bool = true;

    door!();

    fn stats(&self) -> PeerStats {
        self.stats()
    }
    fn is_subscribed(&self, ever: bool) -> bool {
        ever
    }
    fn peers_served(stats: &PeerStats) -> u64 {
        stats.subscribers
    }
    fn status_line(
        latency: Option<Duration>,
        stats: &PeerStats,
        before: &PeerStats,
        elapsed: f64,
    ) -> String {
        super::peer::status_line(latency, stats, before, elapsed)
    }
    fn reflexive_addr(&self) -> Option<SocketAddr> {
        self.reflexive_addr()
    }
    fn poll_news(&mut self) -> Option<String> {
        self.poll_link().map(|link| super::peer::link_line(&link))
    }
}

/// The flags `shoal watch` and `shoal peer` share, parsed.
pub(super) struct Flags {
    pub(super) stream: StreamId,
    /// The stream as given, for messages.
    text: String,
    pub(super) latency: Duration,
    wait: Duration,
    pub(super) token: Vec<u8>,
}

impl Flags {
    pub(super) fn parse(
        stream_text: &str,
        latency: &str,
        wait: &str,
        token: Option<&str>,
    ) -> anyhow::Result<Self> {
        let stream = parse_stream(stream_text)?;
        let latency = parse_latency(latency)?;
        let wait = parse_wait(wait)?;
        let token = match token {
            Some(text) => parse_token(text, &stream)?,
            None => Vec::new(),
        };
        Ok(Self {
            stream,
            text: stream_text.to_owned(),
            latency,
            wait,
            token,
        })
    }
}

/// The error for a `--stream` the state machine refuses as a key.
pub(super) fn bad_key(stream: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "--stream {stream:?}: not a valid stream key ({e}); copy the id printed by shoal keygen"
    )
}

/// Whether the loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Go,
    Done,
}

/// The running command: the client and its IO.
#[derive(Debug)]
pub(super) struct ClientLoop<C: Client> {
    client: C,
    socket: UdpSocket,
    output: Output,
    quiet: bool,
    progress: Progress,
    /// After the end of the stream: serving other peers until then.
    lingering: Option<Time>,
    status: Status<C::Stats>,
    /// SIGINT or SIGTERM: leave (the relay, and any neighbours and peers
    /// served) and end.
    stop: StopFlag,
    /// Where played chunks also go: a browser's feed (`--http`).
    tee: Option<Arc<Feed>>,
}

impl<C: Client> ClientLoop<C> {
    /// Starts at `started` (when `client` was made), at the relay `join`
    /// chose.
    pub(super) fn new(
        client: C,
        socket: UdpSocket,
        output: Output,
        flags: &Flags,
        join: &Join,
        quiet: bool,
        started: Time,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client,
            socket,
            output,
            quiet,
            progress: Progress::new(&join.relay_text, &flags.text, quiet, started, flags.wait),
            lingering: None,
            status: Status::new(started),
            stop: StopFlag::install()?,
            tee: None,
        })
    }

    /// Also plays every chunk into `feed`, and ends it with the stream.
    pub(super) fn with_tee(mut self, feed: Arc<Feed>) -> Self {
        self.tee = Some(feed);
        self
    }

    pub(super) fn run(&mut self) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 65536];
        loop {
            let now = os::now();
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
            if self.drain(now)? == Step::Done {
                return self.done();
            }
            if self.stop.is_set() {
                if self.lingering.is_none() {
                    self.output.finish()?;
                }
                if !self.quiet {
                    if !C::UPLOADS {
                        self.status.print::<C>(os::now(), &self.client.stats());
                    }
                    eprintln!("shoal: stopped");
                }
                // LEAVE, so the relay stops sending now rather than at
                // the subscription's timeout.
                return self.leave();
            }
            match self.lingering {
                Some(until) if now >= until || self.client.poll_timeout().is_none() => {
                    return self.leave();
                }
                Some(_) => {}
                None => {
                    let subscribed = self.client.is_subscribed(self.status.subscribed);
                    self.progress.check(now, subscribed)?;
                    if !self.quiet {
                        self.status.maybe_print::<C>(now, &self.client.stats());
                    }
                }
            }

            match recv_until(&self.socket, self.client.poll_timeout(), &mut buf) {
                Ok((n, from)) => {
                    if from == self.client.relay() {
                        self.progress.heard = true;
                    }
                    let bytes = buf.get(..n).unwrap_or_default();
                    self.client.handle_datagram(os::now(), from, bytes);
                }
                Err(e) if is_noise::<C>(&e) => {}
                Err(e) if C::UPLOADS => return Err(e).context("receiving on the peer's socket"),
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("receiving from relay {}", self.client.relay()));
                }
            }
        }
    }

    /// Sends what the client queued and acts on its events.
    fn drain(&mut self, now: Time) -> anyhow::Result<Step> {
        self.send_queued()?;
        let mut wrote = false;
        while let Some(news) = self.client.poll_news() {
            if !self.quiet {
                eprintln!("shoal: {news}");
            }
        }
        while let Some(event) = self.client.poll_event() {
            match event {
                ViewerEvent::Subscribed { start_seq } => {
                    tracing::debug!(start_seq, "subscribed");
                    if !self.quiet && !self.status.subscribed {
                        let reach = if C::UPLOADS {
                            reach_line(self.client.reflexive_addr(), self.socket.local_addr().ok())
                        } else {
                            String::new()
                        };
                        eprintln!(
                            "shoal: subscribed to {} at relay {}{reach}",
                            self.progress.stream_text(),
                            self.progress.relay_text(),
                        );
                    }
                    self.status.subscribed = true;
                    self.progress.subscribed();
                }
                ViewerEvent::Chunk {
                    payload,
                    latency,
                    keyframe,
                    ..
                } => {
                    self.status.latency = Some(latency);
                    self.progress.got_chunk = true;
                    if let Some(feed) = &self.tee {
                        feed.push(payload.to_vec(), keyframe, latency);
                    }
                    if self.output.write(&payload)? == Written::Closed {
                        return Ok(Step::Done);
                    }
                    wrote = true;
                }
                ViewerEvent::Gap { from, to } => tracing::debug!(from, to, "gap"),
                ViewerEvent::NewRun { epoch } => self.progress.new_run(epoch),
                ViewerEvent::Rejected(reason) => self.progress.rejected(now, reason)?,
                ViewerEvent::RelayChanged { from, to } => self.progress.moved(from, to),
                // The last event a client gives.
                ViewerEvent::EndOfStream => return self.ended(now),
            }
        }
        if wrote && self.output.flush()? == Written::Closed {
            return Ok(Step::Done);
        }
        Ok(Step::Go)
    }

    /// The stream is over: flush, then end, or linger for the peers
    /// served.
    fn ended(&mut self, now: Time) -> anyhow::Result<Step> {
        if self.lingering.is_some() {
            return Ok(Step::Go);
        }
        if let Some(feed) = &self.tee {
            feed.end();
        }
        if C::UPLOADS {
            self.lingering = Some(now + LINGER);
        }
        // A viewer's LEAVE, queued on ending.
        self.send_queued()?;
        self.output.finish()?;
        if !self.quiet {
            let stats = self.client.stats();
            self.status.print::<C>(os::now(), &stats);
            match C::peers_served(&stats) {
                0 => eprintln!("shoal: end of stream"),
                served => eprintln!(
                    "shoal: end of stream; serving {served} peers for up to {} s",
                    LINGER.as_secs()
                ),
            }
        }
        Ok(if C::UPLOADS { Step::Go } else { Step::Done })
    }

    /// The run is over: a peer leaves the swarm (a viewer has left on
    /// ending, or stays until the relay's timeout when its reader left).
    fn done(&mut self) -> anyhow::Result<()> {
        if C::UPLOADS { self.leave() } else { Ok(()) }
    }

    /// Leaves, telling the relay, and any neighbours and peers served.
    fn leave(&mut self) -> anyhow::Result<()> {
        self.client.close();
        self.send_queued()
    }

    fn send_queued(&mut self) -> anyhow::Result<()> {
        let relay = self.client.relay();
        while let Some(t) = self.client.poll_transmit() {
            match send(&self.socket, &t) {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                // Another peer may be unreachable; the peer replaces a
                // neighbour that goes silent, so only the relay matters.
                Err(e) if C::UPLOADS && t.dst != relay => {
                    tracing::trace!(error = %e, dst = %t.dst, "send to a peer failed");
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("sending to relay {}", t.dst));
                }
            }
        }
        Ok(())
    }
}

/// Errors the socket reports that change nothing: the transient ones,
/// and, for a client that uploads, another peer's host or network being
/// unreachable (ICMP from an earlier send; the peer replaces that
/// neighbour).
fn is_noise<C: Client>(e: &io::Error) -> bool {
    is_transient(e)
        || (C::UPLOADS
            && matches!(
                e.kind(),
                io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable
            ))
}

/// What a peer tells its user about where others reach it: the address
/// its relay saw (`seen`), and whether a NAT changed the port of its
/// socket (`local`) on the way, in which case it may map the peer anew
/// toward every destination and others reach it only once it greets them.
fn reach_line(seen: Option<SocketAddr>, local: Option<SocketAddr>) -> String {
    let local_text = local.map_or_else(|| "?".to_owned(), |a| a.to_string());
    match seen {
        Some(seen) if local.is_some_and(|l| l.port() != seen.port()) => format!(
            "; other peers reach this one at {seen}, as the relay sees it (local socket {local_text}): \
             a NAT changed the port, so peers may reach it only after it greets them"
        ),
        Some(seen) => format!(
            "; other peers reach this one at {seen}, as the relay sees it (local socket {local_text})"
        ),
        None => format!("; other peers reach this one at {local_text}"),
    }
}

/// The once-a-second status line.
#[derive(Debug)]
struct Status<S> {
    /// Printed only once there is something to tell.
    subscribed: bool,
    last: Time,
    /// The counters at the last line.
    seen: S,
    /// Latency of the latest chunk, from its publisher timestamp.
    latency: Option<Duration>,
}

impl<S: Copy + Default> Status<S> {
    fn new(now: Time) -> Self {
        Self {
            subscribed: false,
            last: now,
            seen: S::default(),
            latency: None,
        }
    }

    fn maybe_print<C: Client<Stats = S>>(&mut self, now: Time, stats: &S) {
        if self.subscribed && now.saturating_since(self.last) >= STATUS_EVERY {
            self.print::<C>(now, stats);
        }
    }

    fn print<C: Client<Stats = S>>(&mut self, now: Time, stats: &S) {
        let elapsed = now.saturating_since(self.last).as_secs_f64().max(1e-3);
        let line = C::status_line(self.latency, stats, &self.seen, elapsed);
        self.last = now;
        self.seen = *stats;
        eprintln!("shoal: {line}");
    }
}

/// Sends `t`, with its TTL (IPv6: hop limit) if it asks for one: the
/// socket's is set for this datagram and put back.
fn send(socket: &UdpSocket, t: &Transmit<'_>) -> io::Result<usize> {
    let Some(ttl) = t.ttl.map(u32::from) else {
        return socket.send_to(t.payload, t.dst);
    };
    let sock = socket2::SockRef::from(socket);
    let v6 = t.dst.is_ipv6();
    let default = if v6 {
        sock.unicast_hops_v6()?
    } else {
        sock.ttl_v4()?
    };
    let set = |hops| {
        if v6 {
            sock.set_unicast_hops_v6(hops)
        } else {
            sock.set_ttl_v4(hops)
        }
    };
    set(ttl)?;
    let sent = socket.send_to(t.payload, t.dst);
    set(default)?;
    sent
}

#[cfg(test)]
mod tests {
    use super::reach_line;

    #[test]
    fn the_reach_line_names_the_address_the_relay_saw_and_a_changed_port() {
        let local = "0.0.0.0:40000".parse().ok();
        let kept = reach_line("198.18.3.2:40000".parse().ok(), local);
        assert!(
            kept.contains("at 198.18.3.2:40000, as the relay sees it"),
            "{kept}"
        );
        assert!(!kept.contains("changed"), "{kept}");
        let moved = reach_line("198.18.4.2:19620".parse().ok(), local);
        assert!(moved.contains("a NAT changed the port"), "{moved}");
        assert_eq!(
            reach_line(None, local),
            "; other peers reach this one at 0.0.0.0:40000"
        );
    }
}
