//! Discovery over the Mainline DHT with real processes, against a local
//! DHT: the `mainline` crate's testnet of 8 nodes in this process, bound
//! to 127.0.0.1. Every role is given `--dht-bootstrap` with those nodes
//! only, so no datagram leaves loopback.
//!
//! - `publish_resolve_join_play`: `shoal publish` stores its record,
//!   `shoal relay --announce` announces itself, and `shoal watch --stream
//!   ID` (no `--relay`) finds the relay, says which it joined, and plays
//!   the stream to its end; so does `shoal peer --stream ID`. Prints the
//!   time from `shoal watch`'s start to its first output.
//! - `relay_churn`: two announced relays and a publisher with `--no-dht`
//!   (the announcements alone find them); the relay the viewer joined is
//!   SIGKILLed and the viewer moves to the other one and plays on.
//! - `forged_record_refused`: a rogue DHT node answers the record lookup
//!   with a record under the stream's key, newer than the real one, that
//!   names a trap address but whose signature does not verify. The viewer
//!   says it ignored it, never sends to the trap, and plays from the real
//!   relay.

mod support;
#[path = "netns_loss/ts.rs"]
mod ts;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mainline::{MutableItem, Testnet};
use shoal_proto::entry::{EntryRecord, RECORD_SALT};
use support::cli::{Growth, Proc, TempDir, keygen, lost_in, shoal};

/// About 7.4 s of stream at 2 Mbit/s.
const PACKETS: usize = ts::GOP * 14;
/// Longest any one step may take.
const STEP: Duration = Duration::from_secs(25);
/// The output may stall this long when the viewer's relay dies.
const MOVE_LIMIT: Duration = Duration::from_secs(3);

#[test]
fn publish_resolve_join_play() {
    let run = Run::new("play");
    let mut relay = run.relay("relay");
    let addr = relay.logged_addr("addr", STEP);
    let mut publish = run.publish(&[addr], true);
    publish.wait_for_stderr("stored the stream's entry points on the DHT", STEP);
    relay.wait_for_stderr("announced on the DHT", STEP);

    let started = Instant::now();
    let mut viewer = run.watch("watch", &[]);
    let mut growth = Growth::new(vec![run.dir.path("watch.ts")]);
    growth.until("the viewer outputs", STEP, |g| g.len(0) > 0);
    let first_output = started.elapsed();
    let mut peer = run.role("peer", "peer", &[]);
    viewer.wait_success(STEP);
    peer.wait_success(STEP);
    publish.wait_success(STEP);
    let peer_said = peer.stderr();
    assert!(
        peer_said.contains(&format!("joining relay {addr} ")),
        "the peer found the relay on the DHT too:\n{peer_said}"
    );
    let peer_report = run.check("peer", &peer);
    assert_eq!(
        peer_report.gaps, 0,
        "the peer lost nothing: {peer_report:?}"
    );

    let said = viewer.stderr();
    assert!(
        said.contains(&format!("joining relay {addr} "))
            && said.contains("from the publisher's DHT record, seq "),
        "the viewer says which relay it joined, and how it was found:\n{said}"
    );
    let report = run.check("watch", &viewer);
    assert_eq!(report.gaps, 0, "nothing lost: {report:?}");
    eprintln!(
        "dht publish_resolve_join_play: first output {} ms after `shoal watch --stream ID` \
         started (local DHT of 8 nodes, {:.1} s stream); {report:?}; the viewer said: {}",
        first_output.as_millis(),
        ts::seconds(PACKETS),
        said.lines()
            .find(|l| l.contains("joining relay"))
            .unwrap_or_default()
    );
}

#[test]
fn relay_churn() {
    let run = Run::new("churn");
    let mut a = run.relay("relay-a");
    let mut b = run.relay("relay-b");
    let a_addr = a.logged_addr("addr", STEP);
    let b_addr = b.logged_addr("addr", STEP);
    // No record: the relays' announcements alone must do.
    let mut publish = run.publish(&[a_addr, b_addr], false);
    a.wait_for_stderr("announced on the DHT", STEP);
    b.wait_for_stderr("announced on the DHT", STEP);

    let mut viewer = run.watch("watch", &[]);
    viewer.wait_for_stderr("joining relay", STEP);
    let said = viewer.stderr();
    let (mut joined, other, other_addr) = if said.contains(&format!("joining relay {a_addr} ")) {
        (a, b, b_addr)
    } else {
        (b, a, a_addr)
    };
    assert!(
        said.contains("from a relay's DHT announcement") && said.contains("1 more to fall back on"),
        "found both relays by their announcements:\n{said}"
    );
    let mut growth = Growth::new(vec![run.dir.path("watch.ts")]);
    growth.until("the viewer plays 1.5 s", STEP, |g| {
        g.len(0) >= (1_400 * ts::PACKET_LEN) as u64
    });

    joined.kill();
    let killed = Instant::now();
    viewer.wait_for_stderr(&format!("moved to relay {other_addr}"), STEP);
    let moved = killed.elapsed();
    growth.until("the viewer ends", STEP, |_| viewer.exited());
    viewer.wait_success(STEP);
    publish.wait_success(STEP);
    let (stall, _) = growth.longest_stall(0, killed);
    let report = run.check("watch", &viewer);
    eprintln!(
        "dht relay_churn: moved {} ms after the kill; longest output stall {} ms; {report:?}",
        moved.as_millis(),
        stall.as_millis()
    );
    assert!(stall <= MOVE_LIMIT, "output stalled {stall:?}");
    drop(other);
}

#[test]
fn forged_record_refused() {
    let run = Run::new("forged");
    let mut relay = run.relay("relay");
    let addr = relay.logged_addr("addr", STEP);
    let mut publish = run.publish(&[addr], true);
    publish.wait_for_stderr("stored the stream's entry points on the DHT", STEP);

    let trap = UdpSocket::bind("127.0.0.1:0").expect("bind the trap");
    trap.set_nonblocking(true).expect("nonblocking");
    let trap_addr = trap.local_addr().expect("trap addr");
    let rogue = Rogue::start(&run.key, trap_addr);
    let mut viewer = run.watch("watch", &["--dht-bootstrap", &rogue.addr.to_string()]);
    viewer.wait_success(STEP);
    publish.wait_success(STEP);

    let said = viewer.stderr();
    let asked = rogue.stop();
    assert!(asked > 0, "the rogue node was asked for the record");
    assert!(
        said.contains("carrying a record that fails BEP 44 validation"),
        "the forged record is ignored with its reason:\n{said}"
    );
    assert!(
        said.contains(&format!("joining relay {addr} ")),
        "joined the real relay:\n{said}"
    );
    let mut buf = [0u8; 64];
    assert!(
        trap.recv_from(&mut buf).is_err(),
        "nothing was sent to the forged entry point"
    );
    let report = run.check("watch", &viewer);
    assert_eq!(report.gaps, 0, "nothing lost: {report:?}");
}

#[test]
fn errors_name_the_fix() {
    let run = Run::new("errors");
    let flags = |extra: &[&str]| -> (bool, String) {
        let mut args = vec!["watch", "--stream", run.stream.as_str()];
        args.extend_from_slice(extra);
        let (status, err, _) = support::cli::run(&args, STEP);
        (status.success(), err)
    };
    let (ok, err) = flags(&["--no-dht"]);
    assert!(
        !ok && err.contains("--no-dht without --relay: give --relay ADDR"),
        "{err}"
    );
    let (ok, err) = flags(&["--dht-bootstrap", "nowhere"]);
    assert!(
        !ok && err.contains("--dht-bootstrap \"nowhere\": not HOST:PORT"),
        "{err}"
    );
    // Nobody publishes or announces this stream on the local DHT.
    let mut bootstrap: Vec<&str> = Vec::new();
    for b in &run.bootstrap {
        bootstrap.extend(["--dht-bootstrap", b.as_str()]);
    }
    let (ok, err) = flags(&bootstrap);
    assert!(
        !ok && err.contains("the DHT has no record of it and no relay announced for it"),
        "{err}"
    );
    support::cli::assert_one_line(&err, "give --relay ADDR");
}

/// One test's DHT, files and stream.
struct Run {
    dir: TempDir,
    key: std::path::PathBuf,
    stream: String,
    _testnet: Testnet,
    bootstrap: Vec<String>,
}

/// What a viewer's output shows.
#[derive(Debug)]
#[expect(dead_code, reason = "printed with {:?}")]
struct Report {
    /// Runs of input packets it is made of, less one.
    gaps: usize,
    /// The input packet it starts at (it joined mid-stream).
    first: usize,
    lost: u64,
}

impl Run {
    fn new(name: &str) -> Self {
        let dir = TempDir::create(&format!("shoal-dht-{name}-{}", std::process::id()));
        fs::write(dir.path("input.ts"), ts::stream(PACKETS)).expect("write the input");
        let key = dir.path("key");
        let stream = keygen(&key);
        let testnet = Testnet::builder(8).build().expect("a local DHT");
        let bootstrap = testnet.bootstrap.clone();
        assert!(
            bootstrap.iter().all(|b| b.starts_with("127.0.0.1:")),
            "the testnet is on loopback: {bootstrap:?}"
        );
        Self {
            dir,
            key,
            stream,
            _testnet: testnet,
            bootstrap,
        }
    }

    fn dht_flags(&self, cmd: &mut std::process::Command) {
        for b in &self.bootstrap {
            cmd.args(["--dht-bootstrap", b]);
        }
    }

    fn relay(&self, name: &str) -> Proc {
        let mut cmd = shoal(&[
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--no-pin",
            "--metrics",
            "off",
            "--announce",
        ]);
        self.dht_flags(&mut cmd);
        Proc::spawn(name, &mut cmd, &self.dir)
    }

    /// Publishes the input to `relays`, storing a record unless not `record`.
    fn publish(&self, relays: &[SocketAddr], record: bool) -> Proc {
        let mut cmd = shoal(&["publish", "--input"]);
        cmd.arg(self.dir.path("input.ts"))
            .arg("--key")
            .arg(&self.key);
        for r in relays {
            cmd.args(["--relay", &r.to_string()]);
        }
        if record {
            self.dht_flags(&mut cmd);
        } else {
            cmd.arg("--no-dht");
        }
        Proc::spawn("publish", &mut cmd, &self.dir)
    }

    /// `shoal watch --stream ID` through the DHT, to `NAME.ts`; `extra`
    /// bootstrap flags come first.
    fn watch(&self, name: &str, extra: &[&str]) -> Proc {
        self.role("watch", name, extra)
    }

    /// `shoal ROLE --stream ID` (watch or peer) through the DHT, to
    /// `NAME.ts`; `extra` bootstrap flags come first.
    fn role(&self, role: &str, name: &str, extra: &[&str]) -> Proc {
        let mut cmd = shoal(&[role, "--stream", &self.stream]);
        cmd.args(extra);
        self.dht_flags(&mut cmd);
        cmd.arg("--output")
            .arg(self.dir.path(&format!("{name}.ts")));
        Proc::spawn(name, &mut cmd, &self.dir)
    }

    /// Checks the output against the input: whole input packets, in
    /// order, to the end of the stream; what is missing was counted lost.
    fn check(&self, name: &str, viewer: &Proc) -> Report {
        let input = fs::read(self.dir.path("input.ts")).expect("read the input");
        let output = fs::read(self.dir.path(&format!("{name}.ts"))).expect("read the output");
        let runs = ts::runs(&input, &output)
            .unwrap_or_else(|why| panic!("{name} output corrupt data: {why}"));
        let first = runs.first().expect("some output");
        let last = runs.last().expect("some output");
        assert_eq!(last.end(), PACKETS, "{name} played to the end");
        let lost = lost_in(&viewer.last_status());
        let report = Report {
            gaps: runs.len() - 1,
            first: first.first,
            lost,
        };
        assert_eq!(
            report.gaps == 0,
            lost == 0,
            "{name}: what is missing and what is counted lost disagree: {report:?}"
        );
        report
    }
}

/// A rogue DHT node on loopback: it answers every query, and answers the
/// lookup of the stream's record with a forged one.
struct Rogue {
    addr: SocketAddr,
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<usize>,
}

impl Rogue {
    fn start(key: &std::path::Path, trap: SocketAddr) -> Self {
        let stream = shoal_relay::roles::keygen::load_key(key)
            .expect("read the stream key")
            .stream_id();
        let target = MutableItem::target_from_key(&stream.0, Some(RECORD_SALT));
        let record = EntryRecord {
            descriptor_hash: [0; 32],
            expires: u64::MAX / 2,
            entry_points: vec![trap],
        }
        .encode()
        .expect("encode");
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the rogue");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // Closest possible to the record's target: it is always asked.
            let id: [u8; 20] = *target.as_bytes();
            let mut asked = 0;
            let mut buf = [0u8; 2048];
            while stopped.try_recv().is_err() {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Some(Query {
                    t,
                    method,
                    target: wants,
                }) = krpc_query(&buf[..n])
                else {
                    continue;
                };
                let mut r = Vec::new();
                r.extend_from_slice(b"d1:rd2:id20:");
                r.extend_from_slice(&id);
                if method == b"get" && wants == Some(*target.as_bytes()) {
                    asked += 1;
                    // Under the stream's key, newer than any real record,
                    // with a signature that is not the key's.
                    r.extend_from_slice(b"1:k32:");
                    r.extend_from_slice(&stream.0);
                    r.extend_from_slice(b"5:nodes0:3:seqi9000000000000000e3:sig64:");
                    r.extend_from_slice(&[0x5a; 64]);
                    r.extend_from_slice(b"5:token4:rogu1:v");
                    r.extend_from_slice(format!("{}:", record.len()).as_bytes());
                    r.extend_from_slice(&record);
                } else {
                    r.extend_from_slice(b"5:nodes0:5:token4:rogu");
                }
                r.extend_from_slice(format!("e1:t{}:", t.len()).as_bytes());
                r.extend_from_slice(&t);
                r.extend_from_slice(b"1:y1:re");
                let _ = socket.send_to(&r, from);
            }
            asked
        });
        Self { addr, stop, thread }
    }

    /// Stops it; how many times it was asked for the record.
    fn stop(self) -> usize {
        let _ = self.stop.send(());
        self.thread.join().expect("the rogue node")
    }
}

/// The parts of a KRPC query the rogue node needs.
struct Query {
    /// Transaction id, echoed in the answer.
    t: Vec<u8>,
    /// Method: ping, find_node, get, get_peers...
    method: Vec<u8>,
    /// The `target` argument, if any.
    target: Option<[u8; 20]>,
}

/// A KRPC query, if `bytes` is one.
fn krpc_query(bytes: &[u8]) -> Option<Query> {
    use serde_bencode::value::Value;
    let Value::Dict(top) = serde_bencode::from_bytes::<Value>(bytes).ok()? else {
        return None;
    };
    let bytes_of = |v: Option<&Value>| match v {
        Some(Value::Bytes(b)) => Some(b.clone()),
        _ => None,
    };
    let target = match top.get(b"a".as_slice()) {
        Some(Value::Dict(a)) => {
            bytes_of(a.get(b"target".as_slice())).and_then(|b| b.try_into().ok())
        }
        _ => None,
    };
    Some(Query {
        t: bytes_of(top.get(b"t".as_slice()))?,
        method: bytes_of(top.get(b"q".as_slice()))?,
        target,
    })
}
