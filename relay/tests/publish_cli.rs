//! `shoal publish` as an operator runs it: mistakes get one line with the
//! fix; a recorded file goes out paced at its PCR rate as DESCRIPTOR,
//! MANIFEST and DATA datagrams, and the process exits 0 at its end; the
//! watch page of each relay that has a web face is shown.

mod support;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use shoal_proto::ts::{Header, TS_PACKET_LEN, pcr_field};
use shoal_proto::wire::{MessageType, peek_type};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-publish-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn keygen(dir: &Path) -> PathBuf {
    let path = dir.join("stream.key");
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["keygen", "--out"])
        .arg(&path)
        .output()
        .expect("run shoal keygen");
    assert!(out.status.success());
    path
}

fn publish(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shoal"))
        .arg("publish")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run shoal publish")
}

/// `shoal publish --key KEY --relay RELAY EXTRA...`, run to its end.
fn publish_to(key: &Path, relay: &str, extra: &[&str]) -> Output {
    let key = key.to_str().expect("utf8");
    publish(&[&["--key", key, "--relay", relay][..], extra].concat())
}

/// `shoal publish --quiet --key KEY --relay RELAY`, to be given its input.
fn quiet_publish(key: &Path, relay: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
    cmd.args(["publish", "--quiet", "--key"])
        .arg(key)
        .args(["--relay", relay]);
    cmd
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "must fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

/// One TS packet on `pid`, with a PCR in its adaptation field if given.
fn ts_packet(pid: u16, counter: u8, pcr: Option<u64>) -> [u8; TS_PACKET_LEN] {
    let header = Header {
        payload_unit_start: false,
        pid,
        adaptation_field: pcr.is_some(),
        continuity_counter: counter,
    };
    let mut p = [0xff; TS_PACKET_LEN];
    p[..Header::LEN].copy_from_slice(&header.to_bytes());
    if let Some(pcr) = pcr {
        // The PCR flag, then the PCR.
        p[4] = 7;
        p[5] = 0x10;
        p[6..12].copy_from_slice(&pcr_field(pcr / 300, (pcr % 300) as u16));
    }
    p
}

/// `packets` packets on one PID, a PCR every tenth, spanning `span`.
fn ts_file(packets: usize, span: Duration) -> Vec<u8> {
    let first_pcr = 27_000_000 * 100;
    let span_ticks = span.as_micros() as u64 * 27;
    let mut out = Vec::with_capacity(packets * TS_PACKET_LEN);
    for i in 0..packets {
        let pcr = (i % 10 == 0).then(|| first_pcr + span_ticks * i as u64 / (packets - 1) as u64);
        out.extend_from_slice(&ts_packet(0x100, i as u8, pcr));
    }
    // The last packet closes the span exactly.
    let last = packets - 1;
    out[last * TS_PACKET_LEN..].copy_from_slice(&ts_packet(
        0x100,
        last as u8,
        Some(first_pcr + span_ticks),
    ));
    out
}

#[test]
fn missing_key_says_how_to_make_one() {
    let err = failure(&publish_to(
        Path::new("/nonexistent/stream.key"),
        "127.0.0.1:7400",
        &[],
    ));
    assert!(
        err.contains("cannot read key /nonexistent/stream.key"),
        "{err}"
    );
    assert!(err.contains("shoal keygen --out"), "{err}");
}

#[test]
fn malformed_key_is_named() {
    let dir = scratch("badkey");
    let key = dir.join("stream.key");
    std::fs::write(&key, "not a key\n").expect("write");
    let err = failure(&publish_to(&key, "127.0.0.1:7400", &[]));
    assert!(
        err.contains("is not a shoal key (64 hex characters)"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_relay_says_what_an_address_looks_like() {
    let dir = scratch("badrelay");
    let key = keygen(&dir);
    let err = failure(&publish_to(&key, "x", &[]));
    assert!(
        err.contains("--relay \"x\": not an address; use HOST:PORT such as 127.0.0.1:7400"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn input_that_is_not_ts_is_refused() {
    let dir = scratch("notts");
    let key = keygen(&dir);
    let input = dir.join("movie.mp4");
    std::fs::write(&input, b"\0\0\0\x20ftypisom".repeat(200)).expect("write");
    let relay = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let relay_addr = relay.local_addr().expect("addr").to_string();
    let err = failure(&publish_to(
        &key,
        &relay_addr,
        &["--input", input.to_str().expect("utf8")],
    ));
    assert!(err.contains("input is not MPEG-TS"), "{err}");
    assert!(err.contains("ffmpeg -f mpegts"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_relay_that_is_not_there_is_retried_then_an_error_at_the_end() {
    let dir = scratch("norelay");
    let key = keygen(&dir);
    let input = dir.join("live.ts");
    // Long enough for a few of the once-a-second outage lines.
    let span = Duration::from_millis(4500);
    std::fs::write(&input, ts_file(4500, span)).expect("write");
    // A port with nothing bound to it: the kernel answers ICMP port
    // unreachable.
    let closed = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let relay_addr = closed.local_addr().expect("addr").to_string();
    drop(closed);
    let started = Instant::now();
    let out = publish_to(
        &key,
        &relay_addr,
        &["--quiet", "--input", input.to_str().expect("utf8")],
    );
    let took = started.elapsed();
    assert!(!out.status.success(), "must fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    // The whole input was published: nobody gave up.
    assert!(
        took >= span - Duration::from_millis(50),
        "gave up after {took:?}"
    );
    assert!(took < span + Duration::from_secs(3), "ended after {took:?}");
    // Once a second while it lasts, even with --quiet: it is a fault.
    let prefix = format!("shoal publish: relay {relay_addr} unreachable for ");
    let outages = err
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.ends_with(" s; still publishing, retrying"))
        .count();
    assert!(outages >= 2, "{err}");
    // At the end, one line with the fix.
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("no relay took the end of the stream"),
        "{err}"
    );
    assert!(last.contains(&relay_addr), "{err}");
    assert!(last.contains("shoal relay"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `shoal publish` asks each relay for its web face (QUERY, ABOUT) and
/// prints where to watch: the relay's own address and port, the operator's
/// public URL, or that a relay has none.
#[test]
fn the_watch_page_of_each_relay_is_shown() {
    use support::cli::{Proc, TempDir, http_get, relay_on_loopback};
    let limit = Duration::from_secs(20);
    let dir = TempDir::create(&format!("shoal-publish-pages-{}", std::process::id()));
    let key = keygen(&dir.path(""));
    let mut plain = Proc::spawn(
        "plain",
        &mut relay_on_loopback("1", &["--http", "127.0.0.1:0", "--log", "info"]),
        &dir,
    );
    let mut named = Proc::spawn(
        "named",
        &mut relay_on_loopback(
            "1",
            &[
                "--http",
                "127.0.0.1:0",
                "--http-url",
                "https://live.example.com/shoal",
                "--log",
                "info",
            ],
        ),
        &dir,
    );
    let mut bare = Proc::spawn(
        "bare",
        &mut relay_on_loopback("1", &["--log", "info"]),
        &dir,
    );
    let relays = [&mut plain, &mut named, &mut bare].map(|r| r.logged_addr("addr", limit));
    let http = plain.logged_addr("http", limit);
    let input = dir.path("live.ts");
    std::fs::write(&input, ts_file(2000, Duration::from_millis(1500))).expect("write");
    let mut args = vec![
        "--key".to_owned(),
        key.display().to_string(),
        "--input".to_owned(),
        input.display().to_string(),
        "--no-dht".to_owned(),
    ];
    for relay in relays {
        args.extend(["--relay".to_owned(), relay.to_string()]);
    }
    let out = publish(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let id = err
        .split("publishing stream ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no stream id in {err}"));
    let [plain_at, named_at, bare_at] = relays;
    let page = format!("http://{http}/watch/{id}");
    assert!(
        err.contains(&format!(
            "shoal: watch in a browser at {page} (relay {plain_at})"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "shoal: watch in a browser at https://live.example.com/shoal/watch/{id} (relay {named_at})"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("shoal: relay {bare_at} has no web page")),
        "{err}"
    );
    // The URL shown is the relay's page for this stream.
    let answer = http_get(http, &format!("/watch/{id}"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("<video"), "{answer}");
}

#[test]
fn a_ts_file_is_published_at_its_pcr_rate_and_ends() {
    let dir = scratch("file");
    let key = keygen(&dir);
    let span = Duration::from_millis(400);
    let input = dir.join("live.ts");
    std::fs::write(&input, ts_file(1000, span)).expect("write");
    let relay = UdpSocket::bind("127.0.0.1:0").expect("bind");
    relay
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let relay_addr = relay.local_addr().expect("addr").to_string();

    let started = Instant::now();
    let mut child = quiet_publish(&key, &relay_addr)
        .arg("--input")
        .arg(&input)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shoal publish");

    let mut seen = BTreeMap::<String, usize>::new();
    let mut first = None;
    let mut buf = [0; 2048];
    let status = loop {
        while let Ok(n) = relay.recv(&mut buf) {
            let ty = peek_type(&buf[..n]).expect("a shoal datagram");
            first.get_or_insert(ty);
            *seen.entry(format!("{ty:?}")).or_default() += 1;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "publish must end with its file"
        );
    };
    let elapsed = started.elapsed();
    while let Ok(n) = relay.recv(&mut buf) {
        let ty = peek_type(&buf[..n]).expect("a shoal datagram");
        *seen.entry(format!("{ty:?}")).or_default() += 1;
    }
    let stderr = child
        .wait_with_output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    assert!(status.success(), "exit 0 at end of file: {stderr}");
    assert!(stderr.is_empty(), "--quiet: {stderr}");
    assert_eq!(first, Some(MessageType::Descriptor), "{seen:?}");
    assert!(seen.get("Manifest").copied().unwrap_or(0) >= 2, "{seen:?}");
    // 1000 packets × 188 bytes in chunks of at most a few kilobytes.
    assert!(seen.get("Data").copied().unwrap_or(0) >= 10, "{seen:?}");
    assert!(seen.get("Parity").copied().unwrap_or(0) >= 1, "{seen:?}");
    assert!(
        elapsed >= span - Duration::from_millis(50),
        "paced at the PCR rate: {elapsed:?} for a {span:?} file"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn udp_input_ends_cleanly_on_sigterm() {
    let dir = scratch("udp");
    let key = keygen(&dir);
    let relay = UdpSocket::bind("127.0.0.1:0").expect("bind");
    relay
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let relay_addr = relay.local_addr().expect("addr").to_string();
    // A free port for the input: bind, note it, let it go.
    let input_addr = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port");
    let mut child = quiet_publish(&key, &relay_addr)
        .arg("--input")
        .arg(format!("udp://{input_addr}"))
        .stdin(Stdio::null())
        .spawn()
        .expect("run shoal publish");

    // ffmpeg's shape: 7 TS packets per datagram, until the relay hears us.
    let source = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let ts = ts_file(70, Duration::from_millis(10));
    let mut buf = [0; 2048];
    let mut seen = BTreeMap::<String, usize>::new();
    let started = Instant::now();
    while seen.get("Data").copied().unwrap_or(0) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "publish must forward UDP input"
        );
        for datagram in ts.chunks(7 * TS_PACKET_LEN) {
            source.send_to(datagram, input_addr).expect("send");
        }
        while let Ok(n) = relay.recv(&mut buf) {
            let ty = peek_type(&buf[..n]).expect("a shoal datagram");
            *seen.entry(format!("{ty:?}")).or_default() += 1;
        }
    }

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(2),
            "SIGTERM ends publish promptly"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "SIGTERM is a clean end: {status}");
    assert!(seen.contains_key("Descriptor"), "{seen:?}");
    assert!(seen.contains_key("Manifest"), "{seen:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stdin_is_fed_as_it_arrives_and_non_ts_is_refused() {
    use std::io::Write;
    let dir = scratch("stdin");
    let key = keygen(&dir);
    let relay = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let relay_addr = relay.local_addr().expect("addr").to_string();
    let run = |input: &[u8]| {
        let mut child = quiet_publish(&key, &relay_addr)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run shoal publish");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write");
        drop(stdin);
        child.wait_with_output().expect("wait")
    };
    let out = run(&ts_file(200, Duration::from_secs(60)));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    relay
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0; 2048];
    let n = relay.recv(&mut buf).expect("datagrams");
    assert_eq!(peek_type(&buf[..n]).ok(), Some(MessageType::Descriptor));

    let err = failure(&run(&b"#EXTM3U\n".repeat(200)));
    assert!(err.contains("input is not MPEG-TS"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
