//! One step of `--find-max`, and the limits a step must stay within to
//! pass.

use serde::Serialize;

use super::Report;

/// Most loss a passing step may have: 0.1 %.
pub const MAX_LOSS: f64 = 0.001;
/// Highest one-way p99 latency a passing step may have, microseconds.
pub const MAX_P99_US: u64 = 5_000;

/// One step of the search. Field names are the JSON keys.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Viewers in this step.
    pub viewers: usize,
    /// Whether the step was within the limits.
    pub passed: bool,
    /// Loss ratio; null when the run failed.
    pub loss_ratio: Option<f64>,
    /// One-way p99 latency, microseconds; null when nothing was measured.
    pub latency_p99_us: Option<u64>,
    /// Datagrams per second the viewers received.
    pub delivered_pps: Option<f64>,
    /// Why the run itself failed (for example, viewers could not subscribe).
    pub error: Option<String>,
}

impl Step {
    pub fn of(viewers: usize, result: &anyhow::Result<Report>) -> Self {
        match result {
            Ok(r) => {
                let p99 = r.latency_us.map(|l| l.p99);
                Self {
                    viewers,
                    passed: r.loss_ratio <= MAX_LOSS && p99.is_some_and(|p| p <= MAX_P99_US),
                    loss_ratio: Some(r.loss_ratio),
                    latency_p99_us: p99,
                    delivered_pps: Some(r.delivered_pps),
                    error: None,
                }
            }
            Err(e) => Self {
                viewers,
                passed: false,
                loss_ratio: None,
                latency_p99_us: None,
                delivered_pps: None,
                error: Some(format!("{e:#}")),
            },
        }
    }
}

/// One line about a step's outcome.
pub fn describe(step: &Step) -> String {
    let verdict = if step.passed { "pass" } else { "FAIL" };
    match (&step.error, step.loss_ratio) {
        (Some(e), _) => format!("{verdict}: {e}"),
        (None, Some(loss)) => format!(
            "{verdict}: loss {:.4}%, p99 {}",
            loss * 100.0,
            step.latency_p99_us
                .map_or_else(|| "none".to_owned(), |p| format!("{p} us"))
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
