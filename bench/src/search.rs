//! `--find-max`: the most viewers the relay serves at one bitrate within
//! the limits a [`Step`] is judged by (no loss, a one-way p99 under 50 ms).
//! The viewer count doubles from `--viewers` until a step fails, then a
//! few bisections narrow the gap between the last pass and the first
//! failure. Each step is a whole run of `--warmup` plus `--duration`.
//!
//! `--find-max-http` searches the same way over `--http-viewers`, a step
//! passing when every HTTP reader kept up ([`Step::of_http`]).

use crate::cli::{Args, MAX_HTTP_VIEWERS, MAX_VIEWERS};
use crate::report::{self, Report, Step};
use crate::run;

/// Bisection steps after the first failure.
const BISECTIONS: u32 = 4;

/// Runs the search and returns the report of the largest passing step
/// (or, if none passed, of the first step), with `max_viewers` and
/// `steps` filled in.
pub fn run(args: &Args) -> anyhow::Result<Report> {
    let http = args.find_max_http;
    let (start, ceiling, noun) = if http {
        (args.http_viewers, MAX_HTTP_VIEWERS, "HTTP readers")
    } else {
        (args.viewers, MAX_VIEWERS, "viewers")
    };
    let mut steps = Vec::new();
    let mut best: Option<(usize, Report)> = None;
    let mut first: Option<anyhow::Result<Report>> = None;
    let max = find_max(start, ceiling, BISECTIONS, |n| {
        let step_args = if http {
            Args {
                http_viewers: n,
                ..args.clone()
            }
        } else {
            Args {
                viewers: n,
                ..args.clone()
            }
        };
        eprintln!("shoal-bench: find-max: {n} {noun}");
        let result = run::run(&step_args);
        let step = if http {
            Step::of_http(args.viewers, n, &result)
        } else {
            Step::of(n, &result)
        };
        eprintln!(
            "shoal-bench: find-max: {n} {noun} {}",
            report::describe(&step)
        );
        let passed = step.passed;
        steps.push(step);
        if passed {
            if let Ok(r) = result
                && best.as_ref().is_none_or(|(b, _)| *b < n)
            {
                best = Some((n, r));
            }
        } else if first.is_none() && best.is_none() {
            first = Some(result);
        }
        passed
    });
    let mut report = match (best, first) {
        (Some((_, r)), _) => r,
        (None, Some(result)) => result?,
        (None, None) => anyhow::bail!("--find-max: no step ran"),
    };
    if http {
        report.max_http_viewers = Some(max.unwrap_or(0));
    } else {
        report.max_viewers = Some(max.unwrap_or(0));
    }
    report.steps = Some(steps);
    Ok(report)
}

/// The largest viewer count for which `passes` holds, searched by
/// doubling from `start` (at most `ceiling`) until the first failure,
/// then `bisections` halvings of the gap. `None` if no count passed.
/// Assumes that more viewers never make a step easier.
pub fn find_max(
    start: usize,
    ceiling: usize,
    bisections: u32,
    mut passes: impl FnMut(usize) -> bool,
) -> Option<usize> {
    let ceiling = ceiling.max(1);
    let mut n = start.clamp(1, ceiling);
    let mut pass = 0;
    let fail = loop {
        if !passes(n) {
            break n;
        }
        pass = n;
        if n == ceiling {
            return Some(n);
        }
        n = n.saturating_mul(2).min(ceiling);
    };
    let mut fail = fail;
    for _ in 0..bisections {
        let mid = pass + (fail - pass) / 2;
        if mid == pass {
            break;
        }
        if passes(mid) {
            pass = mid;
        } else {
            fail = mid;
        }
    }
    (pass > 0).then_some(pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a relay that serves up to `limit` viewers,
    /// returning the result and the counts tried.
    fn search(start: usize, ceiling: usize, limit: usize) -> (Option<usize>, Vec<usize>) {
        let mut tried = Vec::new();
        let max = find_max(start, ceiling, BISECTIONS, |n| {
            tried.push(n);
            n <= limit
        });
        (max, tried)
    }

    #[test]
    fn doubles_then_bisects() {
        let (max, tried) = search(100, MAX_VIEWERS, 1000);
        assert_eq!(tried, [100, 200, 400, 800, 1600, 1200, 1000, 1100, 1050]);
        assert_eq!(max, Some(1000));
    }

    #[test]
    fn stops_at_the_ceiling() {
        let (max, tried) = search(100, 300, usize::MAX);
        assert_eq!(tried, [100, 200, 300]);
        assert_eq!(max, Some(300));
    }

    #[test]
    fn bisects_below_a_failing_start() {
        let (max, tried) = search(100, MAX_VIEWERS, 30);
        assert_eq!(tried, [100, 50, 25, 37, 31]);
        assert_eq!(max, Some(25));
    }

    #[test]
    fn none_when_nothing_passes() {
        let (max, tried) = search(1, MAX_VIEWERS, 0);
        assert_eq!(tried, [1]);
        assert_eq!(max, None);
    }

    #[test]
    fn exact_when_the_gap_closes() {
        let (max, tried) = search(4, MAX_VIEWERS, 5);
        assert_eq!(tried, [4, 8, 6, 5]);
        assert_eq!(max, Some(5));
    }
}
