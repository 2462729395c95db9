//! `shoal peer` as a user runs it: bad flags and unreachable relays get one
//! line naming the problem and the fix; a stream published through a real
//! relay comes out byte for byte and the command exits 0 at its end.

mod support;

use std::io::Read;
use std::net::UdpSocket;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use shoal_relay::io::BackendKind;
use support::cli::*;
use support::*;

/// A valid stream id that no relay here carries.
const SOME_STREAM: u8 = 43;

/// `shoal peer` with a valid stream and relay, plus `extra`.
fn peer_with(extra: &[&str]) -> (ExitStatus, String, Duration) {
    client_with("peer", &stream_id(SOME_STREAM), extra)
}

#[test]
fn bad_stream_is_named() {
    assert_bad_stream_named("peer");
}

#[test]
fn bad_relay_is_named() {
    assert_bad_relay_named("peer", &stream_id(SOME_STREAM));
}

#[test]
fn bad_upload_limit_is_named_with_the_fix() {
    for limit in ["lots", "8MB", "10", ""] {
        let (status, err, _) = peer_with(&["--upload-limit", limit]);
        assert!(!status.success(), "{limit:?} must fail");
        assert_one_line(&err, &format!("--upload-limit {limit:?}"));
        assert!(
            err.contains("such as 3Mbit, 500kbit") && err.contains("or 0 to upload nothing"),
            "the fix is given: {err}"
        );
    }
}

#[test]
fn bad_listen_is_named_with_the_fix() {
    for listen in ["anywhere", "7500", "[::]:7500", "127.0.0.1:99999"] {
        let (status, err, _) = peer_with(&["--listen", listen]);
        assert!(!status.success(), "{listen:?} must fail");
        assert_one_line(&err, &format!("--listen {listen:?}"));
        assert!(err.contains("0.0.0.0:7500"), "the fix is given: {err}");
    }
}

#[test]
fn a_listen_address_in_use_is_named() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (status, err, _) = peer_with(&["--listen", &addr]);
    assert!(!status.success());
    assert_one_line(
        &err,
        &format!("--listen {addr}: cannot open a UDP socket there"),
    );
    assert!(err.contains("or port 0"), "the fix is given: {err}");
    drop(taken);
}

#[test]
fn bad_latency_and_wait_are_named() {
    let (status, err, _) = peer_with(&["--latency", "fast"]);
    assert!(!status.success());
    assert_one_line(&err, "--latency \"fast\"");
    let (status, err, _) = peer_with(&["--wait", "forever"]);
    assert!(!status.success());
    assert_one_line(&err, "--wait \"forever\"");
}

#[test]
fn silent_relay_is_an_error_within_six_seconds() {
    assert_silent_relay_gives_up("peer", &stream_id(SOME_STREAM));
}

#[test]
fn a_stream_nobody_publishes_is_an_error_after_the_wait() {
    assert_unpublished_stream_gives_up("peer", &stream_id(SOME_STREAM));
}

/// A short stream published through a real relay to a `shoal peer` that
/// writes it to stdout: byte for byte, exit 0 at the end, and the status
/// line (not --quiet) tells the subscription and the end.
#[test]
fn published_stream_comes_out_byte_for_byte_and_the_peer_exits_0() {
    let server = start(&settings(BackendKind::Auto, 1));
    let addr = server.local_addr().to_string();
    let mut source = Source::new(vec![server.local_addr()], 14);
    let id = source.stream.to_string();
    let mut cmd = shoal(&[
        "peer",
        "--stream",
        &id,
        "--relay",
        &addr,
        "--listen",
        "127.0.0.1:0",
        "--upload-limit",
        "4Mbit",
    ]);
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("run shoal peer");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).expect("read stdout");
        bytes
    });
    let (status, err) = publish_to(&server, &mut source, &mut child, "the peer");
    let got = reader.join().expect("stdout reader");
    server.shutdown();
    assert!(status.success(), "exit 0 at end of stream: {status} {err}");
    assert!(
        err.contains(&format!("shoal: subscribed to {id} at relay {addr}")),
        "{err}"
    );
    assert!(err.contains("shoal: end of stream"), "{err}");
    let expected = source.bytes();
    assert_eq!(got.len(), expected.len(), "all bytes came out");
    assert!(
        got == expected,
        "the bytes are the published ones, in order"
    );
}
