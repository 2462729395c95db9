//! `shoal peer`: watch a stream as `shoal watch` does and upload part of it
//! to other peers: an ordinary peer in the swarm ([`Peer`]).
//!
//! One UDP socket, on `--listen`, drives the peer: wait for a datagram
//! until the peer's next timer (at most [`MAX_WAIT`](super::udp::MAX_WAIT)), feed it, run the
//! timers, send what it queued (to the relay, its neighbours and the peers
//! it serves), then write the chunks it released. Other peers reach it at
//! the socket's address, as the relay sees it.
//!
//! At the end of the stream the output is flushed and the peer goes on
//! serving the peers it feeds, so that they get the last chunks and the
//! end from it too, until it has no timer left or [`LINGER`] passes; then
//! it leaves (LEAVE to the relay and its neighbours, the peers it serves
//! told to go elsewhere) and exits 0. A reader closing our stdout ends it
//! the same way, without the linger. A relay that never answers, or that
//! does not carry the stream, is an error after 5 s.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::Context;
use shoal_proto::Time;
use shoal_proto::peer::{Peer, PeerConfig, PeerStats};
use shoal_proto::viewer::ViewerEvent;

use super::args::{parse_latency, parse_stream, parse_token, parse_wait};
use super::join;
use super::output::{Output, Target, Written};
use super::progress::Progress;
use super::stop::StopFlag;
use super::udp::{is_transient, random_seed, recv_until};
use crate::dht::DhtArgs;
use crate::os;

/// How often the status line is printed.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Longest the peer goes on serving other peers after the end of the
/// stream.
const LINGER: Duration = Duration::from_secs(2);

/// `shoal peer` flags.
#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    /// The stream to watch (its id, as printed by shoal keygen).
    #[arg(long, value_name = "ID")]
    pub stream: String,
    /// The relay to join the swarm through: HOST:PORT (or shoal://HOST:PORT).
    /// Without it, the stream's relays are found on the BitTorrent Mainline
    /// DHT by the stream id, and the fastest to answer is joined.
    #[arg(long, value_name = "ADDR")]
    pub relay: Option<String>,
    #[command(flatten)]
    pub dht: DhtArgs,
    /// Where the stream goes: - for stdout, a file path, or udp://HOST:PORT.
    #[arg(long, value_name = "-|PATH|udp://HOST:PORT", default_value = "-")]
    pub output: String,
    /// Most this peer uploads to other peers, such as 8Mbit or 500kbit; 0
    /// uploads nothing (a pure viewer).
    #[arg(long, value_name = "RATE", default_value = "8Mbit")]
    pub upload_limit: String,
    /// Longest a chunk may take from publisher to output before it is
    /// given up as lost.
    #[arg(long, value_name = "TIME", default_value = "2s")]
    pub latency: String,
    /// Local UDP address, IP:PORT; other peers reach this peer there
    /// [default: 0.0.0.0:0, or [::]:0 for an IPv6 relay].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// How long to wait for the stream's first chunk before saying the
    /// stream is not there (a relay holds a subscription to a stream that
    /// has not started yet, so an unknown id looks like a stream not yet
    /// live); 0 waits for ever.
    #[arg(long, value_name = "TIME", default_value = "10s")]
    pub wait: String,
    /// No status line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Access token for relays that require one, as printed by
    /// `shoal token` (the stream's owner makes it).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Runs `shoal peer`.
pub fn run(args: &PeerArgs) -> anyhow::Result<()> {
    let stream = parse_stream(&args.stream)?;
    let latency = parse_latency(&args.latency)?;
    let wait = parse_wait(&args.wait)?;
    let token = match &args.token {
        Some(text) => parse_token(text, &stream)?,
        None => Vec::new(),
    };
    let upload_limit = parse_upload_limit(&args.upload_limit)?;
    let target = Target::parse(&args.output)?;
    let join = join::plan(args.relay.as_deref(), &args.dht, &stream, args.quiet)?;
    let relay = join.relay;
    let listen = parse_listen(args.listen.as_deref(), relay)?;

    let mut config = PeerConfig::new(relay, stream);
    config.fallbacks = join.fallbacks;
    config.latency = latency;
    config.upload_limit_bps = upload_limit;
    config.token = token;
    // Forgeable cookies would let anyone make this peer send to any
    // address: no stand-in for the OS's randomness here.
    config.cookie_secret = os::random_bytes()
        .context("cannot read /dev/urandom for the upload side's cookie secret")?;
    config.nonce_seed = random_seed();
    let started = os::now();
    let peer = Peer::new(config, started).map_err(|e| {
        anyhow::anyhow!(
            "--stream {:?}: not a valid stream key ({e}); copy the id printed by shoal keygen",
            args.stream
        )
    })?;
    let socket = UdpSocket::bind(listen).map_err(|e| {
        anyhow::anyhow!(
            "--listen {listen}: cannot open a UDP socket there ({e}); use a local address and a free port, or port 0"
        )
    })?;
    let output = Output::open(&target)?;

    let mut run = Run {
        peer,
        socket,
        output,
        quiet: args.quiet,
        progress: Progress::new(&join.relay_text, &args.stream, args.quiet, started, wait),
        lingering: None,
        status: Status::new(started),
        stop: StopFlag::install()?,
    };
    run.run()
}

/// Whether the loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Go,
    Done,
}

/// The running command: the peer and its IO.
#[derive(Debug)]
struct Run {
    peer: Peer,
    socket: UdpSocket,
    output: Output,
    quiet: bool,
    progress: Progress,
    /// After the end of the stream: serving other peers until then.
    lingering: Option<Time>,
    status: Status,
    /// SIGINT or SIGTERM: leave the relay, the neighbours and the peers
    /// served, and end.
    stop: StopFlag,
}

impl Run {
    fn run(&mut self) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 65536];
        loop {
            let now = os::now();
            if self.peer.poll_timeout().is_some_and(|t| t <= now) {
                self.peer.handle_timeout(now);
            }
            if self.drain(now)? == Step::Done {
                return self.leave();
            }
            if self.stop.is_set() {
                if self.lingering.is_none() {
                    self.output.finish()?;
                }
                if !self.quiet {
                    eprintln!("shoal: stopped");
                }
                return self.leave();
            }
            match self.lingering {
                Some(until) if now >= until || self.peer.poll_timeout().is_none() => {
                    return self.leave();
                }
                Some(_) => {}
                None => {
                    self.progress.check(now, self.status.subscribed)?;
                    if !self.quiet {
                        self.status.maybe_print(now, &self.peer.stats());
                    }
                }
            }

            match recv_until(&self.socket, self.peer.poll_timeout(), &mut buf) {
                Ok((n, from)) => {
                    if from == self.peer.relay() {
                        self.progress.heard = true;
                    }
                    let bytes = buf.get(..n).unwrap_or_default();
                    self.peer.handle_datagram(os::now(), from, bytes);
                }
                Err(e) if is_noise(&e) => {}
                Err(e) => return Err(e).context("receiving on the peer's socket"),
            }
        }
    }

    /// Sends what the peer queued and acts on its events.
    fn drain(&mut self, now: Time) -> anyhow::Result<Step> {
        self.send_queued()?;
        let mut wrote = false;
        while let Some(event) = self.peer.poll_event() {
            match event {
                ViewerEvent::Subscribed { start_seq } => {
                    tracing::debug!(start_seq, "subscribed");
                    if !self.quiet && !self.status.subscribed {
                        eprintln!(
                            "shoal: subscribed to {} at relay {}; other peers reach this one at {}",
                            self.progress.stream_text(),
                            self.progress.relay_text(),
                            self.local_addr()
                        );
                    }
                    self.status.subscribed = true;
                    self.progress.subscribed();
                }
                ViewerEvent::Chunk {
                    payload, latency, ..
                } => {
                    self.status.latency = Some(latency);
                    self.progress.got_chunk = true;
                    if self.output.write(&payload)? == Written::Closed {
                        return Ok(Step::Done);
                    }
                    wrote = true;
                }
                ViewerEvent::Gap { from, to } => tracing::debug!(from, to, "gap"),
                ViewerEvent::NewRun { epoch } => self.progress.new_run(epoch),
                ViewerEvent::Rejected(reason) => self.progress.rejected(now, reason)?,
                ViewerEvent::RelayChanged { from, to } => self.progress.moved(from, to),
                ViewerEvent::EndOfStream => return self.ended(now),
            }
        }
        if wrote && self.output.flush()? == Written::Closed {
            return Ok(Step::Done);
        }
        Ok(Step::Go)
    }

    /// The stream is over: flush, then linger for the peers served.
    fn ended(&mut self, now: Time) -> anyhow::Result<Step> {
        if self.lingering.is_some() {
            return Ok(Step::Go);
        }
        self.lingering = Some(now + LINGER);
        self.send_queued()?;
        self.output.finish()?;
        if !self.quiet {
            let stats = self.peer.stats();
            self.status.print(os::now(), &stats);
            if stats.subscribers > 0 {
                eprintln!(
                    "shoal: end of stream; serving {} peers for up to {} s",
                    stats.subscribers,
                    LINGER.as_secs()
                );
            } else {
                eprintln!("shoal: end of stream");
            }
        }
        Ok(Step::Go)
    }

    /// Leaves the swarm, telling the relay, neighbours and the peers served.
    fn leave(&mut self) -> anyhow::Result<()> {
        self.peer.close();
        self.send_queued()
    }

    fn local_addr(&self) -> String {
        self.socket
            .local_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string())
    }

    fn send_queued(&mut self) -> anyhow::Result<()> {
        let relay = self.peer.relay();
        while let Some(t) = self.peer.poll_transmit() {
            match self.socket.send_to(t.payload, t.dst) {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                // Another peer may be unreachable; the peer replaces a
                // neighbour that goes silent, so only the relay matters.
                Err(e) if t.dst != relay => {
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

/// Errors the peer's socket reports that change nothing: the transient
/// ones, and another peer's host or network being unreachable (ICMP from
/// an earlier send; the peer replaces that neighbour).
fn is_noise(e: &io::Error) -> bool {
    is_transient(e)
        || matches!(
            e.kind(),
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable
        )
}

/// The once-a-second status line.
#[derive(Debug)]
struct Status {
    /// Printed only once there is something to tell.
    subscribed: bool,
    last: Time,
    /// The counters at the last line.
    seen: PeerStats,
    /// Latency of the latest chunk, from its publisher timestamp.
    latency: Option<Duration>,
}

impl Status {
    fn new(now: Time) -> Self {
        Self {
            subscribed: false,
            last: now,
            seen: PeerStats::default(),
            latency: None,
        }
    }

    fn maybe_print(&mut self, now: Time, stats: &PeerStats) {
        if self.subscribed && now.saturating_since(self.last) >= STATUS_EVERY {
            self.print(now, stats);
        }
    }

    fn print(&mut self, now: Time, stats: &PeerStats) {
        let elapsed = now.saturating_since(self.last).as_secs_f64().max(1e-3);
        let line = status_line(self.latency, stats, &self.seen, elapsed);
        self.last = now;
        self.seen = *stats;
        eprintln!("shoal: {line}");
    }
}

/// The line for the `elapsed` seconds from `before` to `stats`.
fn status_line(
    latency: Option<Duration>,
    stats: &PeerStats,
    before: &PeerStats,
    elapsed: f64,
) -> String {
    let latency = latency.map_or_else(|| "-".to_owned(), |l| format!("{} ms", l.as_millis()));
    let mbps = |now: u64, then: u64| now.saturating_sub(then) as f64 * 8.0 / elapsed / 1e6;
    let from_peers = stats
        .from_peers_bytes
        .saturating_sub(before.from_peers_bytes);
    let from_relay = stats
        .from_relay_bytes
        .saturating_sub(before.from_relay_bytes);
    let share = match from_peers + from_relay {
        0 => "-".to_owned(),
        total => format!("{:.0}%", 100.0 * from_peers as f64 / total as f64),
    };
    let v = &stats.viewer;
    format!(
        "latency {latency}, repaired {} by FEC and {} by NACK, lost {}, {:.2} Mbit/s; \
         uploading {:.2} Mbit/s to {} peers, {} neighbours, {share} from peers",
        v.fec_repaired,
        v.nack_repaired,
        v.lost,
        mbps(v.played_bytes, before.viewer.played_bytes),
        mbps(stats.uploaded_bytes, before.uploaded_bytes),
        stats.subscribers,
        stats.working_sources,
    )
}

/// `--upload-limit`: a rate such as `8Mbit` or `500kbit`, or 0 for none.
fn parse_upload_limit(text: &str) -> anyhow::Result<u64> {
    if text.trim() == "0" {
        return Ok(0);
    }
    crate::units::bitrate(text)
        .map_err(|why| anyhow::anyhow!("--upload-limit {text:?}: {why}, or 0 to upload nothing"))
}

/// `--listen`: an IP:PORT of the relay's family; none is the wildcard
/// address with a port the OS picks.
fn parse_listen(text: Option<&str>, relay: SocketAddr) -> anyhow::Result<SocketAddr> {
    let wildcard = if relay.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let Some(text) = text else {
        return wildcard.parse().context("a wildcard address");
    };
    let example = if relay.is_ipv4() {
        "0.0.0.0:7500"
    } else {
        "[::]:7500"
    };
    let addr: SocketAddr = text.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "--listen {text:?}: not an address; use IP:PORT such as {example} (port 0 lets the OS pick)"
        )
    })?;
    if addr.is_ipv4() != relay.is_ipv4() {
        let (family, other) = if relay.is_ipv4() {
            ("IPv4", "IPv6")
        } else {
            ("IPv6", "IPv4")
        };
        anyhow::bail!(
            "--listen {text:?}: an {other} address cannot reach relay {relay} ({family}); use an {family} address such as {example}"
        );
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_limit_parses() {
        assert_eq!(parse_upload_limit("0").ok(), Some(0));
        assert_eq!(parse_upload_limit("8Mbit").ok(), Some(8_000_000));
        assert_eq!(parse_upload_limit("500kbit").ok(), Some(500_000));
        for bad in ["", "lots", "-1Mbit", "10", "8MB"] {
            let err = parse_upload_limit(bad).expect_err(bad).to_string();
            assert!(err.starts_with(&format!("--upload-limit {bad:?}")), "{err}");
            assert!(err.contains("8Mbit") || err.contains("3Mbit"), "{err}");
            assert!(err.ends_with("or 0 to upload nothing"), "{err}");
        }
    }

    #[test]
    fn listen_parses() {
        let v4: SocketAddr = "127.0.0.1:7400".parse().expect("addr");
        let v6: SocketAddr = "[::1]:7400".parse().expect("addr");
        let ok = |t: Option<&str>, relay| parse_listen(t, relay).ok().map(|a| a.to_string());
        assert_eq!(ok(None, v4).as_deref(), Some("0.0.0.0:0"));
        assert_eq!(ok(None, v6).as_deref(), Some("[::]:0"));
        assert_eq!(
            ok(Some("127.0.0.1:7500"), v4).as_deref(),
            Some("127.0.0.1:7500")
        );
        for bad in ["", "7500", "localhost:7500", "[::]:7500", "1.2.3.4:99999"] {
            let err = parse_listen(Some(bad), v4).expect_err(bad).to_string();
            assert!(err.starts_with(&format!("--listen {bad:?}")), "{err}");
            assert!(err.contains("0.0.0.0:7500"), "{err}");
        }
    }

    #[test]
    fn status_line_reads() {
        let mut stats = PeerStats::default();
        stats.viewer.fec_repaired = 3;
        stats.viewer.nack_repaired = 1;
        stats.viewer.lost = 2;
        stats.viewer.played_bytes = 312_500;
        stats.uploaded_bytes = 625_000;
        stats.subscribers = 4;
        stats.working_sources = 6;
        stats.from_peers_bytes = 300;
        stats.from_relay_bytes = 100;
        let line = status_line(
            Some(Duration::from_millis(120)),
            &stats,
            &PeerStats::default(),
            1.0,
        );
        assert_eq!(
            line,
            "latency 120 ms, repaired 3 by FEC and 1 by NACK, lost 2, 2.50 Mbit/s; \
             uploading 5.00 Mbit/s to 4 peers, 6 neighbours, 75% from peers"
        );
    }
}
