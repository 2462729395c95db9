//! Running the `shoal` binary as a user does, for the CLI tests.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use shoal_relay::io::BackendKind;
use shoal_relay::server::Server;

use super::{Source, metrics_until, settings, start, sum};

/// `shoal ARGS` with no stdin, stdout discarded and stderr captured.
pub fn shoal(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Waits (bounded) for `child` to exit; kills it and fails if it does not.
pub fn wait(child: &mut Child, limit: Duration, what: &str) -> (ExitStatus, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: shoal did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut err).expect("stderr");
    }
    (status, err)
}

/// Runs `shoal ARGS` to its exit (within `limit`): status, stderr, time.
pub fn run(args: &[&str], limit: Duration) -> (ExitStatus, String, Duration) {
    let t0 = Instant::now();
    let mut child = shoal(args).spawn().expect("run shoal");
    let (status, err) = wait(&mut child, limit, &format!("{args:?}"));
    (status, err, t0.elapsed())
}

/// The printable id of the stream keyed by `[seed; 32]`.
pub fn stream_id(seed: u8) -> String {
    shoal_proto::integrity::PublisherKey::from_seed([seed; 32])
        .stream_id()
        .to_string()
}

/// `shoal ROLE` (watch or peer) with a malformed `--stream` fails with one
/// line naming it and what a stream id looks like.
pub fn assert_bad_stream_named(role: &str) {
    let (status, err, _) = run(
        &[role, "--stream", "x", "--relay", "127.0.0.1:7400"],
        Duration::from_secs(5),
    );
    assert!(!status.success());
    assert_one_line(
        &err,
        "--stream \"x\": not a stream id (52 base32 characters, as printed by shoal keygen)",
    );
}

/// `shoal ROLE` (watch or peer) with each kind of bad `--relay` fails with
/// one line naming it and the fix; `stream` is a valid id.
pub fn assert_bad_relay_named(role: &str, stream: &str) {
    for relay in [
        "nowhere",
        "127.0.0.1",
        "http://127.0.0.1:7400",
        "127.0.0.1:0",
    ] {
        let (status, err, _) = run(
            &[role, "--stream", stream, "--relay", relay],
            Duration::from_secs(5),
        );
        assert!(!status.success(), "{relay} must fail");
        assert_one_line(&err, &format!("--relay {relay:?}"));
        assert!(err.contains("HOST:PORT"), "the fix is given: {err}");
    }
}

/// `shoal ROLE` (watch or peer) for `stream` at 127.0.0.1:7400, plus
/// `extra`, run to its exit (within 5 s): for flags refused before any
/// relay is asked.
pub fn client_with(role: &str, stream: &str, extra: &[&str]) -> (ExitStatus, String, Duration) {
    let mut args = vec![role, "--stream", stream, "--relay", "127.0.0.1:7400"];
    args.extend_from_slice(extra);
    run(&args, Duration::from_secs(5))
}

/// `shoal ROLE` (watch or peer) at a relay that never answers gives up
/// within 6 s with one line naming it; `stream` is a valid id.
pub fn assert_silent_relay_gives_up(role: &str, stream: &str) {
    // Bound, so nothing else takes the port, and never read.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr").to_string();
    let ran = run(
        &[role, "--stream", stream, "--relay", &addr, "--quiet"],
        Duration::from_secs(10),
    );
    drop(silent);
    assert_gave_up(
        ran,
        &format!("no answer from relay {addr} in 5 s; is shoal relay running there?"),
        Duration::from_secs(7),
    );
}

/// `shoal ROLE` (watch or peer) with `--wait 1s` on a stream nobody
/// publishes fails after the wait with one line saying so. A real relay
/// holds subscriptions to streams that have not started, so an unknown id
/// shows as a stream that never starts.
pub fn assert_unpublished_stream_gives_up(role: &str, stream: &str) {
    let server = start(&settings(BackendKind::Auto, 1));
    let addr = server.local_addr().to_string();
    let ran = run(
        &[
            role, "--stream", stream, "--relay", &addr, "--wait", "1s", "--quiet",
        ],
        Duration::from_secs(10),
    );
    server.shutdown();
    assert_gave_up(
        ran,
        &format!("stream {stream} has not started on relay {addr}"),
        Duration::from_secs(5),
    );
}

/// That a [`run`] of `shoal` failed, within `within`, with one line
/// holding `message`.
pub fn assert_gave_up(ran: (ExitStatus, String, Duration), message: &str, within: Duration) {
    let (status, err, took) = ran;
    assert!(!status.success());
    assert_one_line(&err, message);
    assert!(took < within, "gave up in {took:?}");
}

/// Publishes a short stream from `source` through `server` to the `shoal`
/// client `child` (`who`) once it has subscribed: four blocks, then the
/// end. Returns the client's exit status and stderr (it must exit within
/// 15 s).
pub fn publish_to(
    server: &Server,
    source: &mut Source,
    child: &mut Child,
    who: &str,
) -> (ExitStatus, String) {
    metrics_until(server, &format!("{who} subscribed"), |m| {
        sum(m, |w| w.subscribers) >= 1
    });
    for _ in 0..4 {
        source.block();
    }
    source.finish();
    wait(child, Duration::from_secs(15), "end of stream")
}

/// `shoal relay` on loopback, its address and metrics endpoint on ports
/// the OS picks, with `workers` unpinned workers, plus `extra` (run with
/// no stdin, stdout discarded and stderr captured).
pub fn relay_on_loopback(workers: &str, extra: &[&str]) -> Command {
    let mut args = vec![
        "relay",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--workers",
        workers,
        "--no-pin",
    ];
    args.extend_from_slice(extra);
    shoal(&args)
}

/// `err` is one line that contains `needle`, and no panic.
pub fn assert_one_line(err: &str, needle: &str) {
    assert!(err.contains(needle), "the error names {needle}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines = err.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(lines, 1, "one line: {err}");
}

/// A child `shoal` run in the background, its stderr in a file; killed if
/// still running when dropped (a failed assertion must not leave it
/// behind).
pub struct Proc {
    pub name: String,
    pub child: Child,
    stderr: PathBuf,
    started: Instant,
}

impl Proc {
    /// Starts `cmd` with no stdin and stdout discarded; its stderr goes to
    /// `NAME.stderr` in `dir`.
    pub fn spawn(name: &str, cmd: &mut Command, dir: &TempDir) -> Self {
        let stderr = dir.path(&format!("{name}.stderr"));
        let file = std::fs::File::create(&stderr).expect("create a stderr file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        Self {
            name: name.to_owned(),
            child,
            stderr,
            started: Instant::now(),
        }
    }

    /// Everything it has written to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until stderr shows `needle`; panics if the process exits first
    /// or `limit` passes.
    pub fn wait_for_stderr(&mut self, needle: &str, limit: Duration) {
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

    /// The address a relay logged for `key` (`addr` or `metrics`) in its
    /// "relay listening" line, waiting for the line (bounded).
    pub fn logged_addr(&mut self, key: &str, limit: Duration) -> std::net::SocketAddr {
        self.wait_for_stderr("relay listening", limit);
        let text = self.stderr();
        let line = text
            .lines()
            .find(|l| l.contains("relay listening"))
            .expect("the line waited for");
        let at = line
            .find(&format!("{key}="))
            .unwrap_or_else(|| panic!("no {key}= in {line:?}"));
        let rest = line[at + key.len() + 1..].trim_start_matches("Some(");
        let end = rest.find([' ', ')']).unwrap_or(rest.len());
        rest[..end]
            .parse()
            .unwrap_or_else(|e| panic!("{key} in {line:?}: {e}"))
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// Waits for a 0 exit and returns how long the process ran.
    pub fn wait_success(&mut self, limit: Duration) -> Duration {
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

    /// The last `shoal: latency ...` status line of `shoal watch`.
    pub fn last_status(&self) -> String {
        let text = self.stderr();
        text.lines()
            .rev()
            .find(|l| l.starts_with("shoal: latency"))
            .unwrap_or_else(|| panic!("{} printed no status line:\n{text}", self.name))
            .to_owned()
    }

    /// SIGKILL (if still running), then reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `N` of `lost N,` in a `shoal watch` status line.
pub fn lost_in(status: &str) -> u64 {
    status
        .split(", lost ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no lost count in {status:?}"))
}

/// A directory removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn create(name: &str) -> Self {
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Self(path)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `shoal keygen --out key` and returns the stream id it prints.
pub fn keygen(key: &Path) -> String {
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

/// When the output files of some processes grew: their lengths, sampled
/// every few milliseconds, so a stall and the moment output resumed can be
/// measured from outside.
pub struct Growth {
    files: Vec<PathBuf>,
    /// Per file, `(when, length)` at each change of length.
    pub samples: Vec<Vec<(Instant, u64)>>,
}

impl Growth {
    pub fn new(files: Vec<PathBuf>) -> Self {
        let samples = vec![Vec::new(); files.len()];
        Self { files, samples }
    }

    /// Reads every file's length now, noting the ones that changed.
    pub fn sample(&mut self) {
        let now = Instant::now();
        for (file, samples) in self.files.iter().zip(&mut self.samples) {
            let len = std::fs::metadata(file).map_or(0, |m| m.len());
            if samples.last().is_none_or(|&(_, last)| last != len) {
                samples.push((now, len));
            }
        }
    }

    /// Samples (every 2 ms) until `done` holds or `limit` passes; panics
    /// naming `what` on the deadline.
    pub fn until(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            self.sample();
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// File `i`'s latest length.
    pub fn len(&self, i: usize) -> u64 {
        self.samples[i].last().map_or(0, |&(_, l)| l)
    }

    /// When file `i` first grew past `offset` bytes.
    pub fn passed(&self, i: usize, offset: u64) -> Option<Instant> {
        self.samples[i]
            .iter()
            .find(|&&(_, len)| len > offset)
            .map(|&(t, _)| t)
    }

    /// The longest time file `i` went without growing, among the stalls
    /// that end after `from`, and when that stall ended.
    pub fn longest_stall(&self, i: usize, from: Instant) -> (Duration, Option<Instant>) {
        self.samples[i]
            .windows(2)
            .filter(|w| w[1].0 > from)
            .map(|w| (w[1].0 - w[0].0, Some(w[1].0)))
            .max()
            .unwrap_or((Duration::ZERO, None))
    }
}

/// The body of `GET /metrics` from a relay's metrics endpoint.
pub fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

/// The sum of the samples of `metric` (any labels) in Prometheus text.
pub fn metric_sum(text: &str, metric: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// `GET path` from an HTTP server at `addr` (HTTP/1.1, `Connection:
/// close`, bounded to 5 s): the whole answer, head and body.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the web face");
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
