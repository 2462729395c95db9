//! The live stream over HTTP (`shoal relay --http`): ffmpeg publishes 8 s
//! of H.264 in real time; 200 HTTP readers (curl) and one that never reads
//! join early. Every reader gets PAT and PMT first, then the stream from a
//! keyframe byte for byte to its end, while the stalled one holds its
//! connection; one reader over `--max-http-readers` gets 503.
//!
//! Needs ffmpeg (libx264) and curl; without them it fails naming them.

mod support;

use std::io::Write as _;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::cli::{self, Proc, TempDir, http_get, keygen};

const READERS: usize = 200;
const PACKET: usize = 188;
const LIMIT: Duration = Duration::from_secs(40);

fn pid(packet: &[u8]) -> u16 {
    u16::from_be_bytes([packet[1] & 0x1F, packet[2]])
}

#[test]
fn http_readers_get_a_clean_start_and_the_exact_stream_and_a_stalled_one_slows_nobody() {
    for tool in ["ffmpeg", "curl"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "this test needs {tool} (Debian package {tool})");
    }
    let dir = TempDir::create(&format!("shoal-http-stream-{}", std::process::id()));
    let key = dir.path("key");
    let id = keygen(&key);
    let max = (READERS + 1).to_string();
    let mut relay = Proc::spawn(
        "relay",
        &mut cli::relay_on_loopback(
            "1",
            &[
                "--http",
                "127.0.0.1:0",
                "--log",
                "info",
                "--max-http-readers",
                &max,
            ],
        ),
        &dir,
    );
    let addr = relay.logged_addr("addr", LIMIT);
    let http = relay.logged_addr("http", LIMIT);
    let input = dir.path("input.ts");
    let script = format!(
        "set -o pipefail; ffmpeg -nostdin -loglevel error -re -f lavfi \
         -i testsrc=size=640x360:rate=30:duration=8 -c:v libx264 -preset ultrafast \
         -tune zerolatency -g 30 -b:v 1M -f mpegts - | tee {} | {} publish --key {} \
         --relay {addr} --no-dht --quiet",
        input.display(),
        env!("CARGO_BIN_EXE_shoal"),
        key.display()
    );
    let mut publish = Proc::spawn("publish", Command::new("bash").args(["-c", &script]), &dir);

    // Live at the relay.
    let deadline = Instant::now() + LIMIT;
    while !http_get(http, "/api/streams").contains("\"live\":true") {
        assert!(
            Instant::now() < deadline,
            "the stream never went live:\n{}",
            relay.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let path = format!("/streams/{id}.ts");
    // One reader that asks and never reads.
    let mut stalled = TcpStream::connect(http).expect("connect");
    write!(stalled, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let url = format!("http://{http}{path}");
    let mut readers: Vec<(std::path::PathBuf, std::process::Child)> = (0..READERS)
        .map(|i| {
            let out = dir.path(&format!("reader{i}.ts"));
            let child = Command::new("curl")
                .args(["-sS", "--max-time", "40", "-o"])
                .arg(&out)
                .arg(&url)
                .spawn()
                .expect("run curl");
            (out, child)
        })
        .collect();
    // All of them reading, the next one is refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = http_get(http, "/metrics");
        if metrics.contains(&format!("shoal_http_readers {}\n", READERS + 1)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readers never all connected:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let over = http_get(http, &path);
    assert!(over.starts_with("HTTP/1.1 503"), "{over:.200}");
    assert!(over.contains("max_http_readers"), "{over:.400}");

    publish.wait_success(LIMIT);
    let input = std::fs::read(&input).expect("the input");
    for (i, (out, child)) in readers.iter_mut().enumerate() {
        let status = child.wait().expect("curl");
        assert!(status.success(), "reader {i}: curl {status}");
        let got = std::fs::read(&*out).expect("a reader's output");
        assert!(
            got.len() >= 2 * PACKET && got.len() % PACKET == 0,
            "reader {i}: {} bytes",
            got.len()
        );
        assert_eq!(pid(&got[..PACKET]), 0, "reader {i} starts with the PAT");
        assert_ne!(pid(&got[PACKET..]), 0, "then its PMT");
        let rest = &got[2 * PACKET..];
        assert!(
            input.ends_with(rest),
            "reader {i}: its {} bytes after the tables are not the end of the {} published",
            rest.len(),
            input.len()
        );
        assert!(
            rest.len() * 2 > input.len(),
            "reader {i} got only {} of {} bytes",
            rest.len(),
            input.len()
        );
    }
    let metrics = http_get(http, "/metrics");
    assert!(
        metrics.contains("shoal_http_readers_refused_total 1\n"),
        "{metrics}"
    );
    drop(stalled);
    relay.kill();
}
