//! Watching in a browser: ffmpeg publishes 720p H.264 + AAC in real time
//! through `shoal publish`; headless Chromium opens the relay's
//! `/watch/<ID>` page. The browser's own counts (frames decoded and
//! dropped, read from the page's `window.shoalPlayer` over DevTools) must
//! show at least 80% of the frames published since the page opened. The
//! test also estimates publish-to-play latency (the relay's viewer's
//! latency plus what the browser holds buffered ahead) and saves a
//! screenshot (`target/tmp/watch.png`, the one in README).
//!
//! Needs Debian's `chromium` and ffmpeg with libx264; fails without them.

mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::browser::Browser;
use support::cli::{self, Proc, TempDir, keygen};

/// The stream: long enough for a steady state after the page's start.
const SECONDS: u32 = 14;
const FPS: f64 = 30.0;
const LIMIT: Duration = Duration::from_secs(40);

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the web face");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_browser_shows_most_frames_of_a_live_stream() {
    let dir = TempDir::create(&format!("shoal-browser-watch-{}", std::process::id()));
    let key = dir.path("key");
    let id = keygen(&key);
    let mut relay = Proc::spawn(
        "relay",
        &mut cli::relay_on_loopback("1", &["--http", "127.0.0.1:0", "--log", "info"]),
        &dir,
    );
    let addr = relay.logged_addr("addr", LIMIT);
    let http = relay.logged_addr("http", LIMIT);
    let mut browser = Browser::launch();
    let script = format!(
        "set -o pipefail; ffmpeg -nostdin -loglevel error -re \
         -f lavfi -i testsrc=size=1280x720:rate=30:duration={SECONDS} \
         -f lavfi -i sine=frequency=440:duration={SECONDS} \
         -c:v libx264 -preset ultrafast -tune zerolatency -g 30 -b:v 2M \
         -c:a aac -b:a 96k -f mpegts - | {} publish --key {} --relay {addr} --no-dht --quiet",
        env!("CARGO_BIN_EXE_shoal"),
        key.display()
    );
    let mut publish = Proc::spawn("publish", Command::new("bash").args(["-c", &script]), &dir);
    let published = Instant::now();
    let deadline = Instant::now() + LIMIT;
    while !get(http, "/api/streams").contains("\"live\":true") {
        assert!(
            Instant::now() < deadline,
            "the stream never went live:\n{}",
            relay.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    browser.navigate(&format!("http://{http}/watch/{id}"));
    let opened = Instant::now();
    browser.wait_until(
        "the page to play",
        "window.shoalPlayer ? window.shoalPlayer.state : null",
        Duration::from_secs(15),
        |v| v == "playing",
    );
    let mut latencies = Vec::new();
    let mut last = serde_json::Value::Null;
    let mut png = None;
    while !publish.exited() {
        // The picture mid-stream, for README.
        if png.is_none() && opened.elapsed() > Duration::from_secs(6) {
            png = Some(browser.screenshot());
        }
        assert!(Instant::now() < deadline, "the publisher did not finish");
        last = browser.evaluate("JSON.stringify(window.shoalPlayer)");
        let p: serde_json::Value =
            serde_json::from_str(last.as_str().unwrap_or("{}")).unwrap_or_default();
        if let (Some(relay_ms), Some(ahead)) =
            (p["latencyMs"].as_f64(), p["bufferedAheadMs"].as_f64())
        {
            latencies.push(relay_ms + ahead);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let ended = Instant::now();
    publish.wait_success(LIMIT);
    // What the browser shows of the last second still arrives.
    std::thread::sleep(Duration::from_secs(1));
    let p: serde_json::Value = serde_json::from_str(
        browser
            .evaluate("JSON.stringify(window.shoalPlayer)")
            .as_str()
            .unwrap_or("{}"),
    )
    .unwrap_or_default();
    let decoded = p["framesDecoded"].as_f64().unwrap_or(0.0);
    let dropped = p["framesDropped"].as_f64().unwrap_or(0.0);
    let since_open = ended.saturating_duration_since(opened).as_secs_f64() * FPS;
    let shown = decoded - dropped;
    latencies.sort_by(f64::total_cmp);
    let median = latencies.get(latencies.len() / 2).copied();
    println!(
        "browser: {shown} frames shown ({decoded} decoded, {dropped} dropped) of about {since_open:.0} \
         published since the page opened ({:.1} s after publishing began); publish-to-play \
         latency (relay viewer + browser buffer), median {median:?} ms of {} samples; last {last}",
        opened.duration_since(published).as_secs_f64(),
        latencies.len()
    );
    assert!(
        shown >= 0.8 * since_open,
        "the browser showed {shown} frames of about {since_open:.0} published since it opened the page:\n{p}\n{}",
        browser.log()
    );
    let png = png.expect("a screenshot while playing");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a screenshot of {} bytes",
        png.len()
    );
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("watch.png");
    std::fs::write(&shot, &png).expect("save the screenshot");
    println!("screenshot: {}", shot.display());
    relay.kill();
}
