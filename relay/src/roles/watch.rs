//! `shoal watch`: subscribe to a stream at a relay and write the
//! reassembled bytes, in order, to stdout, a file or UDP.
//!
//! One UDP socket drives a [`Viewer`]: wait for a datagram until the
//! viewer's next timer (at most [`MAX_WAIT`](super::udp::MAX_WAIT)), feed it, run the timers,
//! send what it queued, then write the chunks it released. The end of the
//! stream flushes the output and exits 0; so does a reader closing our
//! stdout. A relay that never answers, or that does not carry the stream,
//! is an error after 5 s.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::os;

use anyhow::Context;
use shoal_proto::Time;
use shoal_proto::viewer::{Viewer, ViewerConfig, ViewerEvent, ViewerStats};

use super::args::{parse_latency, parse_stream, parse_token, parse_wait};
use super::join;
use super::output::{Output, Target, Written};
use super::progress::Progress;
use super::stop::StopFlag;
use super::udp::{is_transient, random_seed, recv_until};
use crate::dht::DhtArgs;

/// How often the status line is printed.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// `shoal watch` flags.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The stream to watch (its id, as printed by shoal keygen).
    #[arg(long, value_name = "ID")]
    pub stream: String,
    /// The relay to subscribe to: HOST:PORT (or shoal://HOST:PORT). Without
    /// it, the stream's relays are found on the BitTorrent Mainline DHT by
    /// the stream id, and the fastest to answer is joined.
    #[arg(long, value_name = "ADDR")]
    pub relay: Option<String>,
    #[command(flatten)]
    pub dht: DhtArgs,
    /// Where the stream goes: - for stdout, a file path, or udp://HOST:PORT.
    #[arg(long, value_name = "-|PATH|udp://HOST:PORT", default_value = "-")]
    pub output: String,
    /// Longest a chunk may take from publisher to output before it is
    /// given up as lost.
    #[arg(long, value_name = "TIME", default_value = "500ms")]
    pub latency: String,
    /// No status line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Access token for relays that require one, as printed by
    /// `shoal token` (the stream's owner makes it).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// How long to wait for the stream's first chunk before saying the
    /// stream is not there (a relay holds a subscription to a stream that
    /// has not started yet, so an unknown id looks like a stream not yet
    /// live); 0 waits for ever.
    #[arg(long, value_name = "TIME", default_value = "10s")]
    pub wait: String,
}

/// Runs `shoal watch`.
pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    let stream = parse_stream(&args.stream)?;
    let latency = parse_latency(&args.latency)?;
    let wait = parse_wait(&args.wait)?;
    let token = match &args.token {
        Some(text) => parse_token(text, &stream)?,
        None => Vec::new(),
    };
    let target = Target::parse(&args.output)?;
    let join = join::plan(args.relay.as_deref(), &args.dht, &stream, args.quiet)?;
    let relay = join.relay;

    let mut config = ViewerConfig::new(relay, stream);
    config.fallbacks = join.fallbacks;
    config.latency = latency;
    config.nonce_seed = random_seed();
    config.token = token;
    let started = os::now();
    let viewer = Viewer::new(config, started).map_err(|e| {
        anyhow::anyhow!(
            "--stream {:?}: not a valid stream key ({e}); copy the id printed by shoal keygen",
            args.stream
        )
    })?;
    let local: SocketAddr = if relay.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .context("a wildcard address")?;
    let socket = UdpSocket::bind(local).context("cannot open a UDP socket")?;
    let output = Output::open(&target)?;

    let mut watch = Watch {
        viewer,
        socket,
        output,
        quiet: args.quiet,
        progress: Progress::new(&join.relay_text, &args.stream, args.quiet, started, wait),
        status: Status::new(started),
        stop: StopFlag::install()?,
    };
    watch.run()
}

/// Whether the loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Go,
    Done,
}

/// The running command: the viewer and its IO.
#[derive(Debug)]
struct Watch {
    viewer: Viewer,
    socket: UdpSocket,
    output: Output,
    quiet: bool,
    progress: Progress,
    status: Status,
    /// SIGINT or SIGTERM: leave the relay and end.
    stop: StopFlag,
}

impl Watch {
    fn run(&mut self) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 65536];
        loop {
            let now = os::now();
            if self.viewer.poll_timeout().is_some_and(|t| t <= now) {
                self.viewer.handle_timeout(now);
            }
            if self.drain(now)? == Step::Done {
                return Ok(());
            }
            if self.stop.is_set() {
                // LEAVE, so the relay stops sending now rather than at
                // the subscription's timeout.
                self.viewer.close();
                self.send_queued()?;
                self.output.finish()?;
                if !self.quiet {
                    self.status.print(os::now(), &self.viewer.stats());
                    eprintln!("shoal: stopped");
                }
                return Ok(());
            }
            self.progress.check(now, self.viewer.is_subscribed())?;
            if !self.quiet {
                self.status.maybe_print(now, &self.viewer.stats());
            }

            match recv_until(&self.socket, self.viewer.poll_timeout(), &mut buf) {
                Ok((n, from)) => {
                    if from == self.viewer.relay() {
                        self.progress.heard = true;
                    }
                    let bytes = buf.get(..n).unwrap_or_default();
                    self.viewer.handle_datagram(os::now(), from, bytes);
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("receiving from relay {}", self.viewer.relay()));
                }
            }
        }
    }

    /// Sends what the viewer queued and acts on its events.
    fn drain(&mut self, now: Time) -> anyhow::Result<Step> {
        self.send_queued()?;
        let mut wrote = false;
        let mut step = Step::Go;
        while let Some(event) = self.viewer.poll_event() {
            match event {
                ViewerEvent::Subscribed { start_seq } => {
                    tracing::debug!(start_seq, "subscribed");
                    if !self.quiet && !self.status.subscribed {
                        eprintln!(
                            "shoal: subscribed to {} at relay {}",
                            self.progress.stream_text(),
                            self.progress.relay_text()
                        );
                    }
                    self.status.subscribed = true;
                    self.progress.subscribed();
                }
                ViewerEvent::Chunk {
                    payload, latency, ..
                } => {
                    self.status.chunk(latency);
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
                ViewerEvent::EndOfStream => step = Step::Done,
            }
        }
        if step == Step::Done {
            // The LEAVE the viewer queued on ending.
            self.send_queued()?;
            self.output.finish()?;
            if !self.quiet {
                self.status.print(os::now(), &self.viewer.stats());
                eprintln!("shoal: end of stream");
            }
            return Ok(Step::Done);
        }
        if wrote && self.output.flush()? == Written::Closed {
            return Ok(Step::Done);
        }
        Ok(Step::Go)
    }

    fn send_queued(&mut self) -> anyhow::Result<()> {
        while let Some(t) = self.viewer.poll_transmit() {
            if let Err(e) = self.socket.send_to(t.payload, t.dst)
                && !is_transient(&e)
            {
                return Err(e).with_context(|| format!("sending to relay {}", t.dst));
            }
        }
        Ok(())
    }
}

/// The once-a-second status line.
#[derive(Debug)]
struct Status {
    /// Printed only once there is something to tell.
    subscribed: bool,
    last: Time,
    last_bytes: u64,
    /// Latency of the latest chunk, from its publisher timestamp.
    latency: Option<Duration>,
}

impl Status {
    fn new(now: Time) -> Self {
        Self {
            subscribed: false,
            last: now,
            last_bytes: 0,
            latency: None,
        }
    }

    fn chunk(&mut self, latency: Duration) {
        self.latency = Some(latency);
    }

    fn maybe_print(&mut self, now: Time, stats: &ViewerStats) {
        if self.subscribed && now.saturating_since(self.last) >= STATUS_EVERY {
            self.print(now, stats);
        }
    }

    fn print(&mut self, now: Time, stats: &ViewerStats) {
        let elapsed = now.saturating_since(self.last).as_secs_f64().max(1e-3);
        let bits = stats.played_bytes.saturating_sub(self.last_bytes) as f64 * 8.0;
        self.last = now;
        self.last_bytes = stats.played_bytes;
        eprintln!(
            "shoal: {}",
            status_line(self.latency, stats, bits / elapsed)
        );
    }
}

fn status_line(latency: Option<Duration>, stats: &ViewerStats, bps: f64) -> String {
    let latency = latency.map_or_else(|| "-".to_owned(), |l| format!("{} ms", l.as_millis()));
    format!(
        "latency {latency}, repaired {} by FEC and {} by NACK, lost {}, {:.2} Mbit/s",
        stats.fec_repaired,
        stats.nack_repaired,
        stats.lost,
        bps / 1e6
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_reads() {
        let stats = ViewerStats {
            fec_repaired: 3,
            nack_repaired: 1,
            lost: 2,
            ..ViewerStats::default()
        };
        let line = status_line(Some(Duration::from_millis(120)), &stats, 2_500_000.0);
        assert_eq!(
            line,
            "latency 120 ms, repaired 3 by FEC and 1 by NACK, lost 2, 2.50 Mbit/s"
        );
    }
}
