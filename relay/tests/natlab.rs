//! The NAT lab in the test suite (issue 17, item 1): `tests/natlab/run.sh
//! --hop` with this build's `shoal`, peers public, behind cone NATs and
//! behind symmetric NATs, each in network namespaces of its own with a
//! router between every NAT and the rest, one live stream, and its
//! `--report` checked:
//!
//! - every peer played exactly what ffmpeg gave the publisher (run.sh's own
//!   byte comparison) and exited 0;
//! - per NAT kind pair, whether a download link formed is what
//!   `tests/natlab/links.txt` says (the table the simulator's test reads
//!   too); a kind pair whose peers never exchanged a datagram (neighbour
//!   choice never paired them) is shown as untried and not held against
//!   the table;
//! - every cone peer had a working neighbour within [`CONE_FIRST_NEIGHBOUR`]
//!   of its own start, or of the stream's if it joined before it (a peer
//!   looks for neighbours only once it has the stream's descriptor, and the
//!   lab's peers join 1.2 to 2.6 s before the publisher starts), allowing
//!   for the status line's resolution when the peer prints no
//!   "neighbour ... working" line;
//! - the relay carried less than [`RELAY_SHARE_MAX`] of what the peers
//!   played;
//! - no `shoalnat-<pid>-*` namespace is left.
//!
//! Needs root, iproute2, nftables, ffmpeg with libx264 and curl: without
//! them it fails naming what is missing. Traffic stays inside the
//! namespaces. About 20 s on 2 cores; alone:
//! `cargo test -p shoal-relay --test natlab -- --nocapture`.

#[path = "natlab/report.rs"]
mod report;

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use report::{Report, compare, expected_links};

/// Peers of each kind. 8 peers and ffmpeg's encoder fill a 2-core machine
/// with a debug build (dependencies optimised) and still play exactly.
const PUBLIC: u32 = 2;
const CONE: u32 = 4;
const SYMMETRIC: u32 = 2;
/// Length of the stream: long enough for every club to find neighbours
/// and carry more than run.sh's link threshold (100 kB) over them.
const SECONDS: u32 = 10;
/// The debug build keeps up at this rate (8 of 8 exact in every run).
const BITRATE: &str = "2Mbit";
/// The whole run: about 18 s for 10 s of stream (peers join 2.6 s before
/// it, linger 2 s after), run.sh's own limit is the stream plus 20 s.
const DEADLINE: Duration = Duration::from_secs(90);
/// After the deadline, how long run.sh's TERM trap gets to remove its
/// namespaces before the group is killed.
const CLEANUP: Duration = Duration::from_secs(20);
/// A cone peer's first working neighbour, from its own start or the
/// stream's, whichever is later. Measured from the peer's "neighbour ...
/// working" line, or, from a binary without it, from its first status line
/// counting a neighbour, which is up to [`STATUS_EVERY`] late: such a time
/// fails only past the bound plus that. Six runs from status lines: 0.40
/// to 2.86 s (the status line, so 1.86 s or less in truth).
const CONE_FIRST_NEIGHBOUR: f64 = 3.0;
/// How often `shoal peer` prints its status line.
const STATUS_EVERY: f64 = 1.0;
/// The relay's forwarded bytes over (peers x stream). Measured with this
/// test's settings (2 December 2026, debug build, 2 cores), six runs:
/// 0.666, 0.666, 0.720, 0.694, 0.784, 0.715 (and 0.67-0.72 in three runs of
/// run.sh alike); before the TTL-2 first PUNCH let cone peers link, 16 s
/// runs gave 0.87-0.91. 0.85 is above the worst run by as much as the
/// spread of the six, and below what the relay carried when no NATed
/// pair could link.
const RELAY_SHARE_MAX: f64 = 0.85;

#[test]
fn nat_kinds_link_as_links_txt_says() {
    require_root_and_tools();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("relay/ sits in the workspace")
        .to_path_buf();
    let dir = TempDir::create(&format!("shoal-natlab-{}", std::process::id()));
    let report_path = dir.0.join("report");
    let out_path = dir.0.join("run.out");

    let t0 = Instant::now();
    let mut run = Command::new(root.join("tests/natlab/run.sh"));
    run.arg("--hop")
        .args(["--public", &PUBLIC.to_string()])
        .args(["--cone", &CONE.to_string()])
        .args(["--symmetric", &SYMMETRIC.to_string()])
        .args(["--seconds", &SECONDS.to_string()])
        .args(["--bitrate", BITRATE])
        .arg("--report")
        .arg(&report_path)
        .env("SHOAL_BIN", env!("CARGO_BIN_EXE_shoal"))
        .stdin(Stdio::null())
        // Its own group, so that the deadline can stop everything it runs.
        .process_group(0);
    // Its stdout and stderr in one file, appended so neither overwrites.
    let out = File::options()
        .create(true)
        .append(true)
        .open(&out_path)
        .expect("create run.out");
    run.stdout(out.try_clone().expect("dup run.out"))
        .stderr(out);
    let mut child = run.spawn().expect("start tests/natlab/run.sh");
    // run.sh is bash, exec'd directly: its $$, which names its namespaces,
    // is the child's pid.
    let prefix = format!("shoalnat-{}-", child.id());
    let status = wait_or_stop(&mut child, &prefix);
    let wall = t0.elapsed();
    let output = fs::read_to_string(&out_path).unwrap_or_default();
    println!("{output}");
    println!("natlab: run.sh took {wall:.1?}, exit {status}");

    let left = namespaces_with(&prefix);
    for ns in &left {
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    }
    assert!(left.is_empty(), "run.sh left namespaces behind: {left:?}");
    assert!(status.success(), "run.sh failed ({status}):\n{output}");

    let text = fs::read_to_string(&report_path).expect("read the report");
    let report = Report::parse(&text);
    assert_eq!(
        report.namespaces, prefix,
        "the report names other namespaces"
    );
    println!("natlab report:\n{}", report.summary());

    let mut failures = Vec::new();
    if report.publisher_exit != "0" {
        failures.push(format!("the publisher exited {}", report.publisher_exit));
    }
    let peers = (PUBLIC + CONE + SYMMETRIC) as usize;
    if report.peers.len() != peers {
        failures.push(format!(
            "{} peers reported, {peers} ran",
            report.peers.len()
        ));
    }
    for p in &report.peers {
        if p.played != "exact" || p.exit != "0" {
            failures.push(format!(
                "peer {} ({}, {}) played {}, exited {}",
                p.index, p.kind, p.address, p.played, p.exit
            ));
        }
    }

    let links_txt = root.join("tests/natlab/links.txt");
    let expected = expected_links(&fs::read_to_string(&links_txt).expect("read links.txt"));
    let (grid, diffs) = compare(&expected, &report.links());
    println!("download links per kind pair, A <- B, links.txt/measured:\n{grid}");
    if !diffs.is_empty() {
        failures.push(format!(
            "the links differ from tests/natlab/links.txt:\n{grid}  {}",
            diffs.join("\n  ")
        ));
    }

    for p in report.peers.iter().filter(|p| p.kind == "cone") {
        // Seconds it waited for the stream before it could look.
        let idle = (-p.start_s).max(0.0);
        let slack = if p.first_how == "status" {
            STATUS_EVERY
        } else {
            0.0
        };
        match p.first_s {
            Some(s) if s - idle <= CONE_FIRST_NEIGHBOUR + slack => {}
            _ => failures.push(format!(
                "cone peer {} had no working neighbour within {CONE_FIRST_NEIGHBOUR} s of its start or the stream's: \
                 first after {} from its start ({}), which was {:.2} s before the stream's",
                p.index,
                p.first_s.map_or("never".to_string(), |s| format!("{s:.2} s")),
                p.first_how,
                -p.start_s,
            )),
        }
    }

    if report.relay_share_forwarded >= RELAY_SHARE_MAX {
        failures.push(format!(
            "the relay forwarded {:.3} x peers x stream (all UDP {:.3} x), not below {RELAY_SHARE_MAX}",
            report.relay_share_forwarded, report.relay_share_udp
        ));
    }

    assert!(
        failures.is_empty(),
        "the NAT lab:\n- {}",
        failures.join("\n- ")
    );
}

/// Fails, naming it, if this machine lacks what the lab needs: never skips.
fn require_root_and_tools() {
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "the NAT lab needs root (it makes network namespaces, veths, bridges and nftables NAT)"
    );
    for (tool, package) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("ffmpeg", "ffmpeg"),
        ("curl", "curl"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .expect("run sh")
            .success();
        assert!(found, "the NAT lab needs `{tool}` ({package}), not found");
    }
    let encoders = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .expect("run ffmpeg -encoders");
    assert!(
        String::from_utf8_lossy(&encoders.stdout).contains("libx264"),
        "the NAT lab needs ffmpeg with the libx264 encoder"
    );
}

/// Waits for run.sh within [`DEADLINE`]; past it, TERMs its process group
/// (run.sh's trap removes its namespaces), KILLs it after [`CLEANUP`], and
/// fails.
fn wait_or_stop(child: &mut Child, prefix: &str) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait run.sh") {
            return status;
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let stop = Instant::now() + CLEANUP;
    while Instant::now() < stop && child.try_wait().expect("try_wait run.sh").is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.wait();
    let left = namespaces_with(prefix);
    for ns in &left {
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    }
    panic!("run.sh did not finish within {DEADLINE:?}; stopped it (namespaces it left: {left:?})");
}

/// The network namespaces whose names start with `prefix`.
fn namespaces_with(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    assert!(out.status.success(), "ip netns list failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| ns.starts_with(prefix))
        .map(str::to_string)
        .collect()
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
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
