//! CI smoke test: the built `shoal-bench` binary runs a short, small load
//! against its in-process relay, exits 0, and writes a JSON report with
//! the promised keys and no loss.

mod common;

use std::time::Duration;

use common::{num, run_bench};

/// The run takes about 5 s; anything past this is a hang.
const LIMIT: Duration = Duration::from_secs(60);

const VIEWERS: u64 = 200;

#[test]
fn a_short_run_delivers_everything() {
    let viewers = VIEWERS.to_string();
    let (report, stdout) = run_bench(
        &[
            "--viewers",
            &viewers,
            "--bitrate",
            "3Mbit",
            "--duration",
            "3s",
            "--warmup",
            "1s",
        ],
        LIMIT,
    );
    let text = report.to_string();
    for key in [
        "viewers",
        "bitrate_bps",
        "duration_s",
        "backend",
        "chunks_expected",
        "chunks_delivered",
        "loss_ratio",
        "delivered_pps",
        "delivered_gbps",
        "relay_cpu_percent",
        "latency_us",
    ] {
        assert!(report.get(key).is_some(), "no {key:?} in {text}");
    }
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(
            report["latency_us"].get(key).is_some_and(|v| v.is_u64()),
            "no latency_us.{key} in {text}"
        );
    }
    assert_eq!(report["viewers"].as_u64(), Some(VIEWERS), "{text}");
    let expected = report["chunks_expected"].as_u64().expect("a count");
    let delivered = report["chunks_delivered"].as_u64().expect("a count");
    assert!(
        num(&report, &["chunks_expected"]) > 0.0,
        "nothing was expected: {text}"
    );
    assert_eq!(delivered, expected, "chunks were lost:\n{stdout}");
    assert_eq!(report["loss_ratio"].as_f64(), Some(0.0), "{text}");
}
