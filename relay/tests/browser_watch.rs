//! Watching in a browser: ffmpeg publishes 720p H.264 + AAC in real time
//! through `shoal publish`; headless Chromium opens a `/watch/<ID>` page,
//! served by the relay (`shoal relay --http`) or by a local viewer
//! (`shoal watch --http`). The browser's own counts (frames decoded and
//! dropped, read from the page's `window.shoalPlayer` over DevTools) must
//! show at least 80% of the frames published since the page opened. The
//! relay's run also estimates publish-to-play latency (the serving viewer's
//! latency plus what the browser holds buffered ahead) and saves a
//! screenshot (`target/tmp/watch.png`, the one in README).
//!
//! Needs Debian's `chromium` and ffmpeg with libx264; fails without them.
//! A third opens the page before the stream exists and sees it wait, then
//! play. The tests run one after the other (two encoders and two browsers at
//! once would share 2 cores).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::browser::Browser;
use support::cli::{self, Proc, TempDir, http_get, keygen};
use support::firefox::Firefox;
use support::netns::Netns;
use support::page::Page;

/// The stream: long enough for a steady state after the page's start.
const SECONDS: u32 = 14;
const FPS: f64 = 30.0;
const LIMIT: Duration = Duration::from_secs(40);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A relay (with `relay_extra` flags), a key, and ffmpeg publishing to it.
struct Setup {
    dir: TempDir,
    id: String,
    relay: Proc,
    addr: SocketAddr,
    publish: Proc,
    published: Instant,
}

fn publish(relay_extra: &[&str], name: &str) -> Setup {
    let (dir, id, relay, addr) = relay(relay_extra, name);
    let publish = start_publisher(&dir, addr);
    Setup {
        dir,
        id,
        relay,
        addr,
        publish,
        published: Instant::now(),
    }
}

/// The page's `window.shoalPlayer`, as JSON.
fn player(browser: &mut impl Page) -> serde_json::Value {
    let text = browser.evaluate("JSON.stringify(window.shoalPlayer)");
    serde_json::from_str(text.as_str().unwrap_or("{}")).unwrap_or_default()
}

/// A relay with `relay_extra` flags and a key in a new directory: the
/// directory, the stream id, the relay and its address.
fn relay(relay_extra: &[&str], name: &str) -> (TempDir, String, Proc, SocketAddr) {
    let dir = TempDir::create(&format!("shoal-browser-{name}-{}", std::process::id()));
    let id = keygen(&dir.path("key"));
    let mut args = vec!["--log", "info"];
    args.extend_from_slice(relay_extra);
    let mut relay = Proc::spawn("relay", &mut cli::relay_on_loopback("1", &args), &dir);
    let addr = relay.logged_addr("addr", LIMIT);
    (dir, id, relay, addr)
}

/// ffmpeg publishing [`SECONDS`] of 720p H.264 + AAC in real time, with
/// the key in `dir`, to the relay at `addr`.
fn start_publisher(dir: &TempDir, addr: SocketAddr) -> Proc {
    let script = format!(
        "set -o pipefail; ffmpeg -nostdin -loglevel error -re \
         -f lavfi -i testsrc=size=1280x720:rate=30:duration={SECONDS} \
         -f lavfi -i sine=frequency=440:duration={SECONDS} \
         -c:v libx264 -pix_fmt yuv420p -preset ultrafast -tune zerolatency -g 30 -b:v 2M \
         -c:a aac -b:a 96k -f mpegts - | {} publish --key {} --relay {addr} --no-dht --quiet",
        env!("CARGO_BIN_EXE_shoal"),
        dir.path("key").display()
    );
    Proc::spawn("publish", Command::new("bash").args(["-c", &script]), dir)
}

/// What the page showed.
struct Watched {
    shown: f64,
    since_open: f64,
    latency_ms: Option<f64>,
    png: Vec<u8>,
}

/// Opens `url` once `live` says the stream is there, watches until the
/// publisher ends, and checks that most frames were shown.
fn watch(
    browser: &mut impl Page,
    setup: &mut Setup,
    page: SocketAddr,
    live: impl Fn() -> bool,
) -> Watched {
    let deadline = Instant::now() + LIMIT;
    while !live() {
        assert!(
            Instant::now() < deadline,
            "the stream never went live:\n{}",
            setup.relay.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    browser.navigate(&format!("http://{page}/watch/{}", setup.id));
    let opened = Instant::now();
    browser.wait_until(
        "the page to play",
        "window.shoalPlayer ? window.shoalPlayer.state : null",
        Duration::from_secs(15),
        |v| v == "playing",
    );
    let mut latencies = Vec::new();
    let mut png = None;
    while !setup.publish.exited() {
        assert!(Instant::now() < deadline, "the publisher did not finish");
        // The picture mid-stream.
        if png.is_none() && opened.elapsed() > Duration::from_secs(6) {
            png = Some(browser.screenshot());
        }
        let p = player(browser);
        if let (Some(serving), Some(ahead)) =
            (p["latencyMs"].as_f64(), p["bufferedAheadMs"].as_f64())
        {
            latencies.push(serving + ahead);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let ended = Instant::now();
    setup.publish.wait_success(LIMIT);
    // What the browser shows of the last second still arrives.
    std::thread::sleep(Duration::from_secs(1));
    let p = player(browser);
    let decoded = p["framesDecoded"].as_f64().unwrap_or(0.0);
    let dropped = p["framesDropped"].as_f64().unwrap_or(0.0);
    let since_open = ended.saturating_duration_since(opened).as_secs_f64() * FPS;
    let shown = decoded - dropped;
    latencies.sort_by(f64::total_cmp);
    let latency_ms = latencies.get(latencies.len() / 2).copied();
    println!(
        "browser: {shown} frames shown ({decoded} decoded, {dropped} dropped) of about {since_open:.0} \
         published since the page opened ({:.1} s after publishing began); publish-to-play \
         (serving viewer + browser buffer), median {latency_ms:?} ms of {} samples",
        opened.duration_since(setup.published).as_secs_f64(),
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
    Watched {
        shown,
        since_open,
        latency_ms,
        png,
    }
}

#[test]
fn a_browser_shows_most_frames_of_a_live_stream_from_the_relay() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut browser = Browser::launch();
    let mut setup = publish(&["--http", "127.0.0.1:0"], "relay");
    let http = setup.relay.logged_addr("http", LIMIT);
    let watched = watch(&mut browser, &mut setup, http, || {
        http_get(http, "/api/streams").contains("\"live\":true")
    });
    assert!(watched.shown > 0.0 && watched.since_open > 0.0);
    assert!(watched.latency_ms.is_some(), "the page reported latency");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("watch.png");
    std::fs::write(&shot, &watched.png).expect("save the screenshot");
    println!("screenshot: {}", shot.display());
    setup.relay.kill();
}

#[test]
fn a_browser_shows_most_frames_through_shoal_watch() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut browser = Browser::launch();
    let mut setup = publish(&[], "watch");
    let relay = setup.addr.to_string();
    let mut viewer = Proc::spawn(
        "watch",
        &mut cli::shoal(&[
            "watch",
            "--stream",
            &setup.id,
            "--relay",
            &relay,
            "--no-dht",
            "--output",
            "/dev/null",
            "--http",
            "127.0.0.1:0",
            "--wait",
            "0",
        ]),
        &setup.dir,
    );
    viewer.wait_for_stderr("watch in a browser at http://", LIMIT);
    let text = viewer.stderr();
    let url = text
        .lines()
        .find_map(|l| l.split("watch in a browser at http://").nth(1))
        .expect("the line waited for");
    let page: SocketAddr = url
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("an address in {url:?}"));
    let watched = watch(&mut browser, &mut setup, page, || {
        http_get(page, "/api/streams").contains("\"live\":true")
    });
    assert!(watched.shown > 0.0);
    assert!(watched.latency_ms.is_some(), "the page reported latency");
    viewer.kill();
    setup.relay.kill();
}

/// A page opened before its stream exists: the relay answers 404 with a
/// page that says it is waiting, and once the publisher starts, the page
/// turns into the player by itself and plays.
#[test]
fn a_page_opened_before_the_stream_waits_then_plays() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut browser = Browser::launch();
    let (dir, id, mut relay, addr) = relay(&["--http", "127.0.0.1:0"], "early");
    let http = relay.logged_addr("http", LIMIT);
    let path = format!("/watch/{id}");
    let early = http_get(http, &path);
    assert!(early.starts_with("HTTP/1.1 404"), "{early}");
    browser.navigate(&format!("http://{http}{path}"));
    let said = browser.evaluate("document.getElementById('state').textContent");
    assert_eq!(said, "waiting for the stream to start on this relay");
    // It keeps asking while nothing is published.
    browser.wait_until(
        "the page to ask again",
        "window.shoalWaiting ? window.shoalWaiting.checks : 0",
        Duration::from_secs(10),
        |v| v.as_u64().unwrap_or(0) >= 2,
    );
    let mut publish = start_publisher(&dir, addr);
    let played = browser.wait_until(
        "the page to become the player and play",
        "window.shoalPlayer ? window.shoalPlayer.framesDecoded : 0",
        Duration::from_secs(25),
        |v| v.as_f64().unwrap_or(0.0) >= 30.0,
    );
    println!("the page that waited then decoded {played} frames");
    let state = browser.evaluate("window.shoalPlayer.state");
    assert_eq!(state, "playing", "{}", browser.log());
    publish.kill();
    relay.kill();
}

/// The same page in Firefox, which plays the stream through mpegts.js
/// (Firefox's Media Source Extensions take fragmented MP4, not MPEG-TS).
/// Firefox reaches for the network by itself, so everything here (relay,
/// publisher, browser) runs in a network namespace with only loopback.
#[test]
fn firefox_shows_most_frames_of_a_live_stream_from_the_relay() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::create("firefox");
    ns.run(|| {
        let mut browser = Firefox::launch();
        let mut setup = publish(&["--http", "127.0.0.1:0"], "firefox");
        let http = setup.relay.logged_addr("http", LIMIT);
        let watched = watch(&mut browser, &mut setup, http, || {
            http_get(http, "/api/streams").contains("\"live\":true")
        });
        assert!(watched.shown > 0.0 && watched.since_open > 0.0);
        assert!(watched.latency_ms.is_some(), "the page reported latency");
        setup.relay.kill();
    });
}
