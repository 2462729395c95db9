//! Running the `shoal` binary as a user does, for the CLI tests.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `shoal ARGS` with no stdin, stdout discarded and stderr captured.
pub fn shoal(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Waits (bounded) for `child` to exit; kills it and fails if it does not.
pub fn wait(child: &mut Child, limit: Duration, what: &str) -> (ExitStatus, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: shoal did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut err).expect("stderr");
    }
    (status, err)
}

/// Runs `shoal ARGS` to its exit (within `limit`): status, stderr, time.
pub fn run(args: &[&str], limit: Duration) -> (ExitStatus, String, Duration) {
    let t0 = Instant::now();
    let mut child = shoal(args).spawn().expect("run shoal");
    let (status, err) = wait(&mut child, limit, &format!("{args:?}"));
    (status, err, t0.elapsed())
}

/// The printable id of the stream keyed by `[seed; 32]`.
pub fn stream_id(seed: u8) -> String {
    shoal_proto::integrity::PublisherKey::from_seed([seed; 32])
        .stream_id()
        .to_string()
}

/// `err` is one line that contains `needle`, and no panic.
pub fn assert_one_line(err: &str, needle: &str) {
    assert!(err.contains(needle), "the error names {needle}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines = err.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(lines, 1, "one line: {err}");
}
