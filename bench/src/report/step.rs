//! One step of `--find-max` (or `--find-max-http`), and the limits a
//! step must stay within to pass.

use serde::Serialize;

use super::Report;

/// Most loss a passing step may have: none.
pub const MAX_LOSS: f64 = 0.0;
/// A passing step's one-way p99 latency is under this, microseconds: a
/// viewer's budget for the relay hop (a live player buffers more than
/// that; what the relay adds beyond the fan-out itself shows beside it as
/// the serialization bound).
pub const MAX_P99_US: u64 = 50_000;

/// One step of the search. Field names are the JSON keys.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Viewers in this step.
    pub viewers: usize,
    /// HTTP readers in this step (`--find-max-http`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_viewers: Option<usize>,
    /// Whether the step was within the limits.
    pub passed: bool,
    /// Loss ratio; null when the run failed.
    pub loss_ratio: Option<f64>,
    /// One-way p99 latency, microseconds; null when nothing was measured.
    pub latency_p99_us: Option<u64>,
    /// Relay-added latency (arrival to send), p99, microseconds.
    pub relay_added_p99_us: Option<u64>,
    /// With --baseline: the serialization bound (see
    /// [`Report::serialization_bound_us`]).
    pub serialization_bound_us: Option<u64>,
    /// Datagrams per second the viewers received.
    pub delivered_pps: Option<f64>,
    /// HTTP steps: the slowest reader's share of the stream's rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_slowest_share: Option<f64>,
    /// HTTP steps: how late frames reached the readers, p99, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_latency_p99_us: Option<u64>,
    /// HTTP steps: readers that fell behind, as the load tool sees them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_behind: Option<u64>,
    /// HTTP steps: jumps the relay counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_jumps: Option<u64>,
    /// Why the run itself failed (for example, viewers could not subscribe).
    pub error: Option<String>,
}

impl Step {
    pub fn of(viewers: usize, result: &anyhow::Result<Report>) -> Self {
        match result {
            Ok(r) => {
                let p99 = r.latency_us.map(|l| l.p99);
                Self {
                    passed: r.loss_ratio <= MAX_LOSS && p99.is_some_and(|p| p < MAX_P99_US),
                    loss_ratio: Some(r.loss_ratio),
                    latency_p99_us: p99,
                    relay_added_p99_us: r.relay_added_latency_us.map(|l| l.p99),
                    serialization_bound_us: r.serialization_bound_us,
                    delivered_pps: Some(r.delivered_pps),
                    ..Self::failed(viewers, None)
                }
            }
            Err(e) => Self::failed(viewers, Some(format!("{e:#}"))),
        }
    }

    /// A step of `--find-max-http` with `readers` HTTP readers beside
    /// `viewers`: it passes when every reader kept up (see
    /// [`HttpFigures::kept_up`](super::HttpFigures::kept_up)); the UDP
    /// viewers' figures are shown, not judged.
    pub fn of_http(viewers: usize, readers: usize, result: &anyhow::Result<Report>) -> Self {
        let error = result.as_ref().err().map(|e| format!("{e:#}"));
        let mut step = Self {
            http_viewers: Some(readers),
            ..Self::failed(viewers, error)
        };
        let Ok(r) = result else {
            return step;
        };
        step.loss_ratio = (r.viewers > 0).then_some(r.loss_ratio);
        step.latency_p99_us = r.latency_us.map(|l| l.p99);
        step.delivered_pps = Some(r.delivered_pps);
        if let Some(h) = &r.http {
            step.passed = h.kept_up();
            step.http_slowest_share =
                Some(h.reader_bytes_per_s.min / h.stream_bytes_per_s.max(1e-9));
            step.http_latency_p99_us = h.latency_us.map(|l| l.p99);
            step.http_behind = Some(h.readers_behind);
            step.http_jumps = h.relay_jumps;
        }
        step
    }

    /// A step that did not pass, with nothing measured.
    fn failed(viewers: usize, error: Option<String>) -> Self {
        Self {
            viewers,
            http_viewers: None,
            passed: false,
            loss_ratio: None,
            latency_p99_us: None,
            relay_added_p99_us: None,
            serialization_bound_us: None,
            delivered_pps: None,
            http_slowest_share: None,
            http_latency_p99_us: None,
            http_behind: None,
            http_jumps: None,
            error,
        }
    }
}

/// One line about a step's outcome.
pub fn describe(step: &Step) -> String {
    let verdict = if step.passed { "pass" } else { "FAIL" };
    if let (None, Some(_), Some(share)) = (&step.error, step.http_viewers, step.http_slowest_share)
    {
        return format!(
            "{verdict}: slowest reader {:.1}% of the rate, frames late p99 {}, {} behind, {} \
             jumps",
            share * 100.0,
            step.http_latency_p99_us
                .map_or_else(|| "none".to_owned(), |p| format!("{} ms", p / 1000)),
            step.http_behind.unwrap_or(0),
            step.http_jumps
                .map_or_else(|| "unknown".to_owned(), |j| j.to_string())
        );
    }
    match (&step.error, step.loss_ratio) {
        (Some(e), _) => format!("{verdict}: {e}"),
        (None, Some(loss)) => format!(
            "{verdict}: loss {:.4}%, p99 {}{}",
            loss * 100.0,
            step.latency_p99_us
                .map_or_else(|| "none".to_owned(), |p| format!("{p} us")),
            match (step.relay_added_p99_us, step.serialization_bound_us) {
                (Some(added), Some(bound)) => {
                    format!(", relay adds p99 {added} us (serialization bound {bound} us)")
                }
                (Some(added), None) => format!(", relay adds p99 {added} us"),
                _ => String::new(),
            }
        ),
        (None, None) => verdict.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_is_a_failed_step() {
        let step = Step::of(10, &Err(anyhow::anyhow!("only 3 of 10 viewers subscribed")));
        assert!(!step.passed);
        assert!(describe(&step).contains("only 3 of 10"));
    }
}
