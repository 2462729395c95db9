//! A stream crossing a real lossy link arrives whole: relay and publisher
//! in one network namespace, the viewer in another, joined by a veth pair
//! on which nftables drops 5% of the UDP datagrams in each direction. FEC
//! and NACK must repair all of it within `shoal watch`'s default 500 ms
//! latency, so the viewer's file equals the publisher's input.
//!
//! A second test puts a 2 s burst of 30% loss each way on the same link
//! mid-stream: what FEC and NACK cannot repair in time is skipped and
//! counted, never played wrong, and after the burst the output is the
//! input again.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables); without them the test
//! fails naming the command that failed.

#[path = "netns_loss/netns.rs"]
mod netns;
mod support;
#[path = "netns_loss/ts.rs"]
mod ts;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use netns::{Link, Side};
use support::cli::{Growth, Proc, TempDir, keygen, lost_in};

/// The stream's way: 5% of the datagrams, at random.
const RELAY_TO_VIEWER: &[&str] = &["numgen", "random", "mod", "100", "<", "5"];
/// The viewer sends only a dozen datagrams or so (handshake, keepalives,
/// NACKs), too few for 5% at random to drop any reliably; every 20th,
/// starting with the first, is 5% and always some.
const VIEWER_TO_RELAY: &[&str] = &["numgen", "inc", "mod", "20", "<", "1"];
/// About 3.2 s of stream at 2 Mbit/s.
const PACKETS: usize = ts::GOP * 6;
/// Longest any one step (relay start, publish, watch) may take.
const DEADLINE: Duration = Duration::from_secs(40);
const PORT: u16 = 7400;

#[test]
fn five_percent_loss_each_way_is_repaired() {
    let pid = std::process::id();
    let dir = TempDir::create(&format!("shoal-netns-loss-{pid}"));
    let link = Link::create(pid);
    Link::drop_incoming_udp(&link.viewer, RELAY_TO_VIEWER);
    Link::drop_incoming_udp(&link.relay, VIEWER_TO_RELAY);

    let input = ts::stream(PACKETS);
    let input_path = dir.path("input.ts");
    let output_path = dir.path("output.ts");
    let key_path = dir.path("key");
    fs::write(&input_path, &input).expect("write the input");
    let stream = keygen(&key_path);

    let t0 = Instant::now();
    let [mut relay, mut watch, mut publish] = start(&link, &dir, &stream);
    let published = publish.wait_success(DEADLINE);
    let watched = watch.wait_success(DEADLINE);
    let to_viewer = Link::counters(&link.viewer);
    let to_relay = Link::counters(&link.relay);
    relay.kill();

    let output = fs::read(&output_path).expect("read watch's output");
    let offset = input.len().saturating_sub(output.len());
    assert!(
        input.ends_with(&output),
        "watch's output ({} bytes) is not the input's last bytes ({} bytes); first difference at byte {:?}",
        output.len(),
        input.len(),
        first_difference(&input[offset..], &output),
    );
    assert_eq!(offset % ts::PACKET_LEN, 0, "output starts mid-packet");
    assert!(
        offset == 0 || ts::is_random_access(&input[offset..]),
        "output starts at packet {}, not a keyframe",
        offset / ts::PACKET_LEN
    );
    assert!(
        output.len() * 10 >= input.len() * 9,
        "only {} of {} bytes arrived",
        output.len(),
        input.len()
    );
    let summary = watch.last_status();
    assert!(
        summary.contains(", lost 0,"),
        "watch gave chunks up: {summary}"
    );
    assert!(
        to_viewer.dropped > 0 && to_relay.dropped > 0,
        "no loss happened: relay->viewer {to_viewer:?}, viewer->relay {to_relay:?}"
    );
    // About 900 datagrams at 5%: 45 expected, 2% to 10% is over four
    // standard deviations either way.
    let rate = to_viewer.dropped as f64 / to_viewer.arrived.max(1) as f64;
    assert!(
        to_viewer.arrived > 500 && (0.02..0.10).contains(&rate),
        "relay->viewer is not the 5% loss it should be: {to_viewer:?}"
    );
    eprintln!(
        "netns_loss: {} of {} bytes from packet {}; publish {published:?}, watch {watched:?} after its start at {:?}; \
         relay->viewer {to_viewer:?}, viewer->relay {to_relay:?}; watch: {summary}",
        output.len(),
        input.len(),
        offset / ts::PACKET_LEN,
        t0.elapsed(),
    );
}

/// The burst: 30% of the datagrams each way, at random.
const BURST_LOSS: &[&str] = &["numgen", "random", "mod", "100", "<", "30"];
const BURST: Duration = Duration::from_secs(2);
/// About 6.3 s of stream at 2 Mbit/s.
const BURST_PACKETS: usize = ts::GOP * 12;
/// The burst starts once the viewer has played this much: about 1 s.
const BEFORE_BURST: u64 = (1_330 * ts::PACKET_LEN) as u64;
/// What the burst may still spoil after it ends: the viewer's latency
/// budget, a block, and scheduling on a busy machine.
const AFTER_BURST: Duration = Duration::from_secs(1);

#[test]
fn a_two_second_burst_of_thirty_percent_loss_is_survived() {
    let pid = std::process::id();
    let dir = TempDir::create(&format!("shoal-netns-burst-{pid}"));
    // A tag of its own: the other test may run alongside.
    let link = Link::create(pid * 10 + 1);
    Link::count_incoming_udp(&link.viewer);
    Link::count_incoming_udp(&link.relay);

    let input = ts::stream(BURST_PACKETS);
    let input_path = dir.path("input.ts");
    let output_path = dir.path("output.ts");
    let key_path = dir.path("key");
    fs::write(&input_path, &input).expect("write the input");
    let stream = keygen(&key_path);

    let [mut relay, mut watch, mut publish] = start(&link, &dir, &stream);
    let mut growth = Growth::new(vec![output_path.clone()]);
    growth.until("the viewer plays", DEADLINE, |g| g.len(0) >= BEFORE_BURST);

    let before = (Link::counters(&link.viewer), Link::counters(&link.relay));
    let to_viewer_rule = Link::add_drop(&link.viewer, BURST_LOSS);
    let to_relay_rule = Link::add_drop(&link.relay, BURST_LOSS);
    let burst_start = Instant::now();
    // The fault's length, sampling the output all along.
    growth.until("the burst's end", DEADLINE, |_| {
        burst_start.elapsed() >= BURST
    });
    // What crossed during the burst.
    let during = |side: &Side, before: netns::Counters| {
        let after = Link::counters(side);
        netns::Counters {
            arrived: after.arrived - before.arrived,
            dropped: after.dropped,
        }
    };
    let to_viewer = during(&link.viewer, before.0);
    let to_relay = during(&link.relay, before.1);
    Link::delete_rule(&link.viewer, to_viewer_rule);
    Link::delete_rule(&link.relay, to_relay_rule);
    let burst_end = Instant::now();
    growth.until("the viewer ends", DEADLINE, |_| watch.exited());
    watch.wait_success(DEADLINE);
    publish.wait_success(DEADLINE);
    relay.kill();

    let output = fs::read(&output_path).expect("read watch's output");
    let runs = ts::runs(&input, &output)
        .unwrap_or_else(|why| panic!("the viewer output corrupt data: {why}"));
    assert_eq!(
        runs.first().map(|r| r.first),
        Some(0),
        "played from the start"
    );
    assert_eq!(
        runs.last().map(ts::Run::end),
        Some(BURST_PACKETS),
        "played to the end"
    );
    let summary = watch.last_status();
    let lost = lost_in(&summary);
    let gaps: Vec<(usize, usize, Instant)> = runs
        .windows(2)
        .map(|w| {
            let at = growth
                .passed(0, w[1].out_at as u64)
                .expect("output after every gap");
            (w[0].end(), w[1].first - w[0].end(), at)
        })
        .collect();
    let missing: usize = gaps.iter().map(|g| g.1).sum();
    // When the last stretch the burst spoiled was behind the output,
    // from the burst's start.
    let recovered = gaps.last().map_or(Duration::ZERO, |g| {
        g.2.saturating_duration_since(burst_start)
    });
    let (stall, _) = growth.longest_stall(0, burst_start);
    eprintln!(
        "netns_loss burst: 1 viewer, 2 Mbit/s, {:.1} s of stream; 30% loss each way for {BURST:?} \
         from {:.1} s in: relay->viewer {to_viewer:?}, viewer->relay {to_relay:?}; {} gaps, \
         {missing} packets ({:.2} s of stream) skipped, {lost} chunks counted lost; output \
         past the last gap {} ms after the burst's start; longest output stall {} ms; watch: {summary}",
        ts::seconds(BURST_PACKETS),
        ts::seconds(BEFORE_BURST as usize / ts::PACKET_LEN),
        gaps.len(),
        ts::seconds(missing),
        recovered.as_millis(),
        stall.as_millis(),
    );
    assert!(
        to_viewer.dropped > 0 && to_relay.dropped > 0,
        "no loss happened: relay->viewer {to_viewer:?}, viewer->relay {to_relay:?}"
    );
    assert_eq!(
        gaps.is_empty(),
        lost == 0,
        "what is missing ({gaps:?}) and what is counted lost ({lost}) disagree"
    );
    for &(from, packets, at) in &gaps {
        assert!(
            at >= burst_start && at <= burst_end + AFTER_BURST,
            "a gap of {packets} packets at input packet {from} came {:?} after the burst's start",
            at.saturating_duration_since(burst_start)
        );
    }
}

/// Starts, in order and each ready before the next: the relay (in the
/// relay's namespace), `shoal watch` writing `output.ts` (in the viewer's),
/// subscribed before the first byte is published, and `shoal publish` of
/// `input.ts` with the key `key` (beside the relay).
fn start(link: &Link, dir: &TempDir, stream: &str) -> [Proc; 3] {
    let relay_addr = format!("{}:{PORT}", link.relay.addr);
    let mut relay = Proc::spawn(
        "relay",
        in_ns(&link.relay)
            .args(["relay", "--listen", &relay_addr])
            .args(["--metrics", "off", "--workers", "1", "--no-pin"])
            // A GSO train passes nftables as one packet, so the rule would
            // drop whole trains; without GSO it drops single datagrams, as
            // the loss it stands for would.
            .arg("--no-gso"),
        dir,
    );
    relay.wait_for_stderr("relay listening", DEADLINE);
    // Not --quiet: its last status line tells what was repaired.
    let mut watch = Proc::spawn(
        "watch",
        in_ns(&link.viewer)
            .args(["watch", "--stream", stream, "--relay", &relay_addr])
            .arg("--output")
            .arg(dir.path("output.ts")),
        dir,
    );
    watch.wait_for_stderr("shoal: subscribed", DEADLINE);
    let publish = Proc::spawn(
        "publish",
        in_ns(&link.relay)
            .arg("publish")
            .arg("--key")
            .arg(dir.path("key"))
            .args(["--relay", &relay_addr])
            // A veth address is not loopback: without this the publisher
            // would try to store its record on the public DHT.
            .arg("--no-dht")
            .arg("--input")
            .arg(dir.path("input.ts"))
            .arg("--quiet"),
        dir,
    );
    [relay, watch, publish]
}

/// `shoal ...` inside `side`'s namespace.
fn in_ns(side: &Side) -> Command {
    Link::command(side, Path::new(env!("CARGO_BIN_EXE_shoal")))
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}
