//! The relay under test: started in this process (the default), or one
//! already running elsewhere on this machine (`--relay ADDR`). Either way
//! it can be sampled for CPU time and, when in-process, for its own
//! counters and relay-added latency histogram.

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use shoal_proto::relay::RelayStats;
use shoal_relay::config::{RelayArgs, Settings};
use shoal_relay::io::BackendKind;
use shoal_relay::metrics::{WorkerSnapshot, latency_histogram};
use shoal_relay::server::Server;

use crate::sys;

/// Longest wait for the workers to publish their counters (they do about
/// every 250 ms).
const PUBLISH_WAIT: Duration = Duration::from_millis(400);

/// Name prefixes of the relay's threads: its workers, and the kernel's
/// io_uring helpers (`iou-wrk-*`, `iou-sqp-*`), which in this process can
/// only be the relay's.
const RELAY_THREADS: [&str; 2] = ["shoal-worker", "iou-"];

/// See the module docs.
#[derive(Debug)]
pub enum Target {
    /// A relay in this process.
    InProcess(Server),
    /// A relay elsewhere, with its process id when given.
    External {
        /// Its address.
        addr: SocketAddrV4,
        /// Its process, for CPU time.
        pid: Option<u32>,
    },
}

/// The relay's own counters, summed over its workers.
#[derive(Debug, Clone)]
pub struct RelayCounters {
    /// Datagrams its sockets received.
    pub received: u64,
    /// Stream datagrams sent to subscribers.
    pub forwarded: u64,
    /// Datagrams dropped by the relay core, all reasons.
    pub dropped: u64,
    /// The same by reason (only reasons that occurred).
    pub drops: BTreeMap<&'static str, u64>,
    /// Trains dropped because a send queue was full.
    pub tx_dropped: u64,
    /// Failed sends.
    pub tx_errors: u64,
    /// Times the receive side ran out of buffers.
    pub rx_no_buffer: u64,
    /// Subscribers now.
    pub subscribers: u64,
    /// Relay-added latency (arrival to send), microseconds.
    pub latency_us: Histogram<u64>,
}

impl RelayCounters {
    fn sum(snaps: &[WorkerSnapshot]) -> anyhow::Result<Self> {
        let mut latency_us = latency_histogram();
        for s in snaps {
            latency_us
                .add(&s.latency_us)
                .context("merging the workers' latency histograms")?;
        }
        let mut drops = BTreeMap::new();
        for s in snaps {
            for (why, n) in drop_reasons(&s.relay) {
                *drops.entry(why).or_insert(0) += n;
            }
        }
        Ok(Self {
            received: snaps.iter().map(|s| s.io.rx_datagrams).sum(),
            forwarded: snaps.iter().map(|s| s.relay.forwarded).sum(),
            dropped: snaps.iter().map(|s| s.relay.dropped()).sum(),
            drops,
            tx_dropped: snaps.iter().map(|s| s.io.tx_dropped).sum(),
            tx_errors: snaps.iter().map(|s| s.io.tx_errors).sum(),
            rx_no_buffer: snaps.iter().map(|s| s.io.rx_no_buffer).sum(),
            subscribers: snaps.iter().map(|s| s.subscribers).sum(),
            latency_us,
        })
    }

    /// What happened between `earlier` and `self` (counters and histogram
    /// are cumulative; `subscribers` is the current value).
    pub fn since(&self, earlier: &Self) -> anyhow::Result<Self> {
        let mut latency_us = self.latency_us.clone();
        latency_us
            .subtract(&earlier.latency_us)
            .context("the relay's latency histogram went backwards")?;
        let drops = self
            .drops
            .iter()
            .map(|(&why, &n)| {
                (
                    why,
                    n.saturating_sub(earlier.drops.get(why).copied().unwrap_or(0)),
                )
            })
            .filter(|&(_, n)| n > 0)
            .collect();
        Ok(Self {
            received: self.received.saturating_sub(earlier.received),
            forwarded: self.forwarded.saturating_sub(earlier.forwarded),
            dropped: self.dropped.saturating_sub(earlier.dropped),
            drops,
            tx_dropped: self.tx_dropped.saturating_sub(earlier.tx_dropped),
            tx_errors: self.tx_errors.saturating_sub(earlier.tx_errors),
            rx_no_buffer: self.rx_no_buffer.saturating_sub(earlier.rx_no_buffer),
            subscribers: self.subscribers,
            latency_us,
        })
    }
}

/// Each drop counter of the relay core with its name, as in
/// [`RelayStats::dropped`].
fn drop_reasons(s: &RelayStats) -> [(&'static str, u64); 11] {
    [
        ("malformed", s.drop_malformed),
        ("forged", s.drop_forged),
        ("corrupted", s.drop_corrupted),
        ("replayed", s.drop_replayed),
        ("wrong_stream", s.drop_wrong_stream),
        ("bad_key", s.drop_bad_key),
        ("manifest_missing", s.drop_manifest_missing),
        ("bad_cookie", s.drop_bad_cookie),
        ("not_subscribed", s.drop_not_subscribed),
        ("full", s.drop_full),
        ("rate_limited", s.drop_rate_limited),
    ]
}

impl Target {
    /// Starts a relay in this process on 127.0.0.1, its `workers` pinned
    /// to the first `workers` allowed CPUs, with room for `viewers`.
    pub fn start(backend: BackendKind, workers: usize, viewers: usize) -> anyhow::Result<Self> {
        let mut settings =
            Settings::load(&RelayArgs::default()).context("the relay's default settings")?;
        settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        settings.backend = backend;
        settings.workers = workers;
        settings.metrics = None;
        settings.pin = true;
        settings.max_subscribers = settings.max_subscribers.max(viewers + 64);
        let server = Server::start(&settings).with_context(|| {
            format!("cannot start the relay (--backend {backend:?}, --workers {workers})")
        })?;
        Ok(Self::InProcess(server))
    }

    /// Where viewers and the source send.
    pub fn addr(&self) -> anyhow::Result<SocketAddrV4> {
        match self {
            Self::InProcess(server) => match server.local_addr() {
                SocketAddr::V4(a) => Ok(a),
                SocketAddr::V6(a) => bail!("the relay listens on IPv6 {a}; expected 127.0.0.1"),
            },
            Self::External { addr, .. } => Ok(*addr),
        }
    }

    /// "uring", "mmsg", or "external".
    pub fn backend(&self) -> &'static str {
        match self {
            Self::InProcess(server) => server.backend(),
            Self::External { .. } => "external",
        }
    }

    /// CPU time the relay has used so far, in clock ticks: its worker
    /// threads' when in-process, the whole process's when its pid is
    /// known, else `None`.
    pub fn cpu_ticks(&self) -> Option<u64> {
        match self {
            Self::InProcess(_) => sys::threads_cpu_ticks(&RELAY_THREADS)
                .ok()
                .filter(|&(_, threads)| threads > 0)
                .map(|(ticks, _)| ticks),
            Self::External { pid: Some(pid), .. } => {
                sys::stat_cpu_ticks(&PathBuf::from(format!("/proc/{pid}/stat"))).ok()
            }
            Self::External { pid: None, .. } => None,
        }
    }

    /// The in-process relay's counters (as last published by its workers,
    /// up to a quarter second old).
    pub fn counters(&self) -> anyhow::Result<Option<RelayCounters>> {
        match self {
            Self::InProcess(server) => RelayCounters::sum(&server.metrics().snapshots()).map(Some),
            Self::External { .. } => Ok(None),
        }
    }

    /// [`Self::counters`], taken just after worker 0 publishes anew (within
    /// about a millisecond), so that they are current rather than up to a
    /// quarter second old.
    pub fn fresh_counters(&self) -> anyhow::Result<Option<RelayCounters>> {
        let Self::InProcess(server) = self else {
            return Ok(None);
        };
        let mark = |snaps: &[WorkerSnapshot]| {
            snaps.iter().find(|s| s.worker == 0).map(|s| {
                (
                    s.io.rx_datagrams,
                    s.io.tx_datagrams,
                    s.relay.datagrams_in,
                    s.latency_us.len(),
                )
            })
        };
        let first = mark(&server.metrics().snapshots());
        let deadline = Instant::now() + PUBLISH_WAIT;
        loop {
            let snaps = server.metrics().snapshots();
            if mark(&snaps) != first || Instant::now() >= deadline {
                return RelayCounters::sum(&snaps).map(Some);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops an in-process relay; an external one is left alone.
    pub fn shutdown(self) {
        if let Self::InProcess(server) = self {
            server.shutdown();
        }
    }
}
