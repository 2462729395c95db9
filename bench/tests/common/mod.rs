//! What the scenario tests share: running the built `shoal-bench` with a
//! deadline and reading its JSON report.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `shoal-bench ARGS --json FILE`, killing it after `limit`, and
/// returns its report and its table (stdout).
pub fn run_bench(args: &[&str], limit: Duration) -> (serde_json::Value, String) {
    let json = temp_path(&format!(
        "{}.json",
        args.join("_").replace(['/', ' ', ':'], "-")
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal-bench"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shoal-bench starts");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for shoal-bench") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("shoal-bench {args:?} ran longer than {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().expect("shoal-bench output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "shoal-bench {args:?} failed ({status}):\n{stdout}\n{stderr}"
    );
    let text = std::fs::read_to_string(&json).expect("the --json file is written");
    let _ = std::fs::remove_file(&json);
    let report = serde_json::from_str(&text).expect("the report is JSON");
    (report, stdout)
}

/// A file name in the temp directory that no other run of these tests
/// uses.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("shoal-bench-{}-{name}", std::process::id()))
}

/// `report[path...]` as a number (0 when absent or null).
pub fn num(report: &serde_json::Value, path: &[&str]) -> f64 {
    let mut v = report;
    for key in path {
        v = &v[*key];
    }
    v.as_f64().unwrap_or(0.0)
}
