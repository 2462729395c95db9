//! The results of a run: what was measured, as JSON (`--json`) and as the
//! table on stdout ([`table`]).

mod http;
mod step;
mod table;

pub use http::HttpFigures;
pub use step::{Step, describe};

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

pub use crate::flood::figures::FloodFigures;
use crate::soak::Soak;

/// Everything a run measured. Field names are the JSON keys.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Virtual viewers.
    pub viewers: usize,
    /// Stream bitrate (chunk payload), bits per second.
    pub bitrate_bps: u64,
    /// Length of the measurement, seconds.
    pub duration_s: f64,
    /// The relay's IO backend: "uring", "mmsg", or "external".
    pub backend: String,
    /// Relay worker threads.
    pub workers: usize,
    /// Chunks the viewers should have received: for each viewer, the seqs
    /// the source sent from the measurement's start (or the viewer's start
    /// seq, if later) to its end.
    pub chunks_expected: u64,
    /// Of those, the distinct chunks that arrived.
    pub chunks_delivered: u64,
    /// `1 - delivered / expected`.
    pub loss_ratio: f64,
    /// Measured chunks received more than once (extra copies).
    pub duplicates: u64,
    /// Measured chunks that arrived after a higher seq.
    pub out_of_order: u64,
    /// Datagrams from the relay the viewers received per second while
    /// measuring: DATA, PARITY, MANIFEST and DESCRIPTOR, which is what the
    /// relay sends and what the baseline is compared with.
    pub delivered_pps: f64,
    /// Those datagrams' UDP payload, gigabits per second.
    pub delivered_gbps: f64,
    /// DATA chunks alone per second (`chunks_delivered / duration_s`).
    pub delivered_chunks_pps: f64,
    /// The relay's CPU time over the measurement, percent of one core;
    /// null when it cannot be known (external relay without --relay-pid).
    pub relay_cpu_percent: Option<f64>,
    /// The relay's CPU less its web face thread's, per UDP viewer, percent
    /// of one core; null without viewers or when unknown.
    pub relay_cpu_per_viewer_percent: Option<f64>,
    /// The source thread's CPU time over the measurement, percent of one
    /// core.
    pub source_cpu_percent: f64,
    /// The viewer threads' CPU time over the measurement, percent of one
    /// core (summed over threads).
    pub viewers_cpu_percent: f64,
    /// One-way latency, source send to viewer receive, microseconds; null
    /// when no chunk was measured. The receive is the kernel's timestamp of
    /// the datagram's arrival in the viewer's socket (SO_TIMESTAMPNS) when
    /// `kernel_timestamps`, else when the viewer's thread read it.
    pub latency_us: Option<Latency>,
    /// Whether every datagram was dated by the kernel on arrival.
    pub kernel_timestamps: bool,
    /// Latency the relay itself adds (arrival to send completion), from
    /// its own histograms over the measurement; null for an external relay.
    pub relay_added_latency_us: Option<RelayLatency>,
    /// With --baseline: the machine's limit to the same destinations.
    #[serde(flatten)]
    pub baseline: Option<Baseline>,
    /// With --baseline: how long sending one FEC block (k + m datagrams)
    /// to every viewer takes at the best bare loop's rate, microseconds:
    /// `viewers * (k + m) / baseline_pps`. No relay on this core can fan a
    /// block out faster; set beside `relay_added_latency_us`.
    pub serialization_bound_us: Option<u64>,
    /// With --reference: the other program's rate to the same sockets.
    #[serde(flatten)]
    pub reference: Option<Reference>,
    /// Frames per second of the source.
    pub fps: u32,
    /// Chunk payload bytes.
    pub chunk_bytes: u16,
    /// Warm-up before measuring, seconds.
    pub warmup_s: f64,
    /// Viewers whose subscription was accepted.
    pub viewers_subscribed: usize,
    /// DATA chunks the source sent during the measurement.
    pub source_chunks: u64,
    /// Datagrams of every type the source sent during the measurement.
    pub source_datagrams: u64,
    /// Times the source fell a second behind its frame clock.
    pub source_stalls: u64,
    /// The in-process relay's own counters over the measurement.
    pub relay: Option<RelayFigures>,
    /// REJECTs the viewers got, by reason (during the whole run).
    pub rejects: BTreeMap<String, u64>,
    /// LEAVEs the viewers got before the end.
    pub leaves: u64,
    /// HELLO, SUBSCRIBE and KEEPALIVE datagrams the viewers failed to send.
    pub viewer_send_errors: u64,
    /// CPUs the relay workers were pinned to.
    pub relay_cpus: Vec<usize>,
    /// CPUs the load generator was pinned to.
    pub generator_cpus: Vec<usize>,
    /// Data chunks per FEC block of the source.
    pub fec_k: u8,
    /// Parity symbols per FEC block.
    pub fec_m: u8,
    /// With --flood: what the flood process sent and where the relay
    /// counted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<FloodFigures>,
    /// With --churn: the joins, and the relay's memory, subscribers and
    /// file descriptors over the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<Soak>,
    /// With --http-viewers: the HTTP readers' figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpFigures>,
    /// With --find-max: the most viewers served within the limits at this
    /// bitrate (0 if even the smallest step failed). The other figures
    /// are those of that step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_viewers: Option<usize>,
    /// With --find-max-http: the most HTTP readers served with none
    /// falling behind at this bitrate (0 if even the smallest step
    /// failed). The other figures are those of that step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_http_viewers: Option<usize>,
    /// With --find-max or --find-max-http: every step, in the order run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
    /// The one-way latency's CDF: (microseconds, fraction at or below),
    /// for --plot.
    #[serde(skip)]
    pub latency_cdf: Vec<(f64, f64)>,
    /// Delivered datagrams per second over the measurement, sampled about
    /// every 100 ms: (seconds since its start, rate), for --plot.
    #[serde(skip)]
    pub throughput: Vec<(f64, f64)>,
}

/// Percentiles of the one-way latency, microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// Percentiles of the relay-added latency, microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RelayLatency {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// The raw-socket baseline.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Baseline {
    /// Datagrams per second received from the sendmmsg loop.
    pub baseline_sendmmsg_pps: f64,
    /// The same from the GSO loop; null where UDP GSO is not available.
    pub baseline_gso_pps: Option<f64>,
    /// The same from the io_uring GSO loop; null where it did not run.
    pub baseline_uring_gso_pps: Option<f64>,
    /// The best of the three.
    pub baseline_pps: f64,
    /// `delivered_pps / baseline_pps`.
    pub efficiency: f64,
    /// Datagrams per second the sendmmsg loop handed to the kernel (more
    /// than were received when the receivers are the bottleneck).
    pub baseline_sendmmsg_sent_pps: f64,
    /// The same for the GSO loop.
    pub baseline_gso_sent_pps: Option<f64>,
    /// The same for the io_uring GSO loop.
    pub baseline_uring_gso_sent_pps: Option<f64>,
}

/// The reference fan-out of `--reference`, same run, same sockets.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Reference {
    /// Which program ("multiudpsink").
    pub reference_program: &'static str,
    /// Datagrams per second the viewers received from it.
    pub reference_pps: f64,
    /// Datagrams per second it was fed (the source's rate).
    pub reference_fed_pps: f64,
    /// Its CPU use, percent of one core.
    pub reference_cpu_percent: f64,
    /// `delivered_pps / reference_pps`.
    pub shoal_over_reference: f64,
    /// With --baseline: the best bare GSO loop over the bare sendmmsg
    /// loop, what GSO trains can give over one send per datagram.
    pub gso_advantage: Option<f64>,
    /// `shoal_over_reference / gso_advantage`: the share of that advantage
    /// shoal keeps.
    pub advantage_kept: Option<f64>,
}

/// The in-process relay's counters over the measurement.
#[derive(Debug, Clone, Serialize)]
pub struct RelayFigures {
    /// Datagrams the relay's sockets received (the source's, and the
    /// viewers' keepalives).
    pub received: u64,
    /// Stream datagrams sent to subscribers.
    pub forwarded: u64,
    /// Datagrams dropped, all reasons.
    pub dropped: u64,
    /// The same by reason.
    pub drops: BTreeMap<&'static str, u64>,
    /// Trains dropped on a full send queue.
    pub tx_dropped: u64,
    /// Failed sends.
    pub tx_errors: u64,
    /// Receive buffer shortages.
    pub rx_no_buffer: u64,
    /// Datagrams the relay's sockets sent.
    pub tx_datagrams: u64,
    /// Send messages those took (one datagram or one GSO train each).
    pub tx_messages: u64,
}

impl Latency {
    /// The percentiles, or `None` for an empty histogram.
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| Self {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

/// Most points of the latency CDF kept for the plot.
const CDF_POINTS: usize = 400;

/// The CDF of `h`: (value, fraction of samples at or below it), at most
/// about [`CDF_POINTS`] points.
pub fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let total = h.len();
    if total == 0 {
        return Vec::new();
    }
    let recorded: Vec<(u64, u64)> = h
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_since_last_iteration()))
        .collect();
    let every = recorded.len().div_ceil(CDF_POINTS).max(1);
    let mut below = 0;
    let mut points = Vec::with_capacity(CDF_POINTS + 1);
    for (i, (value, n)) in recorded.iter().enumerate() {
        below += n;
        if i % every == every - 1 || i + 1 == recorded.len() {
            points.push((*value as f64, below as f64 / total as f64));
        }
    }
    points
}

impl RelayLatency {
    /// The percentiles, or `None` for an empty histogram.
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| Self {
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

impl Report {
    /// Writes the JSON to `path`.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self).context("encoding the report")?;
        text.push('\n');
        std::fs::write(path, text)
            .with_context(|| format!("--json {}: cannot write it", path.display()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small report, for tests.
    pub(crate) fn sample() -> Report {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        h.record(100).expect("in range");
        Report {
            viewers: 2,
            bitrate_bps: 3_000_000,
            duration_s: 1.0,
            backend: "mmsg".into(),
            workers: 1,
            chunks_expected: 10,
            chunks_delivered: 10,
            loss_ratio: 0.0,
            duplicates: 0,
            out_of_order: 0,
            delivered_pps: 10.0,
            delivered_gbps: 0.0,
            delivered_chunks_pps: 10.0,
            relay_cpu_percent: None,
            relay_cpu_per_viewer_percent: None,
            source_cpu_percent: 1.0,
            viewers_cpu_percent: 2.0,
            latency_us: Latency::of(&h),
            kernel_timestamps: true,
            relay_added_latency_us: None,
            baseline: None,
            serialization_bound_us: None,
            reference: None,
            fps: 30,
            chunk_bytes: 1316,
            warmup_s: 1.0,
            viewers_subscribed: 2,
            source_chunks: 5,
            source_datagrams: 7,
            source_stalls: 0,
            relay: None,
            rejects: BTreeMap::new(),
            leaves: 0,
            viewer_send_errors: 0,
            relay_cpus: vec![0],
            generator_cpus: vec![1],
            fec_k: 16,
            fec_m: 4,
            flood: None,
            soak: None,
            http: None,
            max_viewers: None,
            max_http_viewers: None,
            steps: None,
            latency_cdf: cdf(&h),
            throughput: Vec::new(),
        }
    }

    #[test]
    fn baseline_keys_appear_only_with_a_baseline() {
        let mut r = sample();
        let json = serde_json::to_value(&r).expect("json");
        assert!(json.get("baseline_pps").is_none());
        assert!(json.get("max_viewers").is_none() && json.get("latency_cdf").is_none());
        assert_eq!(r.latency_cdf, [(100.0, 1.0)]);
        assert_eq!(json["latency_us"]["p50"], 100);
        assert!(json["relay_cpu_percent"].is_null());
        r.baseline = Some(Baseline {
            baseline_sendmmsg_pps: 100.0,
            baseline_gso_pps: None,
            baseline_uring_gso_pps: None,
            baseline_pps: 100.0,
            efficiency: 0.1,
            baseline_sendmmsg_sent_pps: 200.0,
            baseline_gso_sent_pps: None,
            baseline_uring_gso_sent_pps: None,
        });
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["baseline_pps"], 100.0);
        assert!(json["baseline_gso_pps"].is_null());
        assert!(r.table().contains("efficiency"));
    }
}
