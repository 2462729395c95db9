//! A swarm run as JSON, for scripts and BENCHMARKS.md: the figures issue 20
//! asks for by name (`peers`, `seconds`, `useful_offload`,
//! `duplicate_ratio`, `stall_ratio`, `relay_kbps_per_peer`, `latency_ms`,
//! `wall_s`), what the run cost (`peak_rss_bytes`, `events`), and every
//! figure the table prints.

use serde_json::{Value, json};

use super::SwarmReport;

/// One run of `shoal-swarm`: its settings, its report and what it cost.
#[derive(Debug, Clone)]
pub struct SwarmRun<'a> {
    /// What the swarm measured.
    pub report: &'a SwarmReport,
    /// The seed of the run.
    pub seed: u64,
    /// Length of the stream, seconds.
    pub seconds: f64,
    /// Wall-clock time the run took, seconds.
    pub wall_s: f64,
    /// Threads the network ran on (the figures are the same on any number).
    pub threads: usize,
    /// Events the network processed.
    pub events: u64,
    /// Peak resident memory of the process (`VmHWM`), if known.
    pub peak_rss_bytes: Option<u64>,
}

impl SwarmRun<'_> {
    /// The run as one JSON object.
    pub fn to_json(&self) -> Value {
        let r = self.report;
        let ms = |d: std::time::Duration| d.as_micros() as f64 / 1000.0;
        let percentile = |p: f64| {
            r.latency
                .iter()
                .find(|(q, _)| (q - p).abs() < 1e-9)
                .map(|&(_, d)| ms(d))
        };
        let total = (r.publisher_bytes + r.relay_bytes + r.peer_bytes).max(1) as f64;
        let (p50, p90, max, lost_to_silence) = r.recovery;
        let (silent, bad, refused, timeouts) = r.dropped;
        json!({
            "peers": r.peers,
            "relays": r.relays,
            "seconds": self.seconds,
            "seed": self.seed,
            "useful_offload": r.useful_offload,
            "duplicate_ratio": r.duplicate_ratio,
            "stall_ratio": r.stall_ratio(),
            "relay_kbps_per_peer": r.relay_kbps_per_peer,
            "latency_ms": {
                "p10": percentile(10.0),
                "p50": percentile(50.0),
                "p90": percentile(90.0),
                "p99": percentile(99.0),
                "p999": percentile(99.9),
            },
            "wall_s": self.wall_s,
            "threads": self.threads,
            "peak_rss_bytes": self.peak_rss_bytes,
            "events": self.events,
            "churned": r.churned,
            "bytes": {
                "publisher": r.publisher_bytes,
                "relays": r.relay_bytes,
                "peers": r.peer_bytes,
            },
            "share": {
                "publisher": r.publisher_bytes as f64 / total,
                "relays": r.relay_bytes as f64 / total,
                "peers": r.peer_bytes as f64 / total,
            },
            "new_stream_bytes": {
                "from_peers": r.new_from_peers,
                "from_relays": r.new_from_relays,
                "duplicates": r.duplicates,
            },
            "relay_vs_direct": r.relay_vs_direct,
            "useful_offload_by_second": r
                .timeline
                .iter()
                .map(|&(p, r)| p as f64 / (p + r).max(1) as f64)
                .collect::<Vec<_>>(),
            "watched_peer_seconds": r.watched.as_secs_f64(),
            "played": r.played,
            "lost": r.lost,
            "neighbours_lost_to_silence": {
                "count": lost_to_silence,
                "covered": r.recovery_covered,
                "club_flow_stopped_ms": {"p50": ms(p50), "p90": ms(p90), "max": ms(max)},
            },
            "neighbours_dropped": {
                "silent": silent,
                "starved": r.starved,
                "bad": bad,
                "refused": refused,
                "handshake_timeouts": timeouts,
            },
        })
    }
}

/// The process's peak resident memory, from `VmHWM` in
/// `/proc/self/status`; `None` where there is no such file (not Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_hwm_bytes(&status)
}

/// `VmHWM` of a `/proc/<pid>/status` text, in bytes.
fn vm_hwm_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn report() -> SwarmReport {
        SwarmReport {
            peers: 300,
            relays: 4,
            publisher_bytes: 10,
            relay_bytes: 20,
            peer_bytes: 70,
            played: 999,
            lost: 1,
            latency: [10.0, 50.0, 90.0, 99.0, 99.9]
                .into_iter()
                .zip(1..)
                .map(|(p, i)| (p, Duration::from_millis(100 * i)))
                .collect(),
            recovery: (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0),
            recovery_covered: 0,
            churned: 6,
            relay_vs_direct: 0.1,
            watched: Duration::from_secs(600),
            new_from_peers: 95,
            new_from_relays: 5,
            duplicates: 4,
            duplicate_ratio: 0.04,
            useful_offload: 0.95,
            relay_kbps_per_peer: 12.5,
            dropped: (1, 2, 3, 4),
            starved: 5,
            relay_by_kind: [12, 2, 5, 1],
            relay_nack_served: 3,
            timeline: vec![(60, 40), (35, 0)],
        }
    }

    #[test]
    fn has_the_fields_issue_20_names() {
        let report = report();
        let run = SwarmRun {
            report: &report,
            seed: 7,
            seconds: 20.0,
            wall_s: 1.5,
            threads: 2,
            events: 1234,
            peak_rss_bytes: Some(4096),
        };
        let v = run.to_json();
        assert_eq!(v["peers"], 300);
        assert_eq!(v["seconds"], 20.0);
        assert_eq!(v["useful_offload"], 0.95);
        assert_eq!(v["duplicate_ratio"], 0.04);
        assert_eq!(v["stall_ratio"], 0.001);
        assert_eq!(v["relay_kbps_per_peer"], 12.5);
        assert_eq!(v["latency_ms"]["p50"], 200.0);
        assert_eq!(v["latency_ms"]["p99"], 400.0);
        assert_eq!(v["latency_ms"]["p999"], 500.0);
        assert_eq!(v["wall_s"], 1.5);
        assert_eq!(v["threads"], 2);
        assert_eq!(v["useful_offload_by_second"], json!([0.6, 1.0]));
        assert_eq!(v["peak_rss_bytes"], 4096);
        assert_eq!(v["events"], 1234);
        assert_eq!(v["seed"], 7);
        assert_eq!(v["share"]["peers"], 0.7);
        assert_eq!(v["neighbours_dropped"]["handshake_timeouts"], 4);
    }

    #[test]
    fn reads_vm_hwm() {
        let status = "Name:\tshoal-swarm\nVmPeak:\t  999 kB\nVmHWM:\t   785656 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(vm_hwm_bytes(status), Some(785_656 * 1024));
        assert_eq!(vm_hwm_bytes("VmRSS:\t1 kB\n"), None);
        assert_eq!(vm_hwm_bytes("VmHWM:\tlots kB\n"), None);
    }
}
