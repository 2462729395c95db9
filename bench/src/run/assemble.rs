//! The end of a run: the viewers' and the relay's counts, the CPU use and
//! the baseline, summed and turned into a [`Report`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::cpu::CpuUse;
use crate::baseline::Loops;
use crate::cli::Args;
use crate::flood::FloodReport;
use crate::http::ReadersReport;
use crate::reference::ReferenceResult;
use crate::report::{
    self, Baseline, FloodFigures, HttpFigures, Latency, Reference, RelayFigures, RelayLatency,
    Report,
};
use crate::shared::Shared;
use crate::soak::{Joins, Sampler, Soak};
use crate::source::SourceReport;
use crate::target::RelayCounters;
use crate::viewers::{self, ThreadReport};

/// What the run gathered, to be turned into a report.
pub(super) struct Assembly {
    pub(super) threads: Vec<ThreadReport>,
    pub(super) first_seq: u64,
    pub(super) end_seq: u64,
    pub(super) elapsed: Duration,
    pub(super) backend: &'static str,
    pub(super) cpu: CpuUse,
    pub(super) relay: Option<RelayCounters>,
    pub(super) baseline: Option<Loops>,
    pub(super) reference: Option<ReferenceResult>,
    pub(super) source: SourceReport,
    pub(super) subscribed: usize,
    pub(super) relay_cpus: Vec<usize>,
    pub(super) generator_cpus: Vec<usize>,
    pub(super) throughput: Vec<(f64, f64)>,
    /// The flood's report and the kernel's drops at the relay's port.
    pub(super) flood: Option<(FloodReport, Option<u64>)>,
    /// The soak sampler, and whether the relay ran in this process.
    pub(super) soak: Option<(Sampler, bool)>,
    /// The HTTP readers' report, and the jumps the relay counted.
    pub(super) http: Option<(ReadersReport, Option<u64>)>,
    pub(super) shared: Arc<Shared>,
}

pub(super) fn assemble(args: &Args, a: Assembly) -> Report {
    let mut expected = 0;
    let mut delivered = 0;
    let mut duplicates = 0;
    let mut out_of_order = 0;
    let mut datagrams = 0;
    let mut bytes = 0;
    let mut leaves = 0;
    let mut send_errors = 0;
    let mut unstamped = 0;
    let mut rejects = std::collections::BTreeMap::new();
    let mut latency = viewers::latency_histogram();
    let mut joins = Joins {
        total: a.shared.joins.load(Ordering::Relaxed),
        served: a.shared.joins_served.load(Ordering::Relaxed),
        ..Joins::default()
    };
    for t in &a.threads {
        joins.late += t.joins_late;
        joins.unserved += t.joins_unserved;
        joins.pending += t.joins_pending;
        for (_, v) in &t.viewers {
            // A viewer that subscribed late owes only what followed its
            // start; one that left, only what came before it left.
            let from = a.first_seq.max(v.start_seq.unwrap_or(a.first_seq));
            let to = v.end_seq.map_or(a.end_seq, |e| e.min(a.end_seq));
            let owed = to.saturating_sub(from);
            expected += owed;
            delivered += v.delivered.min(owed);
            duplicates += v.duplicates;
            out_of_order += v.out_of_order;
        }
        datagrams += t.measured_datagrams;
        bytes += t.measured_bytes;
        leaves += t.leaves;
        unstamped += t.unstamped;
        send_errors += t.send_errors;
        for (why, n) in &t.rejects {
            *rejects.entry(why.clone()).or_insert(0) += n;
        }
        // Same bounds on both sides: cannot fail.
        let _ = latency.add(&t.latency_us);
    }
    let secs = a.elapsed.as_secs_f64().max(1e-9);
    let delivered_pps = datagrams as f64 / secs;
    let baseline = a.baseline.map(|loops| {
        let mmsg_pps = loops.mmsg.received_pps();
        let gso_pps = loops.gso.map(|g| g.received_pps());
        let uring_gso_pps = loops.uring_gso.map(|g| g.received_pps());
        let best = [gso_pps, uring_gso_pps]
            .into_iter()
            .flatten()
            .fold(mmsg_pps, f64::max);
        Baseline {
            baseline_sendmmsg_pps: mmsg_pps,
            baseline_gso_pps: gso_pps,
            baseline_uring_gso_pps: uring_gso_pps,
            baseline_pps: best,
            efficiency: if best > 0.0 {
                delivered_pps / best
            } else {
                0.0
            },
            baseline_sendmmsg_sent_pps: loops.mmsg.sent_pps(),
            baseline_gso_sent_pps: loops.gso.map(|g| g.sent_pps()),
            baseline_uring_gso_sent_pps: loops.uring_gso.map(|g| g.sent_pps()),
        }
    });
    let reference = a.reference.map(|r| {
        let over = delivered_pps / r.received_pps.max(1e-9);
        let advantage = baseline.as_ref().and_then(|b| {
            let gso = b
                .baseline_gso_pps
                .into_iter()
                .chain(b.baseline_uring_gso_pps);
            gso.reduce(f64::max)
                .map(|best| best / b.baseline_sendmmsg_pps.max(1e-9))
        });
        Reference {
            reference_program: "multiudpsink",
            reference_pps: r.received_pps,
            reference_fed_pps: r.fed_pps,
            reference_cpu_percent: r.cpu_percent,
            shoal_over_reference: over,
            gso_advantage: advantage,
            advantage_kept: advantage.map(|g| over / g),
        }
    });
    Report {
        viewers: args.viewers,
        bitrate_bps: args.bitrate,
        duration_s: secs,
        backend: a.backend.to_owned(),
        workers: args.workers,
        chunks_expected: expected,
        chunks_delivered: delivered,
        loss_ratio: if expected > 0 {
            (expected - delivered) as f64 / expected as f64
        } else {
            0.0
        },
        duplicates,
        out_of_order,
        delivered_pps,
        delivered_gbps: bytes as f64 * 8.0 / secs / 1e9,
        delivered_chunks_pps: delivered as f64 / secs,
        relay_cpu_percent: a.cpu.relay,
        // The web face thread serves the HTTP readers, the rest the UDP
        // subscribers (the web face's own viewer among them: one more).
        relay_cpu_per_viewer_percent: a
            .cpu
            .relay
            .filter(|_| args.viewers > 0)
            .map(|all| (all - a.cpu.relay_http.unwrap_or(0.0)).max(0.0) / args.viewers as f64),
        source_cpu_percent: a.cpu.source,
        viewers_cpu_percent: a.cpu.viewers,
        latency_us: Latency::of(&latency),
        latency_cdf: report::cdf(&latency),
        throughput: a.throughput,
        max_viewers: None,
        steps: None,
        relay_added_latency_us: a
            .relay
            .as_ref()
            .and_then(|r| RelayLatency::of(&r.latency_us)),
        serialization_bound_us: baseline.as_ref().map(|b| {
            let per_block = f64::from(args.fec.0) + f64::from(args.fec.1);
            (args.viewers as f64 * per_block / b.baseline_pps.max(1e-9) * 1e6) as u64
        }),
        baseline,
        reference,
        fps: args.fps,
        chunk_bytes: args.chunk,
        warmup_s: args.warmup.as_secs_f64(),
        viewers_subscribed: a.subscribed,
        source_chunks: a.end_seq - a.first_seq,
        source_stalls: a.source.stalls,
        source_datagrams: a.source.measured_datagrams,
        relay: a.relay.as_ref().map(|r| RelayFigures {
            received: r.received,
            forwarded: r.forwarded,
            dropped: r.dropped,
            drops: r.drops.clone(),
            tx_dropped: r.tx_dropped,
            tx_errors: r.tx_errors,
            rx_no_buffer: r.rx_no_buffer,
            tx_datagrams: r.tx_datagrams,
            tx_messages: r.tx_messages,
        }),
        rejects,
        leaves,
        viewer_send_errors: send_errors,
        relay_cpus: a.relay_cpus,
        generator_cpus: a.generator_cpus,
        kernel_timestamps: unstamped == 0,
        fec_k: args.fec.0,
        fec_m: args.fec.1,
        flood: a.flood.map(|(flooder, socket_drops)| {
            FloodFigures::new(flooder, socket_drops, a.relay.as_ref())
        }),
        soak: a.soak.map(|(sampler, in_process)| -> Soak {
            sampler.finish(args.churn.unwrap_or(0.0), args.viewers, joins, in_process)
        }),
        http: a.http.map(|(readers, jumps)| {
            HttpFigures::new(
                &readers,
                secs,
                args.bitrate,
                jumps,
                a.cpu.relay_http,
                a.cpu.readers,
            )
        }),
        max_http_viewers: None,
    }
}
