//! The soak figures of a run with `--churn`: once a second while
//! measuring, the relay's resident memory, open file descriptors and
//! subscriber gauge, the bench's own descriptors (the churning viewers
//! open and close sockets) and the joins so far; then a summary that says
//! whether each stayed bounded.

use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::shared::Shared;
use crate::sys;
use crate::target::Target;

/// Memory is judged from this far into the measurement, once the
/// subscriber table has filled up with the viewers that left silently and
/// not yet expired (the relay's default subscriber timeout is 5 s).
const SETTLE_S: f64 = 10.0;

/// One second's look.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the measurement began.
    pub t_s: f64,
    /// The relay process's resident memory, KiB (null when unknown).
    pub relay_rss_kib: Option<u64>,
    /// The relay process's open file descriptors.
    pub relay_fds: Option<u64>,
    /// The bench's open file descriptors.
    pub bench_fds: Option<u64>,
    /// The relay's subscriber gauge.
    pub subscribers: Option<u64>,
    /// Joins so far.
    pub joins: u64,
    /// Of those, served within the deadline.
    pub joins_served: u64,
}

/// Takes the samples.
#[derive(Debug)]
pub struct Sampler {
    samples: Vec<Sample>,
    relay_pid: Option<String>,
    next_s: f64,
}

impl Sampler {
    /// A sampler for `target`'s process.
    pub fn new(target: &Target) -> Self {
        Self {
            samples: Vec::new(),
            relay_pid: target.proc_pid(),
            next_s: 1.0,
        }
    }

    /// Takes a sample if a second has passed since the last one.
    pub fn tick(&mut self, t_s: f64, target: &Target, shared: &Shared) {
        if t_s < self.next_s {
            return;
        }
        self.next_s = t_s.floor() + 1.0;
        let pid = self.relay_pid.as_deref();
        self.samples.push(Sample {
            t_s,
            relay_rss_kib: pid.and_then(|p| sys::rss_kib(p).ok()),
            relay_fds: pid.and_then(|p| sys::fd_count(p).ok()),
            bench_fds: sys::fd_count("self").ok(),
            subscribers: target.counters().ok().flatten().map(|c| c.subscribers),
            joins: shared.joins.load(Ordering::Relaxed),
            joins_served: shared.joins_served.load(Ordering::Relaxed),
        });
    }

    /// The summary, with the joins' outcome from the viewer threads.
    pub fn finish(self, churn: f64, viewers: usize, joins: Joins, in_process: bool) -> Soak {
        let s = &self.samples;
        let settled = s
            .iter()
            .position(|x| x.t_s >= SETTLE_S)
            .filter(|&i| i * 2 < s.len())
            .unwrap_or(0);
        let rss_settled = s.get(settled).and_then(|x| x.relay_rss_kib);
        let after = &s[settled.min(s.len())..];
        let max = |f: fn(&Sample) -> Option<u64>, xs: &[Sample]| xs.iter().filter_map(f).max();
        let min = |f: fn(&Sample) -> Option<u64>, xs: &[Sample]| xs.iter().filter_map(f).min();
        let rss_max_after = max(|x| x.relay_rss_kib, after);
        Soak {
            churn_per_s: churn,
            churned_per_s: (churn * viewers as f64).round() as u64,
            joins,
            relay_in_process: in_process,
            relay_rss_kib_first: s.first().and_then(|x| x.relay_rss_kib),
            relay_rss_kib_settled: rss_settled,
            relay_rss_kib_max: max(|x| x.relay_rss_kib, s),
            relay_rss_kib_last: s.last().and_then(|x| x.relay_rss_kib),
            relay_rss_growth_kib: rss_settled
                .zip(rss_max_after)
                .map(|(a, b)| b.saturating_sub(a)),
            subscribers_max: max(|x| x.subscribers, s),
            subscribers_last: s.last().and_then(|x| x.subscribers),
            relay_fds_min: min(|x| x.relay_fds, s),
            relay_fds_max: max(|x| x.relay_fds, s),
            bench_fds_min: min(|x| x.bench_fds, s),
            bench_fds_max: max(|x| x.bench_fds, s),
            samples: self.samples,
        }
    }
}

/// What became of the viewers that joined by churn.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Joins {
    /// Viewers that joined on a fresh socket.
    pub total: u64,
    /// First DATA within 2 s of joining.
    pub served: u64,
    /// First DATA later than that.
    pub late: u64,
    /// No DATA within 2 s.
    pub unserved: u64,
    /// Joined less than 2 s before the end, not yet served.
    pub pending: u64,
}

/// The soak summary and its samples.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    /// Share of the viewers replaced each second.
    pub churn_per_s: f64,
    /// Viewers replaced each second.
    pub churned_per_s: u64,
    /// The joins' outcome.
    pub joins: Joins,
    /// The relay ran in the bench's process: its memory and descriptors
    /// are the bench's too.
    pub relay_in_process: bool,
    /// Relay RSS at the first sample, KiB.
    pub relay_rss_kib_first: Option<u64>,
    /// Relay RSS once settled (10 s in, when the run is long enough), KiB.
    pub relay_rss_kib_settled: Option<u64>,
    /// Highest relay RSS, KiB.
    pub relay_rss_kib_max: Option<u64>,
    /// Relay RSS at the last sample, KiB.
    pub relay_rss_kib_last: Option<u64>,
    /// Highest RSS after settling minus the settled RSS, KiB.
    pub relay_rss_growth_kib: Option<u64>,
    /// Highest subscriber gauge.
    pub subscribers_max: Option<u64>,
    /// The subscriber gauge at the last sample.
    pub subscribers_last: Option<u64>,
    /// Fewest and most relay file descriptors.
    pub relay_fds_min: Option<u64>,
    pub relay_fds_max: Option<u64>,
    /// Fewest and most bench file descriptors.
    pub bench_fds_min: Option<u64>,
    pub bench_fds_max: Option<u64>,
    /// Every sample.
    pub samples: Vec<Sample>,
}

impl Soak {
    /// The table's rows.
    pub fn rows(&self, rows: &mut Vec<(&'static str, String)>) {
        let opt = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
        let j = &self.joins;
        rows.push((
            "churn",
            format!(
                "{:.1}%/s ({} viewers/s): {} joins, {} served within 2 s, {} late, {} unserved, \
                 {} pending at the end",
                self.churn_per_s * 100.0,
                self.churned_per_s,
                j.total,
                j.served,
                j.late,
                j.unserved,
                j.pending
            ),
        ));
        rows.push((
            "relay memory",
            format!(
                "RSS KiB first {}, settled {}, max {}, last {}; growth after settling {}{}",
                opt(self.relay_rss_kib_first),
                opt(self.relay_rss_kib_settled),
                opt(self.relay_rss_kib_max),
                opt(self.relay_rss_kib_last),
                opt(self.relay_rss_growth_kib),
                if self.relay_in_process {
                    " (in-process: the bench's own)"
                } else {
                    ""
                }
            ),
        ));
        rows.push((
            "subscribers",
            format!(
                "max {}, last {}",
                opt(self.subscribers_max),
                opt(self.subscribers_last)
            ),
        ));
        rows.push((
            "descriptors",
            format!(
                "relay {}..{}, bench {}..{} (min..max over the samples)",
                opt(self.relay_fds_min),
                opt(self.relay_fds_max),
                opt(self.bench_fds_min),
                opt(self.bench_fds_max)
            ),
        ));
    }
}
