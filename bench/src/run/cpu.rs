//! CPU time of the relay and the load generator over the measurement,
//! from the kernel's per-thread counters.

use std::time::Duration;

use crate::sys;
use crate::target::Target;

/// CPU time so far, in clock ticks, of the relay and the load generator.
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuSample {
    relay: Option<u64>,
    /// The relay's web face thread, of `relay`.
    relay_http: Option<u64>,
    source: u64,
    viewers: u64,
    readers: u64,
}

/// CPU use over a span, percent of one core.
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuUse {
    pub(super) relay: Option<f64>,
    pub(super) relay_http: Option<f64>,
    pub(super) source: f64,
    pub(super) viewers: f64,
    pub(super) readers: f64,
}

impl CpuSample {
    pub(super) fn take(target: &Target) -> Self {
        let ticks = |prefix: &str| sys::threads_cpu_ticks("self", &[prefix]).map_or(0, |(t, _)| t);
        Self {
            relay: target.cpu_ticks(),
            relay_http: target.http_cpu_ticks(),
            source: ticks("bench-source"),
            viewers: ticks("bench-viewers"),
            readers: ticks("bench-http"),
        }
    }

    pub(super) fn since(&self, earlier: &Self, elapsed: Duration) -> CpuUse {
        let per_tick = 100.0 / sys::clock_ticks_per_sec() as f64 / elapsed.as_secs_f64().max(1e-9);
        let percent = |now: u64, then: u64| now.saturating_sub(then) as f64 * per_tick;
        let both = |now: Option<u64>, then: Option<u64>| now.zip(then).map(|(n, t)| percent(n, t));
        CpuUse {
            relay: both(self.relay, earlier.relay),
            relay_http: both(self.relay_http, earlier.relay_http),
            source: percent(self.source, earlier.source),
            viewers: percent(self.viewers, earlier.viewers),
            readers: percent(self.readers, earlier.readers),
        }
    }
}
