//! The table on stdout: one row per figure, a key and its values.

use super::{Report, step};
use crate::text::{count, rate};

impl Report {
    /// The table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(&str, String)> = Vec::new();
        rows.push((
            "run",
            format!(
                "{} viewers{} x {} for {:.1} s (after {:.1} s warm-up), {} fps, {} B chunks, \
                 FEC {}+{}",
                self.viewers,
                self.http
                    .as_ref()
                    .map_or_else(String::new, |h| format!(" and {} HTTP readers", h.readers)),
                rate(self.bitrate_bps as f64),
                self.duration_s,
                self.warmup_s,
                self.fps,
                self.chunk_bytes,
                self.fec_k,
                self.fec_m
            ),
        ));
        rows.push((
            "relay",
            format!(
                "{} backend, {} worker{} on CPU {}; generator on CPU {}",
                self.backend,
                self.workers,
                if self.workers == 1 { "" } else { "s" },
                cpus(&self.relay_cpus),
                cpus(&self.generator_cpus)
            ),
        ));
        // With HTTP readers alone there is nothing for these to say.
        if self.viewers > 0 {
            self.viewer_rows(&mut rows);
        }
        rows.push((
            "relay adds us",
            match self.relay_added_latency_us {
                Some(l) => format!(
                    "p50 {}  p99 {}  p99.9 {}  max {}  (arrival to send, relay's histogram)",
                    l.p50, l.p99, l.p999, l.max
                ),
                None => "unknown".to_owned(),
            },
        ));
        if let Some(bound) = self.serialization_bound_us {
            rows.push((
                "serialization",
                format!(
                    "{bound} us to send one {}+{} block to every viewer at the best bare \
                     loop's rate (the least any relay on this core can add)",
                    self.fec_k, self.fec_m
                ),
            ));
        }
        rows.push((
            "relay CPU",
            match self.relay_cpu_percent {
                Some(p) => format!(
                    "{p:.1}% of one core{}",
                    self.relay_cpu_per_viewer_percent
                        .map_or_else(String::new, |v| format!(" ({v:.3}% per UDP viewer)"))
                ),
                None => "unknown (give --relay-pid)".to_owned(),
            },
        ));
        if let Some(r) = &self.relay {
            let drops = if r.drops.is_empty() {
                String::new()
            } else {
                let each: Vec<String> = r.drops.iter().map(|(k, n)| format!("{n} {k}")).collect();
                format!(" ({})", each.join(", "))
            };
            rows.push((
                "relay counts",
                format!(
                    "{} received (source sent {}), {} forwarded, {} dropped{drops}, \
                     {} tx dropped, {} tx errors, {} rx no buffer, {:.1} datagrams per send",
                    r.received,
                    self.source_datagrams,
                    r.forwarded,
                    r.dropped,
                    r.tx_dropped,
                    r.tx_errors,
                    r.rx_no_buffer,
                    r.tx_datagrams as f64 / r.tx_messages.max(1) as f64
                ),
            ));
        }
        if !self.rejects.is_empty() || self.leaves > 0 {
            let rejects: Vec<String> = self
                .rejects
                .iter()
                .map(|(why, n)| format!("{n} {why}"))
                .collect();
            rows.push((
                "refusals",
                format!(
                    "rejects: {}; leaves: {}",
                    if rejects.is_empty() {
                        "none".to_owned()
                    } else {
                        rejects.join(", ")
                    },
                    self.leaves
                ),
            ));
        }
        let readers_cpu = self.http.as_ref().map(|h| h.readers_cpu_percent);
        rows.push((
            "generator CPU",
            format!(
                "source {:.1}%, viewers {:.1}%{} of one core",
                self.source_cpu_percent,
                self.viewers_cpu_percent,
                readers_cpu.map_or_else(String::new, |p| format!(", HTTP readers {p:.1}%"))
            ),
        ));
        let generator_cores = self.generator_cpus.len().max(1) as f64;
        let generator = self.source_cpu_percent + self.viewers_cpu_percent;
        if generator + readers_cpu.unwrap_or(0.0) > 85.0 * generator_cores {
            rows.push((
                "warning",
                "the load generator's CPUs were nearly saturated: loss and latency may be \
                 the generator's, not the relay's"
                    .to_owned(),
            ));
        }
        if self.source_stalls > 0 {
            rows.push((
                "warning",
                format!(
                    "the source fell behind its frame clock {} times: the generator CPU is \
                     overloaded",
                    self.source_stalls
                ),
            ));
        }
        if let Some(f) = &self.flood {
            f.rows(&mut rows);
        }
        if let Some(s) = &self.soak {
            s.rows(&mut rows);
        }
        if let Some(h) = &self.http {
            h.rows(&mut rows);
        }
        if let Some(max) = self.max_viewers {
            rows.push((
                "max viewers",
                format!(
                    "{max} at {} (loss <= {}%, one-way p99 <= {} us; figures above are of \
                     that step)",
                    rate(self.bitrate_bps as f64),
                    step::MAX_LOSS * 100.0,
                    step::MAX_P99_US
                ),
            ));
        }
        if let Some(max) = self.max_http_viewers {
            rows.push((
                "max HTTP readers",
                format!(
                    "{max} at {} (none behind, no jump; figures above are of that step)",
                    rate(self.bitrate_bps as f64)
                ),
            ));
        }
        for step in self.steps.iter().flatten() {
            let count = match step.http_viewers {
                Some(n) => format!("{n} HTTP readers"),
                None => format!("{} viewers", step.viewers),
            };
            rows.push(("  step", format!("{count}: {}", step::describe(step))));
        }
        if let Some(b) = self.baseline {
            rows.push((
                "baseline",
                format!(
                    "sendmmsg {} pps (of {} sent), GSO {}, io_uring GSO {} (received; same \
                     destinations, relay's CPU)",
                    count(b.baseline_sendmmsg_pps),
                    count(b.baseline_sendmmsg_sent_pps),
                    received_of_sent(b.baseline_gso_pps, b.baseline_gso_sent_pps),
                    received_of_sent(b.baseline_uring_gso_pps, b.baseline_uring_gso_sent_pps),
                ),
            ));
            rows.push((
                "efficiency",
                format!(
                    "{:.1}% (delivered {} / baseline {} pps)",
                    b.efficiency * 100.0,
                    count(self.delivered_pps),
                    count(b.baseline_pps)
                ),
            ));
        }
        if let Some(r) = self.reference {
            rows.push((
                "reference",
                format!(
                    "{} {} pps (fed {} pps, {:.0}% CPU; received, same destinations, relay's \
                     CPU): shoal delivers {:.2}x",
                    r.reference_program,
                    count(r.reference_pps),
                    count(r.reference_fed_pps),
                    r.reference_cpu_percent,
                    r.shoal_over_reference
                ),
            ));
            if let (Some(g), Some(kept)) = (r.gso_advantage, r.advantage_kept) {
                rows.push((
                    "GSO advantage",
                    format!(
                        "bare GSO / bare sendmmsg {g:.2}x; shoal keeps {:.1}% of it",
                        kept * 100.0
                    ),
                ));
            }
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            out.push_str(&format!("{k:<width$}  {v}\n"));
        }
        out
    }

    /// The UDP viewers' rows: what they got, in what order, how late.
    fn viewer_rows(&self, rows: &mut Vec<(&str, String)>) {
        rows.push((
            "chunks",
            format!(
                "{} expected, {} delivered, loss {:.4}%",
                self.chunks_expected,
                self.chunks_delivered,
                self.loss_ratio * 100.0
            ),
        ));
        rows.push((
            "order",
            format!(
                "{} duplicates, {} out of order",
                self.duplicates, self.out_of_order
            ),
        ));
        rows.push((
            "delivered",
            format!(
                "{} datagrams/s ({} chunks/s), {:.3} Gbit/s",
                count(self.delivered_pps),
                count(self.delivered_chunks_pps),
                self.delivered_gbps
            ),
        ));
        rows.push((
            "latency us",
            match self.latency_us {
                Some(l) => format!(
                    "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (source send to {})",
                    l.p50,
                    l.p90,
                    l.p99,
                    l.p999,
                    l.max,
                    if self.kernel_timestamps {
                        "arrival in the viewer's socket"
                    } else {
                        "the viewer's read"
                    }
                ),
                None => "no chunk measured".to_owned(),
            },
        ));
    }
}

fn cpus(list: &[usize]) -> String {
    if list.is_empty() {
        return "any".to_owned();
    }
    list.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// "N pps (of M sent)", or "unavailable" for a loop that did not run.
fn received_of_sent(received: Option<f64>, sent: Option<f64>) -> String {
    match (received, sent) {
        (Some(got), Some(sent)) => format!("{} pps (of {} sent)", count(got), count(sent)),
        _ => "unavailable".to_owned(),
    }
}
