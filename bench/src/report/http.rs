//! The HTTP readers' figures (`--http-viewers`): what they received
//! against the stream's rate, how late, which fell behind, and what they
//! cost the relay's web face thread.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Latency;
use crate::http::{LATE_AFTER, MIN_RATE_SHARE, ReadersReport};

/// Field names are the JSON keys.
#[derive(Debug, Clone, Serialize)]
pub struct HttpFigures {
    /// Readers opened (`--http-viewers`).
    pub readers: usize,
    /// Readers whose stream began.
    pub started: usize,
    /// Readers answered with another status than 200, by status.
    pub refused: BTreeMap<u16, u64>,
    /// Readers that stopped (not refused) before the measurement ended.
    pub ended_early: u64,
    /// Why the first of them stopped.
    pub ended_why: Option<String>,
    /// The stream's rate: --bitrate in bytes per second.
    pub stream_bytes_per_s: f64,
    /// Stream bytes (MPEG-TS, chunked framing off) per reader per second
    /// over the measurement: the slowest reader, the median, the fastest.
    pub reader_bytes_per_s: Spread,
    /// How late frames reached the readers, from the source's stamp to
    /// the reader's read, microseconds.
    pub latency_us: Option<Latency>,
    /// Readers that fell behind as the load tool sees them: no stream,
    /// stopped early, less than 95% of the stream's rate, or a frame more
    /// than 500 ms late.
    pub readers_behind: u64,
    /// Jumps the relay counted of readers that fell so far behind (1024
    /// chunks) that they skipped to a newer keyframe, over the run; null
    /// when its web face could not be asked.
    pub relay_jumps: Option<u64>,
    /// CPU time of the relay's web face thread, percent of one core; null
    /// when unknown (an external relay without --relay-pid).
    pub relay_http_cpu_percent: Option<f64>,
    /// That per reader.
    pub relay_cpu_per_reader_percent: Option<f64>,
    /// The load tool's reader thread, percent of one core.
    pub readers_cpu_percent: f64,
}

/// Slowest, median and fastest.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    pub min: f64,
    pub p50: f64,
    pub max: f64,
}

impl HttpFigures {
    /// The figures of a run that measured for `secs` at `bitrate_bps`.
    pub fn new(
        report: &ReadersReport,
        secs: f64,
        bitrate_bps: u64,
        relay_jumps: Option<u64>,
        relay_http_cpu_percent: Option<f64>,
        readers_cpu_percent: f64,
    ) -> Self {
        let stream_bytes_per_s = bitrate_bps as f64 / 8.0;
        let mut refused = BTreeMap::new();
        let mut ended_early = 0;
        let mut ended_why = None;
        let mut readers_behind = 0;
        let mut rates = Vec::with_capacity(report.readers.len());
        let late_ns = u64::try_from(LATE_AFTER.as_nanos()).unwrap_or(u64::MAX);
        for r in &report.readers {
            if let Some(status) = r.status.filter(|&s| s != 200) {
                *refused.entry(status).or_insert(0) += 1;
                continue;
            }
            let rate = r.measured_bytes as f64 / secs.max(1e-9);
            rates.push(rate);
            if let Some(why) = &r.ended {
                ended_early += 1;
                ended_why.get_or_insert_with(|| why.clone());
            }
            let behind = !r.started
                || r.ended.is_some()
                || rate < MIN_RATE_SHARE * stream_bytes_per_s
                || r.latest_ns.is_some_and(|ns| ns > late_ns);
            readers_behind += u64::from(behind);
        }
        rates.sort_by(f64::total_cmp);
        let reader_bytes_per_s = match (rates.first(), rates.last()) {
            (Some(&min), Some(&max)) => Spread {
                min,
                p50: rates[rates.len() / 2],
                max,
            },
            _ => Spread::default(),
        };
        let readers = report.readers.len();
        Self {
            readers,
            started: report.readers.iter().filter(|r| r.started).count(),
            refused,
            ended_early,
            ended_why,
            stream_bytes_per_s,
            reader_bytes_per_s,
            latency_us: Latency::of(&report.latency_us),
            readers_behind,
            relay_jumps,
            relay_http_cpu_percent,
            relay_cpu_per_reader_percent: relay_http_cpu_percent
                .filter(|_| readers > 0)
                .map(|p| p / readers as f64),
            readers_cpu_percent,
        }
    }

    /// Whether every reader got the stream all along: none refused, none
    /// behind, no jump counted by the relay.
    pub fn kept_up(&self) -> bool {
        self.refused.is_empty()
            && self.started == self.readers
            && self.readers_behind == 0
            && self.relay_jumps == Some(0)
    }

    /// The table's rows.
    pub fn rows(&self, rows: &mut Vec<(&str, String)>) {
        let share = |v: f64| v / self.stream_bytes_per_s.max(1e-9) * 100.0;
        let s = self.reader_bytes_per_s;
        rows.push((
            "http readers",
            format!(
                "{} opened, {} streaming, {} refused, {} ended early{}",
                self.readers,
                self.started,
                self.refused.values().sum::<u64>(),
                self.ended_early,
                self.ended_why
                    .as_ref()
                    .map_or_else(String::new, |w| format!(" (first: {w})"))
            ),
        ));
        rows.push((
            "http bytes/s",
            format!(
                "per reader: slowest {:.1}%, median {:.1}%, fastest {:.1}% of the stream's {} B/s",
                share(s.min),
                share(s.p50),
                share(s.max),
                crate::text::count(self.stream_bytes_per_s)
            ),
        ));
        rows.push((
            "http late ms",
            match self.latency_us {
                Some(l) => format!(
                    "p50 {:.0}  p99 {:.0}  max {:.0}  (the source's frame to the reader's read)",
                    l.p50 as f64 / 1e3,
                    l.p99 as f64 / 1e3,
                    l.max as f64 / 1e3
                ),
                None => "no frame measured".to_owned(),
            },
        ));
        rows.push((
            "http behind",
            format!(
                "{} readers (load tool: < {:.0}% of the rate or a frame > {} ms late); \
                 relay counted {} jumps",
                self.readers_behind,
                MIN_RATE_SHARE * 100.0,
                LATE_AFTER.as_millis(),
                self.relay_jumps
                    .map_or_else(|| "unknown".to_owned(), |j| j.to_string())
            ),
        ));
        rows.push((
            "http CPU",
            format!(
                "relay's web face thread {}; load tool's readers {:.1}%",
                match (
                    self.relay_http_cpu_percent,
                    self.relay_cpu_per_reader_percent
                ) {
                    (Some(all), Some(each)) => format!("{all:.1}% ({each:.3}% per reader)"),
                    _ => "unknown".to_owned(),
                },
                self.readers_cpu_percent
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ReaderResult;
    use crate::report::{Step, describe};
    use crate::viewers::latency_histogram;

    /// A reader answered 200 that got `bytes` in a second, its latest
    /// frame `late_ms` late.
    fn reader(bytes: u64, late_ms: u64) -> ReaderResult {
        ReaderResult {
            status: Some(200),
            started: true,
            measured_bytes: bytes,
            latest_ns: Some(late_ms * 1_000_000),
            ended: None,
        }
    }

    /// The figures of one second at 3 Mbit/s.
    fn figures(readers: Vec<ReaderResult>, jumps: Option<u64>) -> HttpFigures {
        let report = ReadersReport {
            readers,
            latency_us: latency_histogram(),
        };
        HttpFigures::new(&report, 1.0, 3_000_000, jumps, Some(30.0), 5.0)
    }

    #[test]
    fn a_reader_is_behind_when_short_late_or_cut_off() {
        let full = 375_000;
        let ok = figures(vec![reader(full, 30), reader(full - 100, 40)], Some(0));
        assert!(ok.kept_up());
        assert_eq!(ok.relay_cpu_per_reader_percent, Some(15.0));
        assert_eq!(ok.reader_bytes_per_s.min, (full - 100) as f64);

        let short = figures(vec![reader(full, 30), reader(full * 9 / 10, 30)], Some(0));
        assert_eq!(short.readers_behind, 1);
        let late = figures(vec![reader(full, 30), reader(full, 600)], Some(0));
        assert_eq!(late.readers_behind, 1);
        let cut = ReaderResult {
            ended: Some("read: reset".into()),
            ..reader(full, 30)
        };
        let cut = figures(vec![cut], Some(0));
        assert_eq!((cut.readers_behind, cut.ended_early), (1, 1));
        for f in [short, late, cut] {
            assert!(!f.kept_up());
        }

        assert!(
            !figures(vec![reader(full, 30)], Some(1)).kept_up(),
            "a jump"
        );
        assert!(!figures(vec![reader(full, 30)], None).kept_up(), "unknown");
        let refused = ReaderResult {
            status: Some(503),
            started: false,
            ..ReaderResult::default()
        };
        let refused = figures(vec![reader(full, 30), refused], Some(0));
        assert_eq!(refused.refused.get(&503), Some(&1));
        assert_eq!(refused.readers_behind, 0);
        assert!(!refused.kept_up());
    }

    #[test]
    fn an_http_step_is_judged_on_its_readers() {
        let mut report = crate::report::tests::sample();
        report.http = Some(figures(vec![reader(375_000, 30)], Some(0)));
        let step = Step::of_http(0, 1, &Ok(report.clone()));
        assert!(step.passed);
        assert_eq!(step.http_viewers, Some(1));
        assert!(describe(&step).starts_with("pass: slowest reader 100.0%"));
        report.http = Some(figures(vec![reader(375_000, 900)], Some(0)));
        let step = Step::of_http(0, 1, &Ok(report));
        assert!(!step.passed);
        assert!(describe(&step).contains("1 behind"), "{}", describe(&step));
    }
}
