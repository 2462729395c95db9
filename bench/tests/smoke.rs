//! CI smoke test: the built `shoal-bench` binary runs a short, small load
//! against its in-process relay, exits 0, and writes a JSON report with
//! the promised keys and no loss.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The run takes about 5 s; anything past this is a hang.
const LIMIT: Duration = Duration::from_secs(60);

const VIEWERS: u64 = 200;

#[test]
fn a_short_run_delivers_everything() {
    let json = temp_path("smoke.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal-bench"))
        .args(["--viewers", &VIEWERS.to_string()])
        .args(["--bitrate", "3Mbit", "--duration", "3s", "--warmup", "1s"])
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shoal-bench starts");

    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for shoal-bench") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("shoal-bench ran longer than {LIMIT:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().expect("shoal-bench output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "shoal-bench failed ({status}):\n{stdout}\n{stderr}"
    );

    let text = std::fs::read_to_string(&json).expect("the --json file is written");
    let _ = std::fs::remove_file(&json);
    let report: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");

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
    assert!(expected > 0, "nothing was expected: {text}");
    assert_eq!(delivered, expected, "chunks were lost:\n{stdout}");
    assert_eq!(report["loss_ratio"].as_f64(), Some(0.0), "{text}");
}

/// A file name in the temp directory that no other run of this test uses.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("shoal-bench-{}-{name}", std::process::id()))
}
