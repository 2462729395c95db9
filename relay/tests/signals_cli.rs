//! Ctrl-C on `shoal watch` and `shoal peer`: the command tells its relay
//! (LEAVE), so the relay stops sending at once instead of at the
//! subscription's timeout, and exits 0.

mod support;

use std::time::{Duration, Instant};

use shoal_relay::io::BackendKind;
use support::cli::*;
use support::*;

fn interrupted_command_leaves_its_relay(role: &str) {
    let server = start(&settings(BackendKind::Auto, 1));
    let addr = server.local_addr().to_string();
    let id = stream_id(31);
    // The relay holds the subscription to a stream not yet live, so the
    // command waits subscribed; --wait 0 waits for ever.
    let mut child = shoal(&[role, "--stream", &id, "--relay", &addr, "--wait", "0"])
        .spawn()
        .unwrap_or_else(|e| panic!("run shoal {role}: {e}"));
    metrics_until(&server, "subscribed", |m| sum(m, |w| w.subscribers) == 1);

    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let t0 = Instant::now();
    let (status, err) = wait(&mut child, Duration::from_secs(5), role);
    assert!(
        status.success(),
        "shoal {role} exits 0 on SIGINT: {status} {err}"
    );
    assert!(err.contains("shoal: stopped"), "{err}");
    metrics_until(&server, "the LEAVE arrived", |m| {
        sum(m, |w| w.subscribers) == 0
    });
    // Far sooner than the 5 s subscriber timeout.
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    server.shutdown();
}

#[test]
fn watch_leaves_on_sigint() {
    interrupted_command_leaves_its_relay("watch");
}

#[test]
fn peer_leaves_on_sigint() {
    interrupted_command_leaves_its_relay("peer");
}
