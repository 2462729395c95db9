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

use super::client_args::ClientArgs;
use super::client_loop::{ClientLoop, bad_key};
use super::output::Output;
use super::udp::{random_seed, wildcard_for};
use crate::os;

/// `shoal watch` flags.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Longest a chunk may take from publisher to output before it is
    /// given up as lost.
    #[arg(long, value_name = "TIME", default_value = "500ms")]
    pub latency: String,
    /// Also serve the stream to a browser on HOST:PORT, such as
    /// 127.0.0.1:8080: its player page at /watch/STREAM_ID and the live
    /// MPEG-TS at /streams/STREAM_ID.ts (give --output /dev/null to serve
    /// it only there).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
}

/// Most browser readers of a local viewer's stream.
const MAX_HTTP_READERS: usize = 64;

/// Runs `shoal watch`.
pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    let client = &args.client;
    let flags = client.flags(&args.latency)?;
    let (target, join) = client.target_and_join(&flags)?;
    let relay = join.relay;

    let mut config = ViewerConfig::new(relay, flags.stream);
    config.fallbacks = join.fallbacks.clone();
    config.latency = flags.latency;
    config.nonce_seed = random_seed();
    config.token = flags.token.clone();
    config.window.wall_clock = os::wall_clock();
    let started = os::now();
    let viewer = Viewer::new(config, started).map_err(|e| bad_key(&client.stream, e))?;
    let socket = UdpSocket::bind(wildcard_for(relay)).context("cannot open a UDP socket")?;
    let output = Output::open(&target)?;
    let mut looped = ClientLoop::new(viewer, socket, output, &flags, &join, client.quiet, started)?;
    if let Some(text) = &args.http {
        let addr: std::net::SocketAddr = text.parse().map_err(|_| {
            anyhow::anyhow!("--http {text:?}: not an address; use HOST:PORT such as 127.0.0.1:8080")
        })?;
        let (state, feed) = crate::web::WebState::local(flags.stream, MAX_HTTP_READERS);
        let (bound, _thread) = crate::web::serve(&[addr], state)
            .with_context(|| format!("--http {addr}: cannot serve there; use a free port"))?;
        eprintln!(
            "shoal: watch in a browser at {}watch/{}",
            crate::web::page_url(bound[0]),
            flags.stream
        );
        looped = looped.with_tee(feed);
    }
    looped.run()
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
