//! The command line: flags, their parsers, and the checks that need more
//! than one flag. Every error names the flag and says what to write
//! instead.

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use shoal_proto::wire::MAX_CHUNK_SIZE;
use shoal_relay::io::BackendKind;
use shoal_relay::units;

/// Most viewers: each gets its own address in 127.10.0.0/16, 250 per /24.
pub const MAX_VIEWERS: usize = 250 * 256;

/// Most HTTP readers. The in-process relay is set to serve that many
/// (`max_http_readers`); each reader takes two descriptors in this
/// process, its socket and the relay's end.
pub const MAX_HTTP_VIEWERS: usize = 10_000;

/// Longest warm-up plus measurement: the send-time ring stores times in
/// 44 bits of nanoseconds (see [`crate::clock`]).
const MAX_RUN: Duration = Duration::from_secs(4 * 3600);

/// Measures a shoal relay on loopback: one source, N virtual viewers, each
/// with its own socket and loopback address; throughput, loss, latency,
/// relay CPU and (with --baseline) the machine's raw-socket limit to the
/// same destinations.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "shoal-bench", version, args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Another mode than the measurement (see `shoal-bench help flood`).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Virtual viewers, each with its own UDP socket on its own loopback
    /// address (127.10.x.y); 0 with --http-viewers for HTTP readers alone.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub viewers: usize,
    /// HTTP readers of the live MPEG-TS (`GET /streams/<ID>.ts` from the
    /// relay's web face, which the in-process relay then serves on a
    /// loopback port); the source sends a synthetic MPEG-TS for them.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub http_viewers: usize,
    /// Stream bitrate: 3Mbit, 500kbit, 1Gbit, or plain bits per second.
    #[arg(long, value_name = "RATE", default_value = "3Mbit", value_parser = units::bitrate)]
    pub bitrate: u64,
    /// How long to measure, after the warm-up: 10s, 500ms, 2m.
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = units::duration)]
    pub duration: Duration,
    /// Measure a relay that is already running at this IPv4 address
    /// instead of starting one in this process.
    #[arg(long, value_name = "ADDR", value_parser = parse_relay)]
    pub relay: Option<SocketAddrV4>,
    /// With --relay and --http-viewers: the relay's web face (its --http
    /// address).
    #[arg(long, value_name = "ADDR", requires = "relay")]
    pub relay_http: Option<SocketAddr>,
    /// With --relay: the relay's process id, to report its CPU use.
    #[arg(long, value_name = "PID", requires = "relay")]
    pub relay_pid: Option<u32>,
    /// IO backend of the in-process relay [default: auto].
    #[arg(long, value_enum, value_name = "KIND", conflicts_with = "relay")]
    pub backend: Option<BackendKind>,
    /// Relay worker threads; they take the first N CPUs and the load
    /// generator the others. With --relay, the CPUs the relay is pinned to.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub workers: usize,
    /// Frames per second: the source sends each frame's bytes in one burst,
    /// as a real encoder does.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub fps: u32,
    /// Chunk payload in bytes (a DATA datagram is this plus 61).
    #[arg(long, value_name = "BYTES", default_value_t = 1316)]
    pub chunk: u16,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// After the relay run, measure what bare loops deliver to the same
    /// viewer sockets from the relay's CPUs: sendmmsg, UDP GSO trains by
    /// sendmmsg, and UDP GSO trains by io_uring; efficiency is against the
    /// best.
    #[arg(long)]
    pub baseline: bool,
    /// After the relay run (and the baseline), fan the same stream out to
    /// the same viewer sockets from the relay's CPUs with another program,
    /// fed at the source's datagram rate, and report shoal's delivered rate
    /// over its rate. multiudpsink: GStreamer's (`gst-launch-1.0`; Debian
    /// `gstreamer1.0-tools gstreamer1.0-plugins-good`)
    #[arg(long, value_name = "PROGRAM", conflicts_with_all = ["find_max", "find_max_http"])]
    pub reference: Option<ReferenceKind>,
    /// Search for the most viewers the relay serves at --bitrate with no
    /// loss and a one-way p99 under 50 ms (its capacity): start at
    /// --viewers, double until a step fails, then bisect. Each step is a
    /// run of --warmup plus --duration; shorten them (such as 3s). With
    /// --baseline every step also measures the bare loops, and so the
    /// serialization bound beside the relay-added latency.
    #[arg(long)]
    pub find_max: bool,
    /// Search for the most HTTP readers the relay's web face (one thread,
    /// on the relay's CPU) serves at --bitrate with none falling behind
    /// (see `--http-viewers`): start at --http-viewers, double until a
    /// step fails, then bisect; each step a run of --warmup plus
    /// --duration, --viewers UDP viewers beside.
    #[arg(long, conflicts_with_all = ["baseline", "find_max"])]
    pub find_max_http: bool,
    /// Write an SVG with the one-way latency CDF and the delivered
    /// throughput over the measurement.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Time after every viewer has subscribed before measuring.
    #[arg(long, value_name = "TIME", default_value = "1s", value_parser = units::duration)]
    pub warmup: Duration,
    /// FEC block of the source: K data chunks and M parity symbols, such
    /// as 16,4 or 4,1 (a smaller block reaches the viewers sooner).
    #[arg(long, value_name = "K,M", default_value = "16,4", value_parser = parse_fec)]
    pub fec: (u8, u8),
    /// During the measurement, a second process (`shoal-bench flood`)
    /// sends this many malformed, truncated, oversized and forged
    /// datagrams per second at the relay.
    #[arg(long, value_name = "PER_SEC")]
    pub flood: Option<u64>,
    /// With --flood: only these kinds of datagram (comma-separated, as
    /// the report names them, such as forged_data,hello) [default: all].
    #[arg(long, value_name = "LIST", value_delimiter = ',', requires = "flood")]
    pub flood_kinds: Vec<String>,
    /// With --flood: send it in the name of the source's own address (a
    /// raw socket; root), so that the relay takes it for its publisher's.
    #[arg(long, requires = "flood")]
    pub flood_spoof_source: bool,
    /// Each second this share of the viewers leaves (half with LEAVE,
    /// half by closing the socket) and as many new viewers join on fresh
    /// sockets: 10%, or 0.1.
    #[arg(long, value_name = "PCT", value_parser = parse_share)]
    pub churn: Option<f64>,
    /// This many of the viewers (the first ones) NACK the whole window
    /// every millisecond, abusing repairs: the relay answers each within
    /// its repair budget and counts the rest (`repair_budget`).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub greedy_viewers: usize,
    /// With --relay: the relay's Prometheus endpoint (its --metrics), read
    /// for its counters and subscriber gauge.
    #[arg(long, value_name = "ADDR", requires = "relay")]
    pub relay_metrics: Option<SocketAddr>,
}

/// The modes besides the measurement.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Sends malformed, random, truncated, oversized and forged datagrams
    /// at a relay at a paced rate, then prints what it sent as JSON. This
    /// is what `--flood` runs in its own process.
    Flood(crate::flood::FloodArgs),
    /// Runs the relay (the library `shoal relay` runs, with its flags)
    /// until stdin closes, printing its address: a relay in its own
    /// process for the soak test when the `shoal` binary is not built.
    #[command(hide = true)]
    Relay(Box<shoal_relay::server::config::RelayArgs>),
}

impl Args {
    /// The checks that involve more than one flag, or a flag's range.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.viewers > MAX_VIEWERS || (self.viewers == 0 && self.http_viewers == 0) {
            bail!(
                "--viewers {}: must be 1..={MAX_VIEWERS} (each viewer has its own \
                 127.10.x.y address), or 0 with --http-viewers",
                self.viewers
            );
        }
        if self.viewers == 0 && (self.find_max || self.baseline || self.reference.is_some()) {
            bail!(
                "--viewers 0: --find-max, --baseline and --reference measure UDP viewers; give \
                 some, such as --viewers 50"
            );
        }
        self.check_http()?;
        if self.workers == 0 || self.workers > shoal_relay::server::config::MAX_WORKERS {
            bail!(
                "--workers {}: must be 1..={}; use 1 to leave the other CPUs to the load \
                 generator",
                self.workers,
                shoal_relay::server::config::MAX_WORKERS
            );
        }
        if self.fps == 0 || self.fps > 1000 {
            bail!("--fps {}: must be 1..=1000, such as 30", self.fps);
        }
        if self.chunk == 0 || usize::from(self.chunk) > MAX_CHUNK_SIZE {
            bail!(
                "--chunk {}: must be 1..={MAX_CHUNK_SIZE} bytes, such as 1316 (7 MPEG-TS packets)",
                self.chunk
            );
        }
        if self.bitrate / 8 < u64::from(self.fps) {
            bail!(
                "--bitrate {}: less than one byte per frame at --fps {}; raise --bitrate \
                 or lower --fps",
                self.bitrate,
                self.fps
            );
        }
        let (k, m) = self.fec;
        if k == 0
            || usize::from(k) > shoal_proto::fec::MAX_K
            || usize::from(m) > shoal_proto::fec::MAX_M
        {
            bail!(
                "--fec {k},{m}: K must be 1..={} and M 0..={}, such as 16,4 or 4,1",
                shoal_proto::fec::MAX_K,
                shoal_proto::fec::MAX_M
            );
        }
        if self.flood == Some(0) {
            bail!("--flood 0: give a rate above zero, such as 200000, or leave --flood out");
        }
        if self.duration.is_zero() {
            bail!("--duration 0s: must be longer than zero, such as 10s");
        }
        if self.duration + self.warmup > MAX_RUN {
            bail!(
                "--duration plus --warmup: at most {}h; shorten --duration",
                MAX_RUN.as_secs() / 3600
            );
        }
        Ok(())
    }

    /// The checks of the HTTP readers' flags.
    fn check_http(&self) -> anyhow::Result<()> {
        if self.http_viewers > MAX_HTTP_VIEWERS {
            bail!(
                "--http-viewers {}: at most {MAX_HTTP_VIEWERS}",
                self.http_viewers
            );
        }
        if self.find_max_http && self.http_viewers == 0 {
            bail!("--find-max-http starts at --http-viewers; give one, such as --http-viewers 50");
        }
        if self.http_viewers == 0 {
            return Ok(());
        }
        if !usize::from(self.chunk).is_multiple_of(shoal_proto::ts::TS_PACKET_LEN) {
            bail!(
                "--chunk {}: with --http-viewers the source sends MPEG-TS, so a chunk holds \
                 whole 188-byte packets, such as 1316",
                self.chunk
            );
        }
        if self.relay.is_some() && self.relay_http.is_none() {
            bail!(
                "--http-viewers with --relay: give the relay's web face too, --relay-http ADDR \
                 (its --http)"
            );
        }
        Ok(())
    }

    /// Bytes of one DATA datagram.
    pub fn datagram_len(&self) -> usize {
        usize::from(self.chunk) + shoal_proto::wire::DATA_HEADER_LEN
    }
}

/// `K,M`: data chunks and parity symbols per FEC block.
fn parse_fec(text: &str) -> Result<(u8, u8), String> {
    const HINT: &str = "use K,M such as 16,4 or 4,1";
    let (k, m) = text.split_once(',').ok_or_else(|| HINT.to_owned())?;
    let k = k.trim().parse().map_err(|_| HINT.to_owned())?;
    let m = m.trim().parse().map_err(|_| HINT.to_owned())?;
    Ok((k, m))
}

/// A share from 0 to 1: `10%` or `0.1`.
fn parse_share(text: &str) -> Result<f64, String> {
    const HINT: &str = "use a share such as 10% or 0.1";
    let t = text.trim();
    let value: f64 = match t.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map_err(|_| HINT.to_owned())? / 100.0,
        None => t.parse().map_err(|_| HINT.to_owned())?,
    };
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("{text}: must be between 0% and 100%"));
    }
    Ok(value)
}

/// An IPv4 address: the viewers' sockets are on 127.10.x.y, so they can
/// reach only IPv4.
fn parse_relay(text: &str) -> Result<SocketAddrV4, String> {
    match text.parse::<SocketAddr>() {
        Ok(SocketAddr::V4(a)) => Ok(a),
        Ok(SocketAddr::V6(_)) => Err(
            "viewers use 127.10.x.y addresses; give an IPv4 address such as 127.0.0.1:7400"
                .to_owned(),
        ),
        Err(_) => Err("use IP:PORT, such as 127.0.0.1:7400".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn durations_take_units() {
        let duration = |text: &str| {
            Args::try_parse_from(["shoal-bench", "--duration", text])
                .map(|args| args.duration)
                .map_err(|e| e.to_string())
        };
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
        // One grammar with `shoal`: a time carries its unit.
        let err = duration("3").expect_err("a bare number is refused");
        assert!(
            err.contains("--duration") && err.contains("no unit"),
            "{err}"
        );
        assert!(duration("10 parsecs").is_err());
        assert!(duration("s").is_err());
    }

    #[test]
    fn errors_name_the_flag() {
        let err = Args::try_parse_from(["shoal-bench", "--bitrate", "lots"])
            .expect_err("a bad bitrate is refused");
        let text = err.to_string();
        assert!(
            text.contains("--bitrate") && text.contains("3Mbit"),
            "{text}"
        );

        let args = Args::try_parse_from(["shoal-bench", "--viewers", "0"]).expect("parses");
        let text = args.check().expect_err("0 viewers is refused").to_string();
        assert!(text.starts_with("--viewers 0"), "{text}");

        let err = Args::try_parse_from(["shoal-bench", "--relay", "[::1]:7400"])
            .expect_err("IPv6 is refused");
        assert!(err.to_string().contains("127.0.0.1:7400"));
    }

    #[test]
    fn http_reader_flags_are_checked() {
        let check = |argv: &[&str]| {
            let mut all = vec!["shoal-bench"];
            all.extend_from_slice(argv);
            Args::try_parse_from(all)
                .expect("parses")
                .check()
                .map_err(|e| e.to_string())
        };
        assert_eq!(check(&["--viewers", "0", "--http-viewers", "20"]), Ok(()));
        let err = check(&["--http-viewers", "20", "--chunk", "1000"]).expect_err("not TS");
        assert!(
            err.starts_with("--chunk 1000") && err.contains("188"),
            "{err}"
        );
        let err = check(&["--find-max-http"]).expect_err("no start");
        assert!(err.starts_with("--find-max-http"), "{err}");
        let err =
            check(&["--relay", "127.0.0.1:7400", "--http-viewers", "5"]).expect_err("no web face");
        assert!(err.contains("--relay-http"), "{err}");
        let err = check(&["--viewers", "0", "--http-viewers", "5", "--find-max"])
            .expect_err("nothing to search");
        assert!(err.starts_with("--viewers 0"), "{err}");
        let err = check(&["--http-viewers", "20000"]).expect_err("too many");
        assert!(err.starts_with("--http-viewers 20000"), "{err}");
        assert!(Args::try_parse_from(["shoal-bench", "--find-max", "--find-max-http"]).is_err());
    }

    #[test]
    fn the_brief_command_line_parses() {
        let args = Args::try_parse_from([
            "shoal-bench",
            "--viewers",
            "200",
            "--bitrate",
            "3Mbit",
            "--duration",
            "3s",
            "--json",
            "/tmp/b.json",
        ])
        .expect("parses");
        args.check().expect("valid");
        assert_eq!(args.viewers, 200);
        assert_eq!(args.bitrate, 3_000_000);
        assert_eq!(args.duration, Duration::from_secs(3));
        assert_eq!(args.workers, 1);
        assert_eq!(args.datagram_len(), 1377);
    }
}

/// A program `--reference` compares shoal with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReferenceKind {
    /// GStreamer's multiudpsink: one send per datagram and destination.
    Multiudpsink,
}
