//! A relay whose worker panics ends, instead of running on with that
//! worker's streams dead: it logs the panic with the thread's name and
//! message and exits with status 70, so that its service manager
//! (`Restart=on-failure`) starts a fresh one.
//!
//! The panic is asked for through the test-only environment variable
//! `SHOAL_TEST_PANIC_WORKER_AFTER_MS` (nothing on the network reaches it).

mod support;

use std::time::{Duration, Instant};

use shoal_relay::server::supervise::{EXIT_WORKER_DIED, TEST_PANIC_ENV};
use support::cli::{shoal, wait};

/// The panic comes this long after worker 0 starts.
const PANIC_AFTER_MS: &str = "300";
/// The relay must be gone within this of its start: the panic, plus the
/// other worker's orderly stop, plus a loaded machine's slack.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

#[test]
fn a_panicking_worker_ends_the_relay() {
    let started = Instant::now();
    let mut cmd = shoal(&[
        "relay",
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--no-pin",
        "--metrics",
        "off",
    ]);
    cmd.env(TEST_PANIC_ENV, PANIC_AFTER_MS);
    let mut child = cmd.spawn().expect("run shoal relay");
    let (status, err) = wait(&mut child, EXIT_LIMIT, "a relay whose worker panics");
    let took = started.elapsed();
    eprintln!(
        "worker_panic: the relay exited ({status}) {} ms after its start",
        took.as_millis()
    );
    assert!(err.contains("relay listening"), "it started first:\n{err}");
    assert_eq!(
        status.code(),
        Some(i32::from(EXIT_WORKER_DIED)),
        "exit status 70:\n{err}"
    );
    // The log names the thread and the panic's message, at error level.
    let logged = err
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("worker panicked"))
        .unwrap_or_else(|| panic!("no error line for the panic:\n{err}"));
    assert!(logged.contains("shoal-worker-0"), "{logged}");
    assert!(logged.contains("the panic a test asked for"), "{logged}");
    // And the last line says what happened and why the relay stopped.
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("shoal: shoal-worker-0 panicked: ") && last.contains("restarts it"),
        "{err}"
    );
}

#[test]
fn a_malformed_test_panic_variable_is_named() {
    let mut cmd = shoal(&["relay", "--listen", "127.0.0.1:0", "--metrics", "off"]);
    cmd.env(TEST_PANIC_ENV, "soon");
    let mut child = cmd.spawn().expect("run shoal relay");
    let (status, err) = wait(&mut child, EXIT_LIMIT, "a bad test variable");
    assert!(!status.success());
    assert!(
        err.contains(TEST_PANIC_ENV) && err.contains("unset it"),
        "{err}"
    );
}
