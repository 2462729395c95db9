//! The flood: a second process that sends garbage and forgeries at the
//! relay while the viewers are measured.
//!
//! `shoal-bench --flood RATE` starts `shoal-bench flood --target ADDR
//! --rate RATE --duration D --stream ID` (this same binary, re-executed)
//! when the measurement starts, pinned to the load generator's CPUs, and
//! reads its [`FloodReport`] from its stdout when it ends. The datagrams
//! are described in [`mix`], the pacing in [`send`].

pub mod figures;
pub mod mix;
pub mod send;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddrV4;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use shoal_proto::StreamId;

/// `shoal-bench flood`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct FloodArgs {
    /// The relay, on loopback.
    #[arg(long, value_name = "ADDR")]
    pub target: SocketAddrV4,
    /// Datagrams per second.
    #[arg(long, value_name = "PER_SEC", default_value_t = 200_000)]
    pub rate: u64,
    /// How long to send: 10s, 500ms, 2m.
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = shoal_relay::units::duration)]
    pub duration: Duration,
    /// The stream to forge DATA and MANIFESTs for, as 64 hex digits
    /// [default: the bench source's].
    #[arg(long, value_name = "HEX", default_value = "")]
    pub stream: String,
    /// The stream's run epoch (SPEC §8.1): its first seq and block. Forged
    /// DATA and MANIFESTs name seqs just after it, where the live stream
    /// is, and forged MANIFESTs carry it.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub epoch: u64,
    /// Send every datagram in this address's name, through a raw socket
    /// (root), instead of from the flood's own ports: the relay cannot
    /// tell them from that sender's (the load tool passes its source's
    /// address: forgeries "from the publisher").
    #[arg(long, value_name = "ADDR")]
    pub spoof_from: Option<SocketAddrV4>,
    /// Source ports (sockets) to send from, in turn.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub ports: usize,
    /// CPUs to run on (comma-separated); all allowed ones if empty.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub cpus: Vec<usize>,
    /// Send each datagram on its own instead of in GSO trains.
    #[arg(long)]
    pub no_gso: bool,
    /// Only these kinds (comma-separated names as in the report, such as
    /// forged_data,hello) [default: all].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_kind)]
    pub kinds: Vec<mix::Kind>,
}

fn parse_kind(name: &str) -> Result<mix::Kind, String> {
    mix::Kind::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = mix::Kind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown kind; use one of {}", names.join(", "))
    })
}

/// What the flooder did; printed as JSON on its stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FloodReport {
    /// Datagrams per second asked for.
    pub rate_asked: u64,
    /// How long it sent, seconds.
    pub duration_s: f64,
    /// Datagrams the kernel took.
    pub sent: u64,
    /// `sent / duration_s`.
    pub achieved_pps: f64,
    /// Datagrams sent by kind (see [`mix::Kind`]).
    pub sent_by_kind: BTreeMap<String, u64>,
    /// Trains the kernel refused (EAGAIN: the send buffer was full).
    pub send_failures: u64,
    /// Datagrams the relay sent back, by type.
    pub replies: BTreeMap<String, u64>,
    /// Whether it sent GSO trains.
    pub gso: bool,
    /// Source ports it sent from.
    pub ports: usize,
    /// The address it sent in the name of, if it spoofed one.
    #[serde(default)]
    pub spoofed_from: Option<String>,
}

/// The stream id from 64 hex digits, or the bench source's when empty.
pub fn parse_stream(hex: &str) -> anyhow::Result<StreamId> {
    if hex.is_empty() {
        return Ok(crate::source::stream_id());
    }
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        bail!("--stream {hex}: give 64 hex digits");
    }
    let mut id = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).unwrap_or("");
        id[i] = u8::from_str_radix(text, 16)
            .with_context(|| format!("--stream {hex}: not hex at byte {i}"))?;
    }
    Ok(StreamId(id))
}

/// A running flooder process. Dropping it kills the process.
#[derive(Debug)]
pub struct Flooder {
    child: Child,
    duration: Duration,
    started: Instant,
}

impl Flooder {
    /// Starts `shoal-bench flood` at `target` for `duration`, on `cpus`.
    pub fn start(
        target: SocketAddrV4,
        rate: u64,
        duration: Duration,
        cpus: &[usize],
        kinds: &[String],
        epoch: u64,
        spoof_from: Option<SocketAddrV4>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this program to run the flood")?;
        let mut cmd = Command::new(exe);
        cmd.arg("flood")
            .args(["--target", &target.to_string()])
            .args(["--rate", &rate.to_string()])
            .args(["--duration", &format!("{}ms", duration.as_millis())])
            .args(["--epoch", &epoch.to_string()]);
        if let Some(from) = spoof_from {
            cmd.args(["--spoof-from", &from.to_string()]);
        }
        if !cpus.is_empty() {
            let list: Vec<String> = cpus.iter().map(usize::to_string).collect();
            cmd.args(["--cpus", &list.join(",")]);
        }
        if !kinds.is_empty() {
            cmd.args(["--kinds", &kinds.join(",")]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the flood process")?;
        Ok(Self {
            child,
            duration,
            started: Instant::now(),
        })
    }

    /// Waits for it to finish (at most 15 s past its duration) and reads
    /// its report.
    pub fn finish(mut self) -> anyhow::Result<FloodReport> {
        let deadline = self.started + self.duration + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().context("waiting for the flood")? {
                break status;
            }
            if Instant::now() >= deadline {
                bail!("the flood process ran 15 s past its --duration; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout
                .read_to_string(&mut out)
                .context("reading the flood's report")?;
        }
        if !status.success() {
            bail!("the flood process failed ({status})");
        }
        serde_json::from_str(out.trim()).with_context(|| format!("the flood's report: {out:?}"))
    }
}

impl Drop for Flooder {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
