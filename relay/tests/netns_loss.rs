//! A stream crossing a real lossy link arrives whole: relay and publisher
//! in one network namespace, the viewer in another, joined by a veth pair
//! on which nftables drops 5% of the UDP datagrams in each direction. FEC
//! and NACK must repair all of it within `shoal watch`'s default 500 ms
//! latency, so the viewer's file equals the publisher's input.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables); without them the test
//! fails naming the command that failed.

#[path = "netns_loss/netns.rs"]
mod netns;
#[path = "netns_loss/ts.rs"]
mod ts;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use netns::{Link, Side};

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
    let relay_addr = format!("{}:{PORT}", link.relay.addr);

    let input = ts::stream(PACKETS);
    let input_path = dir.path("input.ts");
    let output_path = dir.path("output.ts");
    let key_path = dir.path("key");
    fs::write(&input_path, &input).expect("write the input");
    let stream = keygen(&key_path);

    let mut relay = Proc::spawn(
        "relay",
        in_ns(&link.relay)
            .args(["relay", "--listen", &relay_addr])
            .args(["--metrics", "off", "--workers", "1", "--no-pin"])
            // A GSO train passes nftables as one packet, so the rule would
            // drop whole trains; without GSO it drops single datagrams, as
            // the loss it stands for would.
            .arg("--no-gso"),
        &dir,
    );
    relay.wait_for_stderr("relay listening", DEADLINE);

    let t0 = Instant::now();
    // Not --quiet: its last status line tells what was repaired.
    let mut watch = Proc::spawn(
        "watch",
        in_ns(&link.viewer)
            .args(["watch", "--stream", &stream, "--relay", &relay_addr])
            .arg("--output")
            .arg(&output_path),
        &dir,
    );
    // Subscribed (or at least asked) before the first byte is published.
    std::thread::sleep(Duration::from_millis(300));
    let mut publish = Proc::spawn(
        "publish",
        in_ns(&link.relay)
            .arg("publish")
            .arg("--key")
            .arg(&key_path)
            .args(["--relay", &relay_addr])
            .arg("--input")
            .arg(&input_path)
            .arg("--quiet"),
        &dir,
    );
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

/// `shoal ...` inside `side`'s namespace.
fn in_ns(side: &Side) -> Command {
    Link::command(side, Path::new(env!("CARGO_BIN_EXE_shoal")))
}

/// Runs `shoal keygen --out key` and returns the stream id it prints.
fn keygen(key: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .arg("keygen")
        .arg("--out")
        .arg(key)
        .output()
        .expect("run shoal keygen");
    assert!(
        out.status.success(),
        "shoal keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("a utf-8 stream id")
        .trim()
        .to_owned()
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

/// A child `shoal`, its stderr in a file; killed if still running when
/// dropped (a failed assertion must not leave it behind).
struct Proc {
    name: &'static str,
    child: Child,
    stderr: PathBuf,
    started: Instant,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, dir: &TempDir) -> Self {
        let stderr = dir.path(&format!("{name}.stderr"));
        let file = fs::File::create(&stderr).expect("create a stderr file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        Self {
            name,
            child,
            stderr,
            started: Instant::now(),
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until stderr shows `needle`; panics if the process exits first
    /// or `limit` passes.
    fn wait_for_stderr(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.stderr().contains(needle) {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("{} exited ({status}):\n{}", self.name, self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not say {needle:?} within {limit:?}:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for a 0 exit and returns how long the process ran.
    fn wait_success(&mut self, limit: Duration) -> Duration {
        let deadline = Instant::now() + limit;
        let status: ExitStatus = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(
            status.success(),
            "{} failed ({status}):\n{}",
            self.name,
            self.stderr()
        );
        self.started.elapsed()
    }

    /// The last `shoal: latency ...` status line.
    fn last_status(&self) -> String {
        let text = self.stderr();
        text.lines()
            .rev()
            .find(|l| l.starts_with("shoal: latency"))
            .unwrap_or_else(|| panic!("{} printed no status line:\n{text}", self.name))
            .to_owned()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A directory removed with everything in it when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn create(name: &str) -> Self {
        let path = std::env::temp_dir().join(name);
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Self(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
