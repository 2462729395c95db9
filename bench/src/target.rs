//! The relay under test: started in this process (the default), or one
//! already running elsewhere on this machine (`--relay ADDR`). Either way
//! it can be sampled for CPU time and for its own counters: in-process
//! from its workers' snapshots (with the relay-added latency histogram),
//! external from its Prometheus endpoint (`--relay-metrics`). With HTTP
//! readers the in-process relay also serves its web face (`--http`) on a
//! loopback port, from a thread that shares the workers' CPUs.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use shoal_proto::relay::RelayStats;
use shoal_relay::io::BackendKind;
use shoal_relay::server::Server;
use shoal_relay::server::config::{RelayArgs, Settings};
use shoal_relay::server::metrics::{WorkerSnapshot, latency_histogram};

use crate::cli::MAX_HTTP_VIEWERS;
use crate::sys;

/// Longest wait for the workers to publish their counters (they do about
/// every 250 ms).
const PUBLISH_WAIT: Duration = Duration::from_millis(400);

/// The relay's web face thread (`--http`): one tokio current-thread
/// runtime serves every HTTP reader.
const HTTP_THREAD: &str = "shoal-http";
/// Name prefixes of the relay's threads: its workers, the kernel's
/// io_uring helpers (`iou-wrk-*`, `iou-sqp-*`), which in this process can
/// only be the relay's, and its web face.
const RELAY_THREADS: [&str; 3] = ["shoal-worker", "iou-", HTTP_THREAD];

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
        /// Its Prometheus endpoint, for its counters.
        metrics: Option<SocketAddr>,
        /// Its web face (`--http`), for HTTP readers.
        http: Option<SocketAddr>,
    },
}

/// The relay's own counters, summed over its workers.
#[derive(Debug, Clone)]
pub struct RelayCounters {
    /// Datagrams its sockets received.
    pub received: u64,
    /// Stream datagrams sent to subscribers.
    pub forwarded: u64,
    /// Datagrams dropped, all reasons: by the relay core, as longer than a
    /// receive buffer (`truncated`) and on a full hand-off queue between
    /// workers (`handoff_full`).
    pub dropped: u64,
    /// The same by reason (only reasons that occurred).
    pub drops: BTreeMap<&'static str, u64>,
    /// Datagrams taken as exact copies of what the relay already holds:
    /// not drops, and not forwarded again.
    pub duplicates: u64,
    /// Trains dropped because a send queue was full.
    pub tx_dropped: u64,
    /// Failed sends.
    pub tx_errors: u64,
    /// Times the receive side ran out of buffers.
    pub rx_no_buffer: u64,
    /// Datagrams the sockets sent.
    pub tx_datagrams: u64,
    /// Send messages they took (one datagram or one GSO train each).
    pub tx_messages: u64,
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
            *drops.entry("truncated").or_insert(0) += s.io.rx_truncated;
            *drops.entry("handoff_full").or_insert(0) += s.handoffs_dropped;
        }
        Ok(Self {
            received: snaps.iter().map(|s| s.io.rx_datagrams).sum(),
            forwarded: snaps.iter().map(|s| s.relay.forwarded).sum(),
            dropped: drops.values().sum(),
            duplicates: snaps.iter().map(|s| s.relay.duplicates).sum(),
            drops,
            tx_dropped: snaps.iter().map(|s| s.io.tx_dropped).sum(),
            tx_errors: snaps.iter().map(|s| s.io.tx_errors).sum(),
            rx_no_buffer: snaps.iter().map(|s| s.io.rx_no_buffer).sum(),
            tx_datagrams: snaps.iter().map(|s| s.io.tx_datagrams).sum(),
            tx_messages: snaps.iter().map(|s| s.io.tx_messages).sum(),
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
            duplicates: self.duplicates.saturating_sub(earlier.duplicates),
            drops,
            tx_dropped: self.tx_dropped.saturating_sub(earlier.tx_dropped),
            tx_errors: self.tx_errors.saturating_sub(earlier.tx_errors),
            rx_no_buffer: self.rx_no_buffer.saturating_sub(earlier.rx_no_buffer),
            tx_datagrams: self.tx_datagrams.saturating_sub(earlier.tx_datagrams),
            tx_messages: self.tx_messages.saturating_sub(earlier.tx_messages),
            subscribers: self.subscribers,
            latency_us,
        })
    }
}

/// Each drop counter of the relay core with its name, as in
/// [`RelayStats::dropped`].
fn drop_reasons(s: &RelayStats) -> [(&'static str, u64); 23] {
    [
        ("malformed", s.drop_malformed),
        ("forged", s.drop_forged),
        ("corrupted", s.drop_corrupted),
        ("replayed", s.drop_replayed),
        ("stale", s.drop_stale),
        ("throttled", s.drop_throttled),
        ("wrong_stream", s.drop_wrong_stream),
        ("bad_key", s.drop_bad_key),
        ("manifest_missing", s.drop_manifest_missing),
        ("unproven", s.drop_unproven),
        ("bad_cookie", s.drop_bad_cookie),
        ("not_subscribed", s.drop_not_subscribed),
        ("bad_session", s.drop_bad_session),
        ("full", s.drop_full),
        ("rate_limited", s.drop_rate_limited),
        ("token_missing", s.drop_token_missing),
        ("token_invalid", s.drop_token_invalid),
        ("token_expired", s.drop_token_expired),
        ("token_scope", s.drop_token_scope),
        ("not_allowed", s.drop_not_allowed),
        ("source_streams", s.drop_source_streams),
        ("source_subscriptions", s.drop_source_subscriptions),
        ("repair_budget", s.drop_repair_budget),
    ]
}

/// Family names in the relay's metrics text (after its `shoal_relay_`
/// prefix) and what they fill.
const METRICS_PREFIX: &str = "shoal_relay_";

impl RelayCounters {
    /// The counters from the relay's Prometheus text: the totals (series
    /// without a `worker` label). No latency histogram is exported there,
    /// so it stays empty.
    fn parse_metrics(text: &str) -> anyhow::Result<Self> {
        let mut c = Self {
            received: 0,
            forwarded: 0,
            dropped: 0,
            drops: BTreeMap::new(),
            duplicates: 0,
            tx_dropped: 0,
            tx_errors: 0,
            rx_no_buffer: 0,
            tx_datagrams: 0,
            tx_messages: 0,
            subscribers: 0,
            latency_us: latency_histogram(),
        };
        let mut seen = false;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(METRICS_PREFIX) else {
                continue;
            };
            let Some((series, value)) = rest.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let value = value as u64;
            if let Some(labels) = series
                .strip_prefix("drops_total{reason=\"")
                .and_then(|l| l.strip_suffix("\"}"))
            {
                if labels == "tx_queue_full" {
                    c.tx_dropped = value;
                } else if let Some(name) =
                    shoal_relay::server::metrics::drop_reasons().find(|&r| r == labels)
                {
                    c.drops.insert(name, value);
                }
                continue;
            }
            match series {
                "io_rx_datagrams_total" => c.received = value,
                "forwarded_total" => c.forwarded = value,
                "duplicates_total" => c.duplicates = value,
                "io_tx_errors_total" => c.tx_errors = value,
                "io_rx_no_buffer_total" => c.rx_no_buffer = value,
                "io_tx_datagrams_total" => c.tx_datagrams = value,
                "io_tx_messages_total" => c.tx_messages = value,
                "subscribers" => {
                    c.subscribers = value;
                    seen = true;
                }
                _ => {}
            }
        }
        if !seen {
            bail!("no {METRICS_PREFIX}subscribers in the relay's metrics; is it a shoal relay?");
        }
        c.drops.retain(|_, n| *n > 0);
        c.dropped = c.drops.values().sum();
        Ok(c)
    }
}

/// `GET /metrics` from `addr`, bounded to a few seconds.
fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let (status, body) = crate::http::api::get(addr, "/metrics")
        .with_context(|| format!("--relay-metrics {addr}"))?;
    if status != 200 {
        bail!(
            "--relay-metrics {addr}: answered {status} to GET /metrics; is it the relay's --metrics?"
        );
    }
    Ok(body)
}

impl Target {
    /// Starts a relay in this process on 127.0.0.1, its `workers` pinned
    /// to the first `workers` allowed CPUs, with room for `viewers`; with
    /// `http`, its web face on a loopback port too, for up to
    /// [`MAX_HTTP_VIEWERS`] readers, its thread on the workers' CPUs.
    pub fn start(
        backend: BackendKind,
        workers: usize,
        viewers: usize,
        http: bool,
    ) -> anyhow::Result<Self> {
        let mut settings =
            Settings::load(&RelayArgs::default()).context("the relay's default settings")?;
        settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        settings.backend = backend;
        settings.workers = workers;
        settings.metrics = None;
        settings.pin = true;
        settings.max_subscribers = settings.max_subscribers.max(viewers + 64);
        // The web face's thread takes this thread's CPUs when it starts:
        // the relay's, apart from the load generator's.
        let allowed = sys::allowed_cpus();
        if http {
            settings.http = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
            settings.max_http_readers = MAX_HTTP_VIEWERS;
            let relay_cpus: Vec<usize> = allowed.iter().take(workers).copied().collect();
            sys::pin_to(&relay_cpus).context("cannot pin the relay's web face")?;
        }
        let server = Server::start(&settings);
        if http {
            sys::pin_to(&allowed).context("cannot unpin the main thread")?;
        }
        let server = server.with_context(|| {
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

    /// The relay's web face, if it serves one (in-process with HTTP
    /// readers, or external with `--relay-http`).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::InProcess(server) => server.http_addr(),
            Self::External { http, .. } => *http,
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
            Self::InProcess(_) => sys::threads_cpu_ticks("self", &RELAY_THREADS)
                .ok()
                .filter(|&(_, threads)| threads > 0)
                .map(|(ticks, _)| ticks),
            Self::External { pid: Some(pid), .. } => {
                sys::stat_cpu_ticks(&PathBuf::from(format!("/proc/{pid}/stat"))).ok()
            }
            Self::External { pid: None, .. } => None,
        }
    }

    /// CPU time the relay's web face thread has used so far, in clock
    /// ticks, if it has one and its process is known. A relay started
    /// earlier in this process (a step of `--find-max-http`) leaves its
    /// web face thread behind, idle once its readers are gone: its ticks
    /// are summed too, but no longer move.
    pub fn http_cpu_ticks(&self) -> Option<u64> {
        let pid = self.proc_pid()?;
        sys::threads_cpu_ticks(&pid, &[HTTP_THREAD])
            .ok()
            .filter(|&(_, threads)| threads > 0)
            .map(|(ticks, _)| ticks)
    }

    /// The relay's process id as `/proc` names it: `self` when in-process.
    pub fn proc_pid(&self) -> Option<String> {
        match self {
            Self::InProcess(_) => Some("self".to_owned()),
            Self::External { pid, .. } => pid.map(|p| p.to_string()),
        }
    }

    /// The relay's counters: the in-process relay's as last published by
    /// its workers (up to a quarter second old), an external relay's from
    /// its metrics endpoint, if given.
    pub fn counters(&self) -> anyhow::Result<Option<RelayCounters>> {
        match self {
            Self::InProcess(server) => RelayCounters::sum(&server.metrics().snapshots()).map(Some),
            Self::External {
                metrics: Some(addr),
                ..
            } => RelayCounters::parse_metrics(&scrape(*addr)?).map(Some),
            Self::External { metrics: None, .. } => Ok(None),
        }
    }

    /// [`Self::counters`], taken just after worker 0 publishes anew (within
    /// about a millisecond), so that they are current rather than up to a
    /// quarter second old.
    pub fn fresh_counters(&self) -> anyhow::Result<Option<RelayCounters>> {
        let Self::InProcess(server) = self else {
            // An external relay's endpoint shows what its workers last
            // published: wait out one publication period.
            if self.counters()?.is_some() {
                std::thread::sleep(PUBLISH_WAIT);
            }
            return self.counters();
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

/// Runs a relay with the settings `args` give (as `shoal relay` would)
/// until stdin reaches its end, after printing its address on stdout.
pub fn serve_until_stdin_closes(args: &RelayArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args).context("the relay's settings")?;
    let server = Server::start(&settings).context("cannot start the relay")?;
    println!("{}", server.local_addr());
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    while stdin.read(&mut sink).is_ok_and(|n| n > 0) {}
    server.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_gives_the_totals() {
        let text = "\
# TYPE shoal_relay_subscribers gauge
shoal_relay_subscribers 8
shoal_relay_subscribers{worker=\"1\"} 3
shoal_relay_io_rx_datagrams_total 1000
shoal_relay_forwarded_total 700
shoal_relay_drops_total{reason=\"malformed\"} 40
shoal_relay_drops_total{reason=\"truncated\"} 2
shoal_relay_drops_total{reason=\"forged\"} 0
shoal_relay_drops_total{reason=\"tx_queue_full\"} 5
";
        let c = RelayCounters::parse_metrics(text).expect("parses");
        assert_eq!(c.subscribers, 8);
        assert_eq!((c.received, c.forwarded, c.tx_dropped), (1000, 700, 5));
        assert_eq!(c.dropped, 42);
        assert_eq!(c.drops.get("malformed"), Some(&40));
        assert!(!c.drops.contains_key("forged"));
        assert!(RelayCounters::parse_metrics("nothing").is_err());
    }
}
