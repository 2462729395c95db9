//! HTTP readers beside UDP viewers: the built `shoal-bench` opens 20
//! readers of the in-process relay's `/streams/<ID>.ts` and 10 UDP
//! viewers; every reader gets the whole stream's rate, none falls behind
//! (as the load tool sees it and as the relay counts), nothing is lost to
//! the viewers, and the relay's web face thread's CPU is reported.

mod common;

use std::time::Duration;

use common::{num, run_bench};

/// The run takes about 6 s; anything past this is a hang.
const LIMIT: Duration = Duration::from_secs(60);

const READERS: u64 = 20;

#[test]
fn every_http_reader_gets_the_stream_and_none_falls_behind() {
    let readers = READERS.to_string();
    let (report, stdout) = run_bench(
        &[
            "--http-viewers",
            &readers,
            "--viewers",
            "10",
            "--bitrate",
            "3Mbit",
            "--duration",
            "2s",
            "--warmup",
            "1s",
        ],
        LIMIT,
    );
    let http = &report["http"];
    assert_eq!(http["readers"].as_u64(), Some(READERS), "{stdout}");
    assert_eq!(http["started"].as_u64(), Some(READERS), "{stdout}");
    assert_eq!(http["ended_early"].as_u64(), Some(0), "{stdout}");
    assert!(
        http["refused"].as_object().is_some_and(|r| r.is_empty()),
        "{stdout}"
    );
    let stream = num(http, &["stream_bytes_per_s"]);
    assert_eq!(stream, 375_000.0, "3 Mbit/s is 375 000 B/s");
    // Two seconds of a 30 fps stream: a frame either way is 1.7%.
    let slowest = num(http, &["reader_bytes_per_s", "min"]);
    let fastest = num(http, &["reader_bytes_per_s", "max"]);
    assert!(
        slowest >= 0.95 * stream && fastest <= 1.05 * stream,
        "readers got {slowest}..{fastest} B/s of {stream}:\n{stdout}"
    );
    assert_eq!(http["readers_behind"].as_u64(), Some(0), "{stdout}");
    assert_eq!(http["relay_jumps"].as_u64(), Some(0), "{stdout}");
    assert!(
        http["latency_us"]["p99"].as_u64().is_some(),
        "no frame was timed:\n{stdout}"
    );
    assert!(
        http["relay_http_cpu_percent"]
            .as_f64()
            .is_some_and(|p| p > 0.0)
            && http["relay_cpu_per_reader_percent"].as_f64().is_some(),
        "the web face thread's CPU is unknown:\n{stdout}"
    );
    assert_eq!(report["loss_ratio"].as_f64(), Some(0.0), "{stdout}");
    assert!(report["relay_cpu_per_viewer_percent"].as_f64().is_some());
}
