//! The NAT lab in the test suite (issue 17): `tests/natlab/run.sh --hop`
//! with this build's `shoal`, peers public, behind cone NATs and behind
//! symmetric NATs, each in network namespaces of its own with a router
//! between every NAT and the rest, one live stream, and its `--report`
//! checked against the goals. Two runs, one after the other:
//!
//! - **mixed**: 4 public, 14 cone and 6 symmetric peers. Every peer played
//!   exactly what ffmpeg gave the publisher (run.sh's own byte comparison)
//!   and exited 0; per NAT kind pair, whether a download link formed is
//!   what `tests/natlab/links.txt` says (the table the simulator's test
//!   reads too; a kind pair whose peers never exchanged a datagram is shown
//!   as untried and not held against it); every cone peer had a working
//!   neighbour within [`CONE_FIRST_NEIGHBOUR`] of its own start, or of the
//!   stream's if it joined before it (a peer looks for neighbours only once
//!   it has the stream's descriptor, and the lab's peers join up to 5 s
//!   before the publisher starts); the relay carried at most
//!   [`MIXED_RELAY_SHARE`] of what the peers played;
//! - **public**: 24 public peers, exact, the relay at most
//!   [`PUBLIC_RELAY_SHARE`].
//!
//! and no `shoalnat-<pid>-*` namespace is left after either.
//!
//! Needs root, iproute2, nftables, ffmpeg with libx264 and curl: without
//! them it fails naming what is missing. Traffic stays inside the
//! namespaces. About 65 s on 2 cores; alone:
//! `cargo test -p shoal-relay --test natlab -- --nocapture`.

#[path = "natlab/report.rs"]
mod report;

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use report::{Report, compare};
use shoal_tests::nat_table::LinkTable;

/// Length of each stream: the runs were 16 s.
const SECONDS: u32 = 16;
/// ffmpeg's video rate. The test's `shoal` (the dev profile, which this
/// workspace optimises) keeps up with 24 peers on 2 cores: 24 of 24 exact.
const BITRATE: &str = "2Mbit";
/// A whole run: about 31 s for 16 s of stream with 24 peers (they join
/// 0.2 s apart before it and linger 2 s after); run.sh's own limit is the
/// stream plus 20 s.
const DEADLINE: Duration = Duration::from_secs(120);
/// After the deadline, how long run.sh's TERM trap gets to remove its
/// namespaces before the group is killed.
const CLEANUP: Duration = Duration::from_secs(20);
/// A cone peer's first working neighbour, from its own start or the
/// stream's, whichever is later (the goal). Measured from the
/// peer's "neighbour ... working" line, or, from a binary without it, from
/// its first status line counting a neighbour, which is up to
/// [`STATUS_EVERY`] late: such a time fails only past the bound plus that.
/// Measured (2 December 2026, release and dev builds, five runs of 14 cone
/// peers): the slowest cone peer 0.45-1.53 s.
const CONE_FIRST_NEIGHBOUR: f64 = 3.0;
/// How often `shoal peer` prints its status line.
const STATUS_EVERY: f64 = 1.0;
/// The relay's forwarded bytes over (peers x stream), 4 public, 14 cone and
/// 6 symmetric peers. Measured: 0.80-0.82 when issue 17 was filed (its goal
/// 0.45); 0.353-0.361 on 2 December 2026 (five runs); 0.25-0.27 on 4
/// December before a peer few can reach asked its neighbours for more
/// clubs, and 0.20-0.31 after (15 release runs, median 0.24; 0.231 in a
/// debug build); 0.205-0.263 on 6 December (six runs, median 0.244), and
/// 0.167-0.216 once such a peer asks any neighbour for a club it is not a
/// member of (3bd1153, six runs, median 0.177).
/// Issue 20's goal is 0.25; one run varies by a few
/// hundredths either way, so the bound leaves room for that and a loaded
/// machine, and still fails the figures of 2 December.
const MIXED_RELAY_SHARE: f64 = 0.35;
/// The same with 24 public peers: the goal (0.32 when it was
/// filed). Measured (three runs): 0.166-0.175 on 2 December; 0.078-0.132
/// on 6 December (six runs, median 0.083); 0.077-0.089 from 3bd1153 (six
/// runs, median 0.079).
const PUBLIC_RELAY_SHARE: f64 = 0.32;

/// One lab run: peers of each kind and the bound on the relay's share.
struct Lab {
    public: u32,
    cone: u32,
    symmetric: u32,
    relay_share_max: f64,
}

/// The lab runs one at a time: two at once would share 2 cores between
/// 48 peers and two encoders.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn four_public_fourteen_cone_six_symmetric_peers_reach_the_goals() {
    check(&Lab {
        public: 4,
        cone: 14,
        symmetric: 6,
        relay_share_max: MIXED_RELAY_SHARE,
    });
}

#[test]
fn twenty_four_public_peers_keep_the_relay_share_low() {
    check(&Lab {
        public: 24,
        cone: 0,
        symmetric: 0,
        relay_share_max: PUBLIC_RELAY_SHARE,
    });
}

/// Runs `lab` and checks its report; fails with every failure listed.
fn check(lab: &Lab) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
        .args(["--public", &lab.public.to_string()])
        .args(["--cone", &lab.cone.to_string()])
        .args(["--symmetric", &lab.symmetric.to_string()])
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
    let peers = (lab.public + lab.cone + lab.symmetric) as usize;
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

    let expected = LinkTable::expected()
        .cells()
        .map(|(a, b, yes)| ((a.to_string(), b.to_string()), yes));
    // Only kinds that ran can be compared.
    let ran = |kind: &str| report.peers.iter().any(|p| p.kind == kind);
    let expected = expected.filter(|((a, b), _)| ran(a) && ran(b)).collect();
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

    if report.relay_share_forwarded > lab.relay_share_max {
        failures.push(format!(
            "the relay forwarded {:.3} x peers x stream (all UDP {:.3} x), more than {}",
            report.relay_share_forwarded, report.relay_share_udp, lab.relay_share_max
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
