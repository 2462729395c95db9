//! The Prometheus endpoint: workers publish snapshots, a scrape renders them.
//!
//! Each worker keeps its own counters and latency histogram and, about
//! every 250 ms and off its hot path, [`MetricsHub::publish`]es a
//! [`WorkerSnapshot`] into its slot. A scrape of `GET /metrics` (served by
//! [`crate::web`]) copies the slots under the lock and renders them after it:
//! totals are summed and histograms merged there, never in the workers,
//! so a worker's only cost is building its snapshot and one short lock.

mod render;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hdrhistogram::Histogram;
use shoal_proto::StreamId;
use shoal_proto::relay::{RelayStats, StreamSummary};
use shoal_proto::window::WindowStats;

use crate::io::BackendStats;

pub use render::drop_reasons;

/// Highest relay-added latency recorded, in microseconds (60 s).
pub const LATENCY_MAX_US: u64 = 60_000_000;

/// One upstream subscription, as a worker sees it.
pub use shoal_proto::relay::UpstreamStatus;

/// What one worker counted since it started. Counters are cumulative;
/// `subscribers` and `streams` are the current values.
#[derive(Debug, Clone)]
pub struct WorkerSnapshot {
    /// The worker's index, `0..workers`: the hub slot it fills.
    pub worker: usize,
    /// Its IO backend's name ("uring" or "mmsg").
    pub backend: &'static str,
    /// The relay core's counters.
    pub relay: RelayStats,
    /// Window counters, summed over the worker's streams.
    pub window: WindowStats,
    /// The IO backend's counters.
    pub io: BackendStats,
    /// Subscribers now.
    pub subscribers: u64,
    /// Streams carried now.
    pub streams: u64,
    /// Of those, the ones with a verified DESCRIPTOR: what the relay can
    /// serve, and announces on the DHT with `--announce`.
    pub live_streams: Vec<StreamId>,
    /// Every stream it carries, with its subscribers (for `/api/streams`).
    pub stream_summaries: Vec<StreamSummary>,
    /// Its upstream subscriptions.
    pub upstreams: Vec<UpstreamStatus>,
    /// Relay-added latency (arrival to send), in microseconds, since start;
    /// made by [`latency_histogram`] and filled with `saturating_record`
    /// so an outlier cannot fail.
    pub latency_us: Histogram<u64>,
    /// Subscriber handshakes dropped by the per-IP rate limit.
    pub handshakes_rate_limited: u64,
    /// Items or datagrams dropped because another worker's queue was full.
    pub handoffs_dropped: u64,
}

/// The workers' latest snapshots, one slot per worker; cheap to clone and
/// share between the workers and the endpoint.
#[derive(Clone, Debug)]
pub struct MetricsHub(Arc<Mutex<Vec<Option<WorkerSnapshot>>>>);

impl MetricsHub {
    /// A hub for `workers` workers, none reported yet.
    pub fn new(workers: usize) -> Self {
        Self(Arc::new(Mutex::new(vec![None; workers])))
    }

    /// Replaces worker `snap.worker`'s slot. A worker index beyond the
    /// hub's size is a bug in the caller; the snapshot is then ignored.
    pub fn publish(&self, snap: WorkerSnapshot) {
        let mut slots = self.lock();
        debug_assert!(
            snap.worker < slots.len(),
            "worker {} has no slot",
            snap.worker
        );
        let old = slots
            .get_mut(snap.worker)
            .and_then(|slot| slot.replace(snap));
        drop(slots);
        // The old snapshot's histogram is freed after the lock is released.
        drop(old);
    }

    /// The Prometheus text exposition (format 0.0.4) of every snapshot.
    pub fn render(&self) -> String {
        let (workers, snaps) = self.copy();
        render::render(workers, &snaps)
    }

    /// Copies of the snapshots published so far, by worker index.
    pub fn snapshots(&self) -> Vec<WorkerSnapshot> {
        self.copy().1
    }

    fn copy(&self) -> (usize, Vec<WorkerSnapshot>) {
        let slots = self.lock();
        (slots.len(), slots.iter().flatten().cloned().collect())
    }

    /// The slots. A worker that panicked while holding the lock left a
    /// whole snapshot or none (`publish` only swaps), so the data is
    /// still good and the poison is ignored.
    fn lock(&self) -> MutexGuard<'_, Vec<Option<WorkerSnapshot>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An empty relay-added latency histogram: 1 µs to 60 s
/// ([`LATENCY_MAX_US`]) at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("constant bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn snapshot(worker: usize) -> WorkerSnapshot {
        WorkerSnapshot {
            worker,
            backend: "mmsg",
            relay: RelayStats::default(),
            window: WindowStats::default(),
            io: BackendStats::default(),
            subscribers: 0,
            streams: 0,
            live_streams: Vec::new(),
            stream_summaries: Vec::new(),
            upstreams: Vec::new(),
            latency_us: latency_histogram(),
            handshakes_rate_limited: 0,
            handoffs_dropped: 0,
        }
    }

    #[test]
    fn publish_replaces_the_workers_slot() {
        let hub = MetricsHub::new(3);
        assert!(hub.snapshots().is_empty());
        let mut snap = snapshot(2);
        snap.subscribers = 5;
        hub.publish(snap.clone());
        snap.subscribers = 7;
        hub.publish(snap);
        hub.publish(snapshot(0));
        let snaps = hub.snapshots();
        assert_eq!(snaps.iter().map(|s| s.worker).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(snaps[1].subscribers, 7);
    }

    #[test]
    fn the_latency_histogram_spans_a_minute() {
        let mut h = latency_histogram();
        h.saturating_record(0);
        h.saturating_record(LATENCY_MAX_US * 10);
        h.record(1234).expect("in range");
        assert_eq!(h.len(), 3);
        assert!(h.max() >= LATENCY_MAX_US);
    }
}
