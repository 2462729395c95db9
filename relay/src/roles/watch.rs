//! `shoal watch`: subscribe to a stream at a relay and write the
//! reassembled bytes, in order, to stdout, a file or UDP.
//!
//! A [`Viewer`] on one UDP socket, driven by the loop it shares with
//! `shoal peer` ([`ClientLoop`]). The end of the stream flushes the output
//! and exits 0; so does a reader closing our stdout. A relay that never
//! answers, or that does not carry the stream, is an error after 5 s.

use std::net::UdpSocket;
use std::time::Duration;

use anyhow::Context;
use shoal_proto::viewer::{Viewer, ViewerConfig, ViewerStats};

use super::client_loop::{ClientLoop, Flags, bad_key};
use super::join;
use super::output::{Output, Target};
use super::udp::{random_seed, wildcard_for};
use crate::dht::DhtArgs;
use crate::os;

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
    let flags = Flags::parse(
        &args.stream,
        &args.latency,
        &args.wait,
        args.token.as_deref(),
    )?;
    let target = Target::parse(&args.output)?;
    let join = join::plan(args.relay.as_deref(), &args.dht, &flags.stream, args.quiet)?;
    let relay = join.relay;

    let mut config = ViewerConfig::new(relay, flags.stream);
    config.fallbacks = join.fallbacks.clone();
    config.latency = flags.latency;
    config.nonce_seed = random_seed();
    config.token = flags.token.clone();
    config.window.wall_clock = os::wall_clock();
    let started = os::now();
    let viewer = Viewer::new(config, started).map_err(|e| bad_key(&args.stream, e))?;
    let socket = UdpSocket::bind(wildcard_for(relay)).context("cannot open a UDP socket")?;
    let output = Output::open(&target)?;
    ClientLoop::new(viewer, socket, output, &flags, &join, args.quiet, started)?.run()
}

/// The status line, at `bps` of output.
pub(super) fn status_line(latency: Option<Duration>, stats: &ViewerStats, bps: f64) -> String {
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
