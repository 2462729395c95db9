//! The `shoal relay` command as an operator runs it: bad flags and config
//! get one line that names the field; SIGTERM tells subscribers and exits 0
//! within a second; the metrics endpoint and the web face answer.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

fn shoal(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(args)
        .output()
        .expect("run shoal");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_flags_name_the_field_and_the_fix() {
    let cases: &[(&[&str], &str)] = &[
        (&["relay", "--listen", "nowhere"], "--listen"),
        (&["relay", "--window", "10"], "--window"),
        (
            &["relay", "--stream", "abc", "--upstream", "127.0.0.1:1"],
            "--stream",
        ),
        (&["relay", "--upstream", "127.0.0.1:1"], "--stream"),
        (
            &["relay", "--config", "/nonexistent/relay.toml"],
            "/nonexistent/relay.toml",
        ),
        (&["relay", "--backend", "magic"], "--backend"),
    ];
    for (args, field) in cases {
        let (ok, err) = shoal(args);
        assert!(!ok, "{args:?} must fail");
        assert!(
            err.contains(field),
            "{args:?}: the error names {field}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let lines = err.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(lines <= 3, "{args:?}: short error: {err}");
    }
}

#[test]
fn unknown_config_key_is_named() {
    let dir = std::env::temp_dir().join(format!("shoal-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("relay.toml");
    std::fs::write(&path, "listn = \"0.0.0.0:7400\"\n").expect("write");
    let (ok, err) = shoal(&["relay", "--config", path.to_str().expect("utf8")]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(!ok);
    assert!(err.contains("listn"), "names the key: {err}");
}

/// Reads the relay's log until it says where it listens.
fn listening(stderr: &mut impl BufRead, key: &str) -> SocketAddr {
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        line.clear();
        if stderr.read_line(&mut line).expect("read log") == 0 {
            panic!("the relay exited before listening");
        }
        if let Some(at) = line.find(&format!("{key}=")) {
            let rest = &line[at + key.len() + 1..];
            let rest = rest.trim_start_matches("Some(");
            let end = rest.find([' ', ')', '\n']).unwrap_or(rest.len());
            return rest[..end].parse().expect("an address in the log");
        }
    }
    panic!("the relay did not log its address");
}

#[test]
fn sigterm_tells_subscribers_and_exits_zero_within_a_second() {
    let mut child = cli::relay_on_loopback("2", &["--log", "info"])
        .spawn()
        .expect("start shoal relay");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let relay = listening(&mut stderr, "addr");
    let source = Source::new(vec![relay], 8);
    let mut subs = vec![Sub::new(0, relay, source.stream)];
    subscribe_all(&mut subs);

    let pid = child.id();
    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "still running 2 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = sent.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let told = drive(&mut subs, Duration::from_secs(2), |s| {
        s[0].state == SubState::Left
    });
    assert!(told, "the subscriber was told (LEAVE)");
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert!(!rest.contains("panicked"), "{rest}");
}

#[test]
fn metrics_endpoint_serves_prometheus_text() {
    let mut child = cli::relay_on_loopback("1", &[])
        .spawn()
        .expect("start shoal relay");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let metrics = listening(&mut stderr, "metrics");
    let mut body = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !body.contains("shoal_relay_subscribers") && Instant::now() < deadline {
        let mut s = TcpStream::connect(metrics).expect("connect to metrics");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("request");
        body.clear();
        let _ = s.read_to_string(&mut body);
    }
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for name in [
        "shoal_relay_subscribers",
        "shoal_relay_drops_total",
        "shoal_relay_added_latency_seconds",
    ] {
        assert!(body.contains(name), "metrics lack {name}");
    }
    assert!(status.success());
}

#[test]
fn the_web_face_logs_its_url_and_lists_the_streams() {
    let mut child = cli::relay_on_loopback("1", &["--http", "127.0.0.1:0"])
        .spawn()
        .expect("start shoal relay");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let http = listening(&mut stderr, "http");
    let mut line = String::new();
    stderr.read_line(&mut line).expect("read log");
    assert!(
        line.contains(&format!("web face: streams at http://{http}/")),
        "{line}"
    );
    let index = cli::http_get(http, "/");
    assert!(index.starts_with("HTTP/1.1 200"), "{index}");
    assert!(index.contains("No streams yet"), "{index}");
    let api = cli::http_get(http, "/api/streams");
    assert!(api.ends_with("{\"streams\":[]}"), "{api}");
    let metrics = cli::http_get(http, "/metrics");
    assert!(metrics.contains("shoal_relay_subscribers"), "{metrics}");
    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert!(child.wait().expect("wait").success());
}
