//! Faults with real processes on loopback: `shoal publish` pacing a
//! generated MPEG-TS file, `shoal relay`s, and a few `shoal watch` viewers
//! writing files, while a relay dies.
//!
//! - `restart`: the relay is SIGKILLed mid-stream and started again on the
//!   same address. Nobody else is restarted; the viewers' output resumes
//!   within 2 s of the restart.
//! - `upstream_lost`: the publisher sends to relays A and B, relay C takes
//!   the stream from A (then B), the viewers watch C. A is SIGKILLed; C
//!   fails over to B and the viewers' output stalls for at most 2 s.
//!
//! - `publisher_restart`: the publisher is SIGKILLed mid-stream and started
//!   again with the same key, its input picking up later (as a restarted
//!   encoder would); the viewers continue into the new run within 2 s.
//! - `replayed_recording`: a recording of an earlier run is replayed to a
//!   fresh relay before the live publisher starts; the viewers get the
//!   whole live stream.
//! - `publish_outlives_relay`: the publisher starts with no relay at its
//!   address and keeps publishing (no exit, a line a second on stderr);
//!   once a socket listens there it gets datagrams within 1 s, and a
//!   `shoal relay` started there later serves a `shoal watch` the stream.
//!
//! Every output packet is one of the input's, whole and in order; what is
//! missing is one stretch, which the viewer counts as lost chunks. Each
//! test prints its figures (`--nocapture` shows them).

mod support;
#[path = "netns_loss/ts.rs"]
mod ts;

use std::fs;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use support::cli::{Growth, Proc, TempDir, keygen, lost_in, metric_sum, scrape, shoal};

/// Viewers per test.
const VIEWERS: usize = 3;
/// About 7.4 s of stream at 2 Mbit/s.
const PACKETS: usize = ts::GOP * 14;
/// The fault comes once every viewer has output this much: about 1.5 s.
const BEFORE_FAULT: u64 = (1_400 * ts::PACKET_LEN) as u64;
/// Longest any one step (a relay start, the whole stream) may take.
const STEP: Duration = Duration::from_secs(25);
/// The viewers' output must resume within this after the fault.
const RESUME_LIMIT: Duration = Duration::from_secs(2);
/// A publisher sends to a relay that is back within its longest retry
/// (1 s), plus scheduling slack.
const RETRY_LIMIT: Duration = Duration::from_millis(1500);
/// A viewer that joins a relay which just came back plays within this.
const PLAY_LIMIT: Duration = Duration::from_secs(5);

#[test]
fn restart() {
    let run = Run::new("restart");
    let mut relay = run.relay("relay", "127.0.0.1:0", &[]);
    let addr = relay.logged_addr("addr", STEP).to_string();
    let mut viewers = run.viewers(&addr);
    let mut publish = run.publish(&[&addr]);
    let mut growth = Growth::new(run.outputs());
    growth.until("every viewer plays", STEP, |g| {
        (0..VIEWERS).all(|i| g.len(i) >= BEFORE_FAULT)
    });

    relay.kill();
    let killed = Instant::now();
    // Same address, so nobody has to be told.
    let relay = run.relay("relay-again", &addr, &[]);
    let restarted = Instant::now();
    growth.until("the relay listens again", STEP, |_| {
        relay.stderr().contains("relay listening")
    });
    let listening = restarted.elapsed();
    growth.until("every viewer ends", STEP, |_| {
        viewers.iter_mut().all(Proc::exited)
    });
    publish.wait_success(STEP);
    let published = publish.stderr();
    let sent_failed = published
        .lines()
        .rev()
        .find(|l| l.starts_with("shoal: done"))
        .unwrap_or_default()
        .to_owned();

    let input = run.input();
    for (i, viewer) in viewers.iter_mut().enumerate() {
        viewer.wait_success(STEP);
        let report = run.check(i, viewer, &input);
        assert!(report.lost > 0, "viewer {i} signalled no gap: {report:?}");
        // The restart's gap is the first one the output passed after the
        // restart: nothing published after the kill could reach a viewer
        // before it. (A loaded machine may add others, before or after.)
        let (gap, resumed) = report
            .gaps
            .iter()
            .find_map(|g| {
                let at = growth.passed(i, g.resumed_at as u64)?;
                (at >= restarted).then(|| (*g, at - restarted))
            })
            .unwrap_or_else(|| panic!("viewer {i}: nothing missing after the restart: {report:?}"));
        let missing: usize = report.gaps.iter().map(|g| g.packets).sum();
        let (stall, _) = growth.longest_stall(i, killed);
        eprintln!(
            "faults restart: viewer {i}: gap of {} packets ({:.2} s of stream) at input packet {}; \
             output resumed {} ms after the restart (relay listening after {} ms, longest stall \
             {} ms); in all {} gap(s), {missing} packets missing, {} chunks counted lost; {}",
            gap.packets,
            ts::seconds(gap.packets),
            gap.from,
            resumed.as_millis(),
            listening.as_millis(),
            stall.as_millis(),
            report.gaps.len(),
            report.lost,
            report.status,
        );
        assert!(
            resumed <= RESUME_LIMIT,
            "viewer {i} resumed {resumed:?} after the restart"
        );
    }
    eprintln!(
        "faults restart: load {VIEWERS} viewers, 2 Mbit/s, {:.1} s of stream; relay SIGKILLed \
         {:.1} s in and restarted at once; publish: {sent_failed}",
        ts::seconds(PACKETS),
        ts::seconds(BEFORE_FAULT as usize / ts::PACKET_LEN),
    );
}

#[test]
fn upstream_lost() {
    let run = Run::new("upstream");
    let mut a = run.relay("relay-a", "127.0.0.1:0", &[]);
    let mut b = run.relay("relay-b", "127.0.0.1:0", &[]);
    let a_addr = a.logged_addr("addr", STEP).to_string();
    let b_addr = b.logged_addr("addr", STEP).to_string();
    let mut c = run.relay(
        "relay-c",
        "127.0.0.1:0",
        &[
            "--upstream",
            &a_addr,
            "--upstream",
            &b_addr,
            "--stream",
            &run.stream,
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let c_addr = c.logged_addr("addr", STEP).to_string();
    let c_metrics = c.logged_addr("metrics", STEP);
    let mut viewers = run.viewers(&c_addr);
    let mut publish = run.publish(&[&a_addr, &b_addr]);
    let mut growth = Growth::new(run.outputs());
    growth.until("every viewer plays", STEP, |g| {
        (0..VIEWERS).all(|i| g.len(i) >= BEFORE_FAULT)
    });
    let before = metric_sum(&scrape(c_metrics), "shoal_relay_upstream_failovers_total");

    a.kill();
    let killed = Instant::now();
    growth.until("every viewer ends", STEP, |_| {
        viewers.iter_mut().all(Proc::exited)
    });
    publish.wait_success(STEP);
    let metrics = scrape(c_metrics);
    let failovers = metric_sum(&metrics, "shoal_relay_upstream_failovers_total") - before;
    let subscribed = metric_sum(&metrics, "shoal_relay_upstream_subscribed");

    let input = run.input();
    for (i, viewer) in viewers.iter_mut().enumerate() {
        viewer.wait_success(STEP);
        let report = run.check(i, viewer, &input);
        let missing: usize = report.gaps.iter().map(|g| g.packets).sum();
        let (stall, ended) = growth.longest_stall(i, killed);
        let resumed = ended.map_or(Duration::ZERO, |t| t.saturating_duration_since(killed));
        eprintln!(
            "faults upstream_lost: viewer {i}: {} gaps, {missing} packets ({:.2} s of stream) \
             missing, {} chunks counted lost; longest output stall {} ms, ending {} ms after \
             the kill; {}",
            report.gaps.len(),
            ts::seconds(missing),
            report.lost,
            stall.as_millis(),
            resumed.as_millis(),
            report.status,
        );
        assert_eq!(
            report.gaps.is_empty(),
            report.lost == 0,
            "viewer {i}: what is missing and what is counted lost disagree: {report:?}"
        );
        assert!(
            stall <= RESUME_LIMIT,
            "viewer {i}: output stalled {stall:?} after the upstream died"
        );
        assert!(
            ts::seconds(missing) <= RESUME_LIMIT.as_secs_f64(),
            "viewer {i}: {missing} packets lost"
        );
    }
    eprintln!(
        "faults upstream_lost: load {VIEWERS} viewers on C, 2 Mbit/s, {:.1} s of stream; \
         upstream A SIGKILLed {:.1} s in; C: {failovers} failover(s), upstream subscribed {subscribed}",
        ts::seconds(PACKETS),
        ts::seconds(BEFORE_FAULT as usize / ts::PACKET_LEN),
    );
    assert!(failovers >= 1, "C counted no failover:\n{metrics}");
    assert_eq!(subscribed, 1, "C is subscribed to B:\n{metrics}");
    drop((b, c));
}

/// Where the restarted publisher's input starts: a GOP boundary well
/// after anything the first run could have sent before the kill (about
/// 2 s of stream), as a live encoder restarted a moment later would.
const RESTART_AT: usize = ts::GOP * 6;

#[test]
fn publisher_restart() {
    let run = Run::new("pubrestart");
    let mut relay = run.relay("relay", "127.0.0.1:0", &[]);
    let addr = relay.logged_addr("addr", STEP).to_string();
    let mut viewers = run.viewers(&addr);
    let mut first = run.publish(&[&addr]);
    let mut growth = Growth::new(run.outputs());
    growth.until("every viewer plays", STEP, |g| {
        (0..VIEWERS).all(|i| g.len(i) >= BEFORE_FAULT)
    });
    first.kill();
    let input = run.input();
    fs::write(
        run.dir.path("rest.ts"),
        &input[RESTART_AT * ts::PACKET_LEN..],
    )
    .expect("write the rest");
    let mut second = run.publish_file("rest.ts", &[&addr]);
    let restarted = Instant::now();
    growth.until("every viewer ends", STEP, |_| {
        viewers.iter_mut().all(Proc::exited)
    });
    second.wait_success(STEP);
    for (i, viewer) in viewers.iter_mut().enumerate() {
        viewer.wait_success(STEP);
        let report = run.check(i, viewer, &input);
        assert!(
            viewer.stderr().contains("shoal: the publisher restarted"),
            "viewer {i} did not say the publisher restarted:\n{}",
            viewer.stderr()
        );
        // The new run shows as the first gap ending at or after it.
        let gap = report
            .gaps
            .iter()
            .find(|g| g.from + g.packets >= RESTART_AT)
            .unwrap_or_else(|| panic!("viewer {i}: no gap before the new run: {report:?}"));
        let resumed = growth
            .passed(i, gap.resumed_at as u64)
            .map(|at| at.saturating_duration_since(restarted))
            .unwrap_or_else(|| panic!("viewer {i}: the new run never played"));
        eprintln!(
            "faults publisher_restart: viewer {i}: gap of {} packets ({:.2} s of stream) at \
             input packet {}; the new run played {} ms after the publisher restarted; {} \
             gap(s) in all, {} chunks counted lost; {}",
            gap.packets,
            ts::seconds(gap.packets),
            gap.from,
            resumed.as_millis(),
            report.gaps.len(),
            report.lost,
            report.status,
        );
        assert!(
            resumed <= RESUME_LIMIT,
            "viewer {i} played the new run {resumed:?} after the restart"
        );
    }
    drop(relay);
}

/// A recorder on loopback: what `shoal publish` sends it, until `limit`.
fn record(socket: &UdpSocket, limit: Duration) -> Vec<Vec<u8>> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    while start.elapsed() < limit {
        if let Ok(n) = socket.recv(&mut buf) {
            out.push(buf[..n].to_vec());
        }
    }
    out
}

#[test]
fn replayed_recording() {
    let run = Run::new("replay");
    let input = run.input();
    // An earlier run, of other stream content, recorded for about 1.2 s
    // and stopped before its end (no END_OF_STREAM in the recording).
    fs::write(
        run.dir.path("earlier.ts"),
        &input[ts::GOP * 10 * ts::PACKET_LEN..],
    )
    .expect("write the earlier input");
    let recorder = UdpSocket::bind("127.0.0.1:0").expect("bind the recorder");
    let rec_addr = recorder.local_addr().expect("addr").to_string();
    let mut earlier = run.publish_file("earlier.ts", &[&rec_addr]);
    let recording = record(&recorder, Duration::from_millis(1_200));
    earlier.kill();
    assert!(recording.len() > 300, "recorded {}", recording.len());

    let mut relay = run.relay("relay", "127.0.0.1:0", &["--metrics", "127.0.0.1:0"]);
    let addr = relay.logged_addr("addr", STEP);
    let metrics = relay.logged_addr("metrics", STEP);
    for d in &recording {
        recorder.send_to(d, addr).expect("replay");
        // Paced like the stream, roughly, so the relay's socket keeps up.
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut viewers = run.viewers(&addr.to_string());
    let mut live = run.publish(&[&addr.to_string()]);
    let mut growth = Growth::new(run.outputs());
    growth.until("every viewer ends", STEP, |_| {
        viewers.iter_mut().all(Proc::exited)
    });
    live.wait_success(STEP);
    let text = scrape(metrics);
    for (i, viewer) in viewers.iter_mut().enumerate() {
        viewer.wait_success(STEP);
        let output = fs::read(run.dir.path(&format!("out{i}.ts"))).expect("read an output");
        let before = output.len().saturating_sub(input.len());
        eprintln!(
            "faults replayed_recording: viewer {i}: {} bytes of the replayed recording, then \
             the live stream ({} bytes); {}",
            before,
            input.len(),
            viewer.last_status(),
        );
        assert!(
            output.ends_with(&input),
            "viewer {i} did not get the whole live stream ({} bytes out, {} in)",
            output.len(),
            input.len()
        );
    }
    eprintln!(
        "faults replayed_recording: {} datagrams of an earlier run replayed to a fresh relay; \
         relay drops: replayed {}, stale {}",
        recording.len(),
        metric_sum(&text, "shoal_relay_drops_total{reason=\"replayed\"}"),
        metric_sum(&text, "shoal_relay_drops_total{reason=\"stale\"}"),
    );
}

#[test]
fn publish_outlives_relay() {
    // About 12.6 s of stream: the outage takes 5 s of it.
    let run = Run::with_packets("outage", ts::GOP * 24);
    // A port with nothing on it: the kernel answers ICMP port unreachable.
    let addr = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .to_string();
    let started = Instant::now();
    let mut publish = run.publish(&[&addr]);
    // Past the three seconds after which publish used to give up.
    publish.wait_for_stderr("unreachable for 4 s; still publishing, retrying", STEP);

    // Something listens again: datagrams flow within the longest retry.
    let listener = UdpSocket::bind(&addr).expect("take the relay's port");
    listener
        .set_read_timeout(Some(STEP))
        .expect("a read timeout");
    let back = Instant::now();
    let mut buf = [0; 2048];
    listener.recv(&mut buf).expect("a datagram from publish");
    let resumed = back.elapsed();
    drop(listener);

    // A real relay there serves a viewer the stream.
    let mut relay = run.relay("relay", &addr, &[]);
    relay.wait_for_stderr("relay listening", STEP);
    let listening = Instant::now();
    let out = run.dir.path("late.ts");
    let mut cmd = shoal(&["watch", "--stream", &run.stream, "--relay", &addr]);
    cmd.arg("--output").arg(&out);
    let mut viewer = Proc::spawn("watch", &mut cmd, &run.dir);
    let mut growth = Growth::new(vec![out.clone()]);
    growth.until("the late viewer plays", STEP, |g| {
        g.len(0) >= BEFORE_FAULT / 4
    });
    let played = listening.elapsed();
    assert!(
        !publish.exited(),
        "publish ended early:\n{}",
        publish.stderr()
    );

    publish.wait_success(STEP);
    viewer.wait_success(STEP);
    let input = run.input();
    let output = fs::read(&out).expect("read the output");
    let runs = ts::runs(&input, &output).unwrap_or_else(|why| panic!("corrupt output: {why}"));
    let status = viewer.last_status();
    let published = publish.stderr();
    let outage_lines = published
        .lines()
        .filter(|l| l.contains("still publishing, retrying"))
        .count();
    eprintln!(
        "faults publish_outlives_relay: 1 viewer, 2 Mbit/s, {:.1} s of stream; no relay for \
         the first {:.1} s; datagrams again {} ms after a socket listened; viewer output {} ms \
         after the relay listened; {} run(s) of output, {} packets; {outage_lines} outage \
         line(s); viewer: {status}; publish: {}",
        ts::seconds(run.packets),
        (listening - started).as_secs_f64(),
        resumed.as_millis(),
        played.as_millis(),
        runs.len(),
        runs.iter().map(|r| r.packets).sum::<usize>(),
        published
            .lines()
            .rev()
            .find(|l| l.starts_with("shoal: done"))
            .unwrap_or_default(),
    );
    assert!(
        resumed <= RETRY_LIMIT,
        "publish resumed {resumed:?} after the relay's port listened"
    );
    assert!(
        played <= PLAY_LIMIT,
        "the viewer played {played:?} after the relay listened"
    );
    assert!(outage_lines >= 4, "a line a second:\n{published}");
    assert_eq!(lost_in(&status), 0, "{status}");
}

/// One test's files and stream.
struct Run {
    dir: TempDir,
    stream: String,
    /// TS packets in the input.
    packets: usize,
}

/// What one viewer's output shows.
#[derive(Debug)]
struct Report {
    gaps: Vec<Gap>,
    /// Chunks the viewer counted lost.
    lost: u64,
    status: String,
}

/// Input packets missing from the output.
#[derive(Debug, Clone, Copy)]
struct Gap {
    /// The first missing packet's index in the input.
    from: usize,
    packets: usize,
    /// Output offset of the first packet after it.
    resumed_at: usize,
}

impl Run {
    fn new(name: &str) -> Self {
        Self::with_packets(name, PACKETS)
    }

    fn with_packets(name: &str, packets: usize) -> Self {
        let dir = TempDir::create(&format!("shoal-faults-{name}-{}", std::process::id()));
        fs::write(dir.path("input.ts"), ts::stream(packets)).expect("write the input");
        let stream = keygen(&dir.path("key"));
        Self {
            dir,
            stream,
            packets,
        }
    }

    fn input(&self) -> Vec<u8> {
        fs::read(self.dir.path("input.ts")).expect("read the input")
    }

    fn outputs(&self) -> Vec<std::path::PathBuf> {
        (0..VIEWERS)
            .map(|i| self.dir.path(&format!("out{i}.ts")))
            .collect()
    }

    fn relay(&self, name: &str, listen: &str, extra: &[&str]) -> Proc {
        let mut cmd = shoal(&["relay", "--listen", listen, "--workers", "1", "--no-pin"]);
        if !extra.contains(&"--metrics") {
            cmd.args(["--metrics", "off"]);
        }
        Proc::spawn(name, cmd.args(extra), &self.dir)
    }

    /// `VIEWERS` viewers of `relay`, each subscribed (not --quiet: the
    /// status line counts what was lost).
    fn viewers(&self, relay: &str) -> Vec<Proc> {
        let mut viewers: Vec<Proc> = self
            .outputs()
            .iter()
            .enumerate()
            .map(|(i, out)| {
                let mut cmd = shoal(&["watch", "--stream", &self.stream, "--relay", relay]);
                cmd.arg("--output").arg(out);
                Proc::spawn(&format!("watch{i}"), &mut cmd, &self.dir)
            })
            .collect();
        for v in &mut viewers {
            v.wait_for_stderr("shoal: subscribed", STEP);
        }
        viewers
    }

    fn publish(&self, relays: &[&str]) -> Proc {
        self.publish_file("input.ts", relays)
    }

    /// `shoal publish` of the file `name` in the test's directory.
    fn publish_file(&self, name: &str, relays: &[&str]) -> Proc {
        let mut cmd = shoal(&["publish", "--input"]);
        cmd.arg(self.dir.path(name))
            .arg("--key")
            .arg(self.dir.path("key"));
        for r in relays {
            cmd.args(["--relay", r]);
        }
        Proc::spawn(&format!("publish-{name}"), &mut cmd, &self.dir)
    }

    /// Checks viewer `i`'s output against the input: every packet the
    /// input's, in order, from the first packet to the last.
    fn check(&self, i: usize, viewer: &Proc, input: &[u8]) -> Report {
        let output = fs::read(self.dir.path(&format!("out{i}.ts"))).expect("read an output");
        let runs = ts::runs(input, &output)
            .unwrap_or_else(|why| panic!("viewer {i} output corrupt data: {why}"));
        let first = runs.first().expect("some output");
        let last = runs.last().expect("some output");
        assert_eq!(first.first, 0, "viewer {i} started at the first packet");
        assert_eq!(last.end(), self.packets, "viewer {i} played to the end");
        let gaps = runs
            .windows(2)
            .map(|w| Gap {
                from: w[0].end(),
                packets: w[1].first - w[0].end(),
                resumed_at: w[1].out_at,
            })
            .collect();
        let status = viewer.last_status();
        Report {
            gaps,
            lost: lost_in(&status),
            status,
        }
    }
}
