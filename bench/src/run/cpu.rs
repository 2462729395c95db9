//! CPU time of the relay and the load generator over the measurement,
//! from the kernel's per-thread counters.

use std::time::Duration;

use crate::sys;
use crate::target::Target;

/// CPU time so far, in clock ticks, of the relay and the load generator.
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuSample {
    relay: Option<u64>,
    source: u64,
    viewers: u64,
}

/// CPU use over a span, percent of one core.
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuUse {
    pub(super) relay: Option<f64>,
    pub(super) source: f64,
    pub(super) viewers: f64,
}

impl CpuSample {
    pub(super) fn take(target: &Target) -> Self {
        let ticks = |prefix: &str| sys::threads_cpu_ticks(&[prefix]).map_or(0, |(t, _)| t);
        Self {
            relay: target.cpu_ticks(),
            source: ticks("bench-source"),
            viewers: ticks("bench-viewers"),
        }
    }

    pub(super) fn since(&self, earlier: &Self, elapsed: Duration) -> CpuUse {
        let per_tick = 100.0 / sys::clock_ticks_per_sec() as f64 / elapsed.as_secs_f64().max(1e-9);
        let percent = |now: u64, then: u64| now.saturating_sub(then) as f64 * per_tick;
        CpuUse {
            relay: self
                .relay
                .zip(earlier.relay)
                .map(|(now, then)| percent(now, then)),
            source: percent(self.source, earlier.source),
            viewers: percent(self.viewers, earlier.viewers),
        }
    }
}
