//! `shoal watch` as a user runs it: bad flags and unreachable or wrong
//! relays get one line naming the problem and the fix; a stream published
//! through a real relay comes out byte for byte and the command exits 0 at
//! its end.

mod support;

use std::io::Read;
use std::net::UdpSocket;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shoal_proto::wire::{Challenge, Cookie, Message, Reject, RejectReason, SUPPORTED_VERSIONS};
use shoal_relay::io::BackendKind;
use support::cli::*;
use support::*;

/// A valid stream id that no relay here carries.
const SOME_STREAM: u8 = 42;

#[test]
fn bad_stream_is_named() {
    assert_bad_stream_named("watch");
}

#[test]
fn bad_relay_is_named() {
    assert_bad_relay_named("watch", &stream_id(SOME_STREAM));
}

#[test]
fn bad_latency_is_named() {
    let (status, err, _) = client_with("watch", &stream_id(SOME_STREAM), &["--latency", "fast"]);
    assert!(!status.success());
    assert_one_line(&err, "--latency \"fast\"");
}

#[test]
fn silent_relay_is_an_error_within_six_seconds() {
    assert_silent_relay_gives_up("watch", &stream_id(SOME_STREAM));
}

/// A relay that does not carry the stream: it answers the handshake and
/// refuses every SUBSCRIBE with UNKNOWN_STREAM. (A shoal relay that takes
/// publishers instead holds the subscription until the stream starts.)
fn refusing_relay(socket: UdpSocket, stop: Arc<AtomicBool>) {
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    let send = |msg: &Message<'_>, to| {
        let mut out = vec![0; msg.buffer_len()];
        let n = msg.emit(&mut out).expect("emit");
        socket.send_to(&out[..n], to).expect("send");
    };
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        match Message::parse(&buf[..n]) {
            Ok(Message::Hello(h)) => send(
                &Message::Challenge(Challenge {
                    nonce: h.nonce,
                    cookie: Cookie {
                        issued_at_us: 1,
                        tag: [7; 16],
                    },
                }),
                from,
            ),
            Ok(Message::Subscribe(s)) => send(
                &Message::Reject(Reject {
                    reason: RejectReason::UnknownStream,
                    versions: SUPPORTED_VERSIONS,
                    stream: s.stream,
                }),
                from,
            ),
            _ => {}
        }
    }
}

#[test]
fn unknown_stream_is_an_error() {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr").to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let relay = std::thread::spawn({
        let stop = stop.clone();
        move || refusing_relay(socket, stop)
    });
    let id = stream_id(SOME_STREAM);
    let ran = run(
        &["watch", "--stream", &id, "--relay", &addr, "--quiet"],
        Duration::from_secs(10),
    );
    stop.store(true, Ordering::Relaxed);
    relay.join().expect("fake relay");
    assert_gave_up(
        ran,
        &format!("relay {addr} does not carry stream {id}"),
        Duration::from_secs(8),
    );
}

#[test]
fn a_stream_nobody_publishes_is_an_error_after_the_wait() {
    assert_unpublished_stream_gives_up("watch", &stream_id(SOME_STREAM));
}

/// Where the end-to-end tests send the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    File,
    Stdout,
    /// Stdout, its reader gone before the stream starts.
    ClosedStdout,
    Udp,
}

/// Watches a short stream published through a real relay into `out`;
/// checks the exit and returns the bytes that came out and, for UDP, the
/// datagram sizes.
fn watch_published(out: Out, seed: u8) -> (Vec<u8>, Vec<usize>, Vec<u8>) {
    let server = start(&settings(BackendKind::Auto, 1));
    let addr = server.local_addr().to_string();
    // The relay holds a subscription to a stream not yet live, so the
    // viewer subscribes first and gets it from its first chunk.
    let mut source = Source::new(vec![server.local_addr()], seed);

    let dir = std::env::temp_dir().join(format!("shoal-watch-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("out.ts");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let target = match out {
        Out::File => path.to_str().expect("utf8").to_owned(),
        Out::Stdout | Out::ClosedStdout => "-".to_owned(),
        Out::Udp => format!("udp://{}", udp.local_addr().expect("addr")),
    };
    let id = source.stream.to_string();
    let mut cmd = shoal(&[
        "watch", "--stream", &id, "--relay", &addr, "--output", &target, "--quiet",
    ]);
    if matches!(out, Out::Stdout | Out::ClosedStdout) {
        cmd.stdout(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("run shoal watch");
    if out == Out::ClosedStdout {
        drop(child.stdout.take());
    }
    let stdout = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            s.read_to_end(&mut bytes).expect("read stdout");
            bytes
        })
    });
    let stop = Arc::new(AtomicBool::new(false));
    let datagrams = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match udp.recv(&mut buf) {
                    Ok(n) => got.push(buf[..n].to_vec()),
                    Err(_) if stop.load(Ordering::Relaxed) => return got,
                    Err(_) => {}
                }
            }
        }
    });

    let (status, err) = publish_to(&server, &mut source, &mut child, "the viewer");
    assert!(status.success(), "exit 0 at end of stream: {status} {err}");
    assert!(err.is_empty(), "--quiet is quiet: {err}");
    stop.store(true, Ordering::Relaxed);
    let datagrams = datagrams.join().expect("udp reader");

    let expected = source.bytes();
    let got = match out {
        Out::File => std::fs::read(&path).expect("output file"),
        Out::Stdout => stdout.expect("piped").join().expect("stdout reader"),
        Out::ClosedStdout => Vec::new(),
        Out::Udp => datagrams.concat(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown();
    (got, datagrams.iter().map(Vec::len).collect(), expected)
}

fn assert_same(got: &[u8], expected: &[u8]) {
    assert_eq!(got.len(), expected.len(), "all bytes came out");
    assert!(
        got == expected,
        "the bytes are the published ones, in order"
    );
}

#[test]
fn published_stream_comes_out_byte_for_byte_to_a_file() {
    let (got, _, expected) = watch_published(Out::File, 9);
    assert_same(&got, &expected);
}

#[test]
fn published_stream_comes_out_byte_for_byte_on_stdout() {
    let (got, _, expected) = watch_published(Out::Stdout, 10);
    assert_same(&got, &expected);
}

#[test]
fn published_stream_comes_out_in_ts_datagrams() {
    let (got, sizes, expected) = watch_published(Out::Udp, 11);
    assert_same(&got, &expected);
    let (last, full) = sizes.split_last().expect("datagrams");
    assert!(full.iter().all(|&n| n == 7 * 188), "7 TS packets each");
    assert!((1..=7 * 188).contains(last), "a short last one: {last}");
}

#[test]
fn closed_stdout_ends_quietly() {
    watch_published(Out::ClosedStdout, 12);
}
