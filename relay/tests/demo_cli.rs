//! `shoal demo` end to end: the binary runs a relay, a publisher and
//! viewers on loopback, ends by itself and reports what the viewers got;
//! with `--http` its stream is real video a browser (here curl and ffmpeg)
//! can fetch and decode.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::cli::{self, Proc, TempDir, http_get};

const PACKET: usize = 188;

fn demo(args: &[&str], limit: Duration) -> Output {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .arg("demo")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("shoal runs");
    assert!(
        started.elapsed() < limit,
        "shoal demo {args:?} took {:?}",
        started.elapsed()
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The value after `label` in a summary line such as `  lost   0`.
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
}

fn repaired(text: &str) -> u64 {
    field(text, "repaired")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no repaired count in:\n{text}"))
}

#[test]
fn twenty_viewers_all_exact() {
    let out = demo(
        &["--viewers", "20", "--duration", "3s"],
        Duration::from_secs(20),
    );
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("a 4 s loop of H.264 video (640x360, 30 fps) and AAC audio"),
        "{text}"
    );
    assert!(text.contains("viewers 20/20 subscribed"), "{text}");
    assert_eq!(field(&text, "exact viewers"), "20/20", "{text}");
    assert_eq!(field(&text, "lost"), "0", "{text}");
}

#[test]
fn five_percent_loss_is_repaired() {
    let out = demo(
        &["--viewers", "10", "--duration", "3s", "--loss", "5"],
        Duration::from_secs(20),
    );
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(repaired(&text) > 0, "{text}");
    assert_eq!(field(&text, "lost"), "0", "{text}");
    assert_eq!(field(&text, "exact viewers"), "10/10", "{text}");
}

/// 2000 viewers need about ten cores on any machine measured so far
/// (BENCHMARKS.md, "FEC codecs"): far more than a 2-core machine has.
#[test]
fn a_load_beyond_the_machine_is_warned_before_it_starts() {
    let out = demo(
        &["--viewers", "2000", "--duration", "100ms"],
        Duration::from_secs(60),
    );
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    let warning = text
        .find("shoal demo: warning: 2000 viewers at 0% loss need about")
        .unwrap_or_else(|| panic!("no warning in:\n{text}"));
    let started = text
        .find("shoal demo: relay on")
        .unwrap_or_else(|| panic!("no start in:\n{text}"));
    assert!(warning < started, "{text}");
    assert!(text.contains("try"), "{text}");
}

#[test]
fn bad_flags_name_the_flag_and_the_fix() {
    for (args, flag) in [
        (&["--viewers", "0"][..], "--viewers"),
        (&["--viewers", "many"][..], "--viewers"),
        (&["--duration", "5"][..], "--duration"),
        (&["--duration", "0s"][..], "--duration"),
        (&["--loss", "80"][..], "--loss"),
        (&["--loss", "x"][..], "--loss"),
        (&["--backend", "carrier-pigeon"][..], "--backend"),
        (&["--http", "8080"][..], "--http"),
    ] {
        let out = demo(args, Duration::from_secs(10));
        let text = stderr(&out);
        assert!(!out.status.success(), "{args:?}: {text}");
        assert!(text.contains(flag), "{args:?}: {text}");
        if flag != "--backend" {
            assert!(text.contains("try"), "{args:?}: {text}");
        }
    }
}

#[test]
fn a_taken_http_port_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port to take");
    let addr = taken.local_addr().expect("its address").to_string();
    let out = demo(&["--http", &addr], Duration::from_secs(10));
    let text = stderr(&out);
    assert!(!out.status.success(), "{text}");
    cli::assert_one_line(&text, &format!("--http {addr}"));
    assert!(text.contains("try"), "{text}");
}

/// `--http` serves the stream: what the web face sends from the middle of
/// the demo is MPEG-TS, starting with its tables, and ffmpeg decodes it
/// without a complaint.
#[test]
fn http_serves_real_video_that_decodes() {
    for tool in ["ffmpeg", "curl"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "this test needs {tool} (Debian package {tool})");
    }
    let limit = Duration::from_secs(20);
    let dir = TempDir::create(&format!("shoal-demo-http-{}", std::process::id()));
    let mut demo = Proc::spawn(
        "demo",
        &mut cli::shoal(&[
            "demo",
            "--duration",
            "4s",
            "--viewers",
            "2",
            "--http",
            "127.0.0.1:0",
        ]),
        &dir,
    );
    let needle = "shoal demo: watch in a browser at http://";
    demo.wait_for_stderr(needle, limit);
    let text = demo.stderr();
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix(needle))
        .expect("the line waited for");
    let (addr, id) = url
        .split_once("/watch/")
        .unwrap_or_else(|| panic!("a page URL in {url:?}"));
    let addr: SocketAddr = addr.parse().expect("the web face's address");
    assert_ne!(addr.port(), 0, "the bound port is printed");

    let deadline = Instant::now() + limit;
    while !http_get(addr, "/api/streams").contains("\"live\":true") {
        assert!(
            Instant::now() < deadline,
            "the stream never went live:\n{}",
            demo.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let page = http_get(addr, &format!("/watch/{id}"));
    assert!(page.starts_with("HTTP/1.1 200"), "{page:.300}");
    // The answer ends when the stream does.
    let fetched = dir.path("fetched.ts");
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o"])
        .arg(&fetched)
        .arg(format!("http://{addr}/streams/{id}.ts"))
        .status()
        .expect("run curl");
    assert!(curl.success(), "curl {curl}");
    demo.wait_success(limit);
    let text = demo.stderr();
    assert_eq!(field(&text, "exact viewers"), "2/2", "{text}");

    let bytes = std::fs::read(&fetched).expect("the fetched stream");
    assert!(
        bytes.len() > 50 * PACKET && bytes.len().is_multiple_of(PACKET),
        "{} bytes",
        bytes.len()
    );
    assert!(bytes.chunks(PACKET).all(|p| p[0] == 0x47), "sync bytes");
    let pid = |p: &[u8]| u16::from_be_bytes([p[1] & 0x1F, p[2]]);
    assert_eq!(pid(&bytes[..PACKET]), 0, "the PAT first");
    let decoded = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&fetched)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let complaints = String::from_utf8_lossy(&decoded.stderr);
    assert!(
        decoded.status.success(),
        "ffmpeg {}: {complaints}",
        decoded.status
    );
    assert_eq!(complaints, "", "ffmpeg decoding what --http served");
}
