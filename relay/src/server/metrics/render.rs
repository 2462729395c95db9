//! Snapshots to Prometheus text exposition format 0.0.4.
//!
//! Per-worker series carry `worker="N"`; the series of the same family
//! without a `worker` label is the sum over workers (select per-worker
//! series with `{worker!=""}`, the total with `{worker=""}`).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use hdrhistogram::Histogram;

use super::{WorkerSnapshot, latency_histogram};

const PREFIX: &str = "shoal_relay_";

/// Reads one number from a snapshot.
type Field = fn(&WorkerSnapshot) -> u64;

/// Quantiles of the merged latency summary.
const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];

/// The metrics text for a hub of `workers` slots holding `snaps`.
pub(super) fn render(workers: usize, snaps: &[WorkerSnapshot]) -> String {
    let mut out = Text {
        out: String::with_capacity(8 * 1024),
    };
    out.family("workers", "gauge", "Worker threads configured.");
    out.sample("workers", &[], workers);
    out.family(
        "worker_info",
        "gauge",
        "1 for each worker that has reported, labelled with its IO backend.",
    );
    for s in snaps {
        out.sample(
            "worker_info",
            &[("worker", &s.worker.to_string()), ("backend", s.backend)],
            1,
        );
    }

    let counters: [(&str, &str, Field); 19] = [
        (
            "datagrams_in_total",
            "Datagrams handled by the relay core.",
            |s| s.relay.datagrams_in,
        ),
        ("bytes_in_total", "Bytes handled by the relay core.", |s| {
            s.relay.bytes_in
        }),
        (
            "forwarded_total",
            "Stream datagrams sent to subscribers by fan-out.",
            |s| s.relay.forwarded,
        ),
        (
            "forwarded_bytes_total",
            "Bytes sent to subscribers by fan-out.",
            |s| s.relay.forwarded_bytes,
        ),
        (
            "nack_served_total",
            "Chunks resent in answer to NACKs.",
            |s| s.relay.nack_served,
        ),
        (
            "introductions_total",
            "INTRODUCE requests forwarded between peers (hole punching).",
            |s| s.relay.introduced,
        ),
        (
            "upstream_manifest_nacks_total",
            "NACKs sent upstream for manifests that did not arrive.",
            |s| s.relay.manifest_nacks,
        ),
        (
            "duplicates_total",
            "Exact copies of datagrams already verified (not drops).",
            |s| s.relay.duplicates,
        ),
        (
            "subscriptions_accepted_total",
            "Subscriptions accepted.",
            |s| s.relay.accepted,
        ),
        (
            "subscribers_expired_total",
            "Subscribers dropped for missing keepalives.",
            |s| s.relay.expired,
        ),
        (
            "streams_removed_total",
            "Streams removed after stream_idle_timeout without data.",
            |s| s.relay.streams_removed,
        ),
        (
            "chunks_verified_total",
            "Chunks verified on arrival.",
            |s| s.window.chunks_verified,
        ),
        (
            "fec_rebuilt_total",
            "Chunks rebuilt from FEC parity.",
            |s| s.window.chunks_rebuilt,
        ),
        (
            "io_rx_datagrams_total",
            "Datagrams received from the socket.",
            |s| s.io.rx_datagrams,
        ),
        (
            "io_tx_datagrams_total",
            "Datagrams sent on the socket.",
            |s| s.io.tx_datagrams,
        ),
        (
            "io_gso_trains_total",
            "Sends that carried more than one datagram (UDP GSO trains).",
            |s| s.io.tx_trains,
        ),
        (
            "io_tx_messages_total",
            "Send messages (msghdrs or SQEs), each one datagram or one GSO train.",
            |s| s.io.tx_messages,
        ),
        ("io_tx_errors_total", "Sends that failed.", |s| {
            s.io.tx_errors
        }),
        (
            "io_rx_no_buffer_total",
            "Times the receive side ran out of buffers.",
            |s| s.io.rx_no_buffer,
        ),
    ];
    for (name, help, value) in counters {
        out.per_worker(name, "counter", help, snaps, value);
    }
    out.per_worker("subscribers", "gauge", "Subscribers now.", snaps, |s| {
        s.subscribers
    });
    out.per_worker(
        "streams",
        "gauge",
        "Streams carried now; in the total, a stream carried by several workers counts once per worker.",
        snaps,
        |s| s.streams,
    );

    drops(&mut out, snaps);
    upstreams(&mut out, snaps);
    latency(&mut out, snaps);
    out.out
}

/// Each drop reason of `drops_total` and what it sums.
const DROP_REASONS: [(&str, Field); 27] = [
    ("malformed", |s| s.relay.drop_malformed),
    ("forged", |s| s.relay.drop_forged),
    ("corrupted", |s| s.relay.drop_corrupted),
    ("replayed", |s| s.relay.drop_replayed),
    ("stale", |s| s.relay.drop_stale),
    ("throttled", |s| s.relay.drop_throttled),
    ("wrong_stream", |s| s.relay.drop_wrong_stream),
    ("stream_limit", |s| s.relay.drop_stream_limit),
    ("bad_key", |s| s.relay.drop_bad_key),
    ("manifest_missing", |s| s.relay.drop_manifest_missing),
    ("unproven", |s| s.relay.drop_unproven),
    ("bad_cookie", |s| s.relay.drop_bad_cookie),
    ("not_subscribed", |s| s.relay.drop_not_subscribed),
    ("bad_session", |s| s.relay.drop_bad_session),
    ("full", |s| s.relay.drop_full),
    ("token_missing", |s| s.relay.drop_token_missing),
    ("token_invalid", |s| s.relay.drop_token_invalid),
    ("token_expired", |s| s.relay.drop_token_expired),
    ("token_scope", |s| s.relay.drop_token_scope),
    ("not_allowed", |s| s.relay.drop_not_allowed),
    ("source_streams", |s| s.relay.drop_source_streams),
    ("source_subscriptions", |s| {
        s.relay.drop_source_subscriptions
    }),
    ("repair_budget", |s| s.relay.drop_repair_budget),
    ("rate_limited", |s| s.handshakes_rate_limited),
    ("truncated", |s| s.io.rx_truncated),
    ("tx_queue_full", |s| s.io.tx_dropped),
    ("handoff_full", |s| s.handoffs_dropped),
];

/// The `reason` labels of `drops_total`, in the order they are written.
pub fn drop_reasons() -> impl Iterator<Item = &'static str> {
    DROP_REASONS.iter().map(|&(name, _)| name)
}

fn drops(out: &mut Text, snaps: &[WorkerSnapshot]) {
    out.family(
        "drops_total",
        "counter",
        "Datagrams dropped, by reason, summed over workers (tx_queue_full counts GSO trains).",
    );
    for (reason, value) in DROP_REASONS {
        out.sample("drops_total", &[("reason", reason)], sum(snaps, value));
    }
}

fn upstreams(out: &mut Text, snaps: &[WorkerSnapshot]) {
    let mut subscribed = BTreeMap::new();
    let mut failovers = BTreeMap::new();
    for status in snaps.iter().flat_map(|s| &s.upstreams) {
        let stream = status.stream.to_string();
        let now = subscribed
            .entry((stream.clone(), status.server.to_string()))
            .or_insert(false);
        *now |= status.subscribed;
        let count = failovers.entry(stream).or_insert(0u64);
        *count = count.saturating_add(status.failovers);
    }
    out.family(
        "upstream_subscribed",
        "gauge",
        "1 if the upstream relay now pulled from has accepted the stream's subscription, else 0.",
    );
    for ((stream, server), now) in &subscribed {
        out.sample(
            "upstream_subscribed",
            &[("stream", stream), ("server", server)],
            u8::from(*now),
        );
    }
    out.family(
        "upstream_failovers_total",
        "counter",
        "Times a stream moved to its next upstream relay.",
    );
    for (stream, count) in &failovers {
        out.sample("upstream_failovers_total", &[("stream", stream)], count);
    }
}

fn latency(out: &mut Text, snaps: &[WorkerSnapshot]) {
    let mut merged = latency_histogram();
    // Grows past 60 s if a worker's histogram was made wider.
    merged.auto(true);
    for s in snaps {
        if let Err(e) = merged.add(&s.latency_us) {
            tracing::debug!(worker = s.worker, "latency histogram not merged: {e:?}");
        }
    }
    let name = "added_latency_seconds";
    out.family(
        name,
        "summary",
        "Latency the relay adds, arrival to send, over all workers since start.",
    );
    for (q, label) in QUANTILES {
        out.sample(name, &[("quantile", label)], Seconds::quantile(&merged, q));
    }
    let sum_us = merged.mean() * merged.len() as f64;
    out.sample("added_latency_seconds_sum", &[], Seconds(sum_us / 1e6));
    out.sample("added_latency_seconds_count", &[], merged.len());

    let name = "added_latency_p99_seconds";
    out.family(
        name,
        "gauge",
        "99th percentile of the latency each worker adds, since start.",
    );
    for s in snaps {
        let p99 = Seconds::quantile(&s.latency_us, 0.99);
        out.sample(name, &[("worker", &s.worker.to_string())], p99);
    }
}

fn sum(snaps: &[WorkerSnapshot], value: impl Fn(&WorkerSnapshot) -> u64) -> u64 {
    snaps
        .iter()
        .fold(0, |total, s| total.saturating_add(value(s)))
}

/// A time in seconds; `NaN` (no observations) prints as Prometheus wants.
struct Seconds(f64);

impl Seconds {
    fn quantile(h: &Histogram<u64>, q: f64) -> Self {
        if h.is_empty() {
            Self(f64::NAN)
        } else {
            Self(h.value_at_quantile(q) as f64 / 1e6)
        }
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_nan() {
            f.write_str("NaN")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

struct Text {
    out: String,
}

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {PREFIX}{name} {help}");
        let _ = writeln!(self.out, "# TYPE {PREFIX}{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl fmt::Display) {
        let _ = write!(self.out, "{PREFIX}{name}");
        for (i, (label, value)) in labels.iter().enumerate() {
            let open = if i == 0 { '{' } else { ',' };
            let _ = write!(self.out, "{open}{label}=\"");
            escape_label(&mut self.out, value);
            self.out.push('"');
        }
        if !labels.is_empty() {
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with the total over workers and one series per worker.
    fn per_worker(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        snaps: &[WorkerSnapshot],
        value: impl Fn(&WorkerSnapshot) -> u64,
    ) {
        let help = format!("{help} Per worker; the series without a worker label is the sum.");
        self.family(name, kind, &help);
        self.sample(name, &[], sum(snaps, &value));
        for s in snaps {
            self.sample(name, &[("worker", &s.worker.to_string())], value(s));
        }
    }
}

fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::UpstreamStatus;
    use super::super::tests::snapshot;
    use super::*;
    use shoal_proto::StreamId;

    /// The value of the one line that starts with `series` and a space.
    fn value(text: &str, series: &str) -> String {
        let lines: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .collect();
        assert_eq!(lines.len(), 1, "{series} in:\n{text}");
        lines[0].to_owned()
    }

    fn two_workers() -> Vec<WorkerSnapshot> {
        let mut a = snapshot(0);
        a.backend = "uring";
        a.relay.datagrams_in = 10;
        a.relay.bytes_in = 13_160;
        a.relay.forwarded = 100;
        a.relay.forwarded_bytes = 131_600;
        a.relay.drop_forged = 2;
        a.relay.duplicates = 1;
        a.window.chunks_rebuilt = 3;
        a.io.tx_trains = 4;
        a.io.tx_dropped = 1;
        a.subscribers = 5;
        a.streams = 1;
        a.handshakes_rate_limited = 6;
        for us in 1..=1000 {
            a.latency_us.saturating_record(us);
        }
        a.upstreams.push(UpstreamStatus {
            stream: StreamId([1; 32]),
            server: "10.0.0.1:7400".parse().expect("literal"),
            subscribed: true,
            failovers: 2,
        });
        let mut b = snapshot(1);
        b.relay.datagrams_in = 5;
        b.relay.forwarded = 50;
        b.relay.drop_forged = 1;
        b.relay.drop_bad_cookie = 7;
        b.window.chunks_rebuilt = 4;
        b.io.rx_truncated = 2;
        b.subscribers = 3;
        b.streams = 1;
        for us in 1001..=2000 {
            b.latency_us.saturating_record(us);
        }
        vec![a, b]
    }

    #[test]
    fn totals_are_sums_over_workers() {
        let text = render(2, &two_workers());
        let p = PREFIX;
        for (series, want) in [
            ("workers", "2"),
            ("datagrams_in_total", "15"),
            ("datagrams_in_total{worker=\"0\"}", "10"),
            ("datagrams_in_total{worker=\"1\"}", "5"),
            ("bytes_in_total", "13160"),
            ("forwarded_total", "150"),
            ("forwarded_bytes_total", "131600"),
            ("duplicates_total", "1"),
            ("fec_rebuilt_total", "7"),
            ("nack_served_total", "0"),
            ("io_gso_trains_total", "4"),
            ("io_tx_datagrams_total", "0"),
            ("io_tx_errors_total", "0"),
            ("io_rx_no_buffer_total", "0"),
            ("subscribers", "8"),
            ("subscribers{worker=\"1\"}", "3"),
            ("streams", "2"),
            ("drops_total{reason=\"forged\"}", "3"),
            ("drops_total{reason=\"bad_cookie\"}", "7"),
            ("drops_total{reason=\"rate_limited\"}", "6"),
            ("drops_total{reason=\"truncated\"}", "2"),
            ("drops_total{reason=\"tx_queue_full\"}", "1"),
            ("drops_total{reason=\"malformed\"}", "0"),
            ("worker_info{worker=\"0\",backend=\"uring\"}", "1"),
            ("added_latency_seconds_count", "2000"),
        ] {
            assert_eq!(value(&text, &format!("{p}{series}")), want, "{series}");
        }
        for reason in drop_reasons() {
            value(&text, &format!("{p}drops_total{{reason=\"{reason}\"}}"));
        }
        let stream = StreamId([1; 32]);
        let up = format!("{p}upstream_subscribed{{stream=\"{stream}\",server=\"10.0.0.1:7400\"}}");
        assert_eq!(value(&text, &up), "1");
        let failovers = format!("{p}upstream_failovers_total{{stream=\"{stream}\"}}");
        assert_eq!(value(&text, &failovers), "2");
    }

    #[test]
    fn latency_is_merged_over_workers() {
        let text = render(2, &two_workers());
        let seconds = |series: &str| -> f64 {
            value(&text, &format!("{PREFIX}{series}"))
                .parse()
                .expect("a number")
        };
        // Merged, 1..=2000 us: the median is near 1 ms, p99 near 1.98 ms.
        let p50 = seconds("added_latency_seconds{quantile=\"0.5\"}");
        assert!((p50 - 0.001).abs() < 0.00001, "{p50}");
        let p99 = seconds("added_latency_seconds{quantile=\"0.99\"}");
        assert!((p99 - 0.00198).abs() < 0.00001, "{p99}");
        let sum = seconds("added_latency_seconds_sum");
        assert!((sum - 2.001).abs() < 0.01, "{sum}");
        seconds("added_latency_seconds{quantile=\"0.9\"}");
        seconds("added_latency_seconds{quantile=\"0.999\"}");
        // Per worker: 1..=1000 us and 1001..=2000 us.
        let w0 = seconds("added_latency_p99_seconds{worker=\"0\"}");
        assert!((w0 - 0.00099).abs() < 0.00001, "{w0}");
        let w1 = seconds("added_latency_p99_seconds{worker=\"1\"}");
        assert!((w1 - 0.00199).abs() < 0.00001, "{w1}");
    }

    #[test]
    fn every_family_has_help_and_type_and_no_worker_is_fine() {
        let text = render(4, &[]);
        assert!(text.contains("shoal_relay_workers 4\n"));
        assert!(text.contains("shoal_relay_forwarded_total 0\n"));
        assert!(text.contains("shoal_relay_added_latency_seconds{quantile=\"0.5\"} NaN\n"));
        let mut families = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                families += 1;
                let name = rest.split(' ').next().expect("a name");
                assert!(name.starts_with(PREFIX), "{line}");
                assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            } else if !line.starts_with("# HELP ") {
                assert!(line.starts_with(PREFIX), "{line}");
                assert_eq!(line.split(' ').count(), 2, "{line}");
            }
        }
        assert!(families >= 24, "{families}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label(&mut out, "a\"b\\c\nd");
        assert_eq!(out, r#"a\"b\\c\nd"#);
    }
}
