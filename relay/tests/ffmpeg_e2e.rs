//! A real stream through the real binaries: ffmpeg encodes four seconds of
//! H.264 and AAC as MPEG-TS, `shoal publish` sends the file to a
//! `shoal relay` process, and `shoal watch`, subscribed before the stream
//! went live, writes it out. What comes out is the file, byte for byte,
//! and ffprobe decodes every frame of it without a complaint.
//!
//! ffmpeg and ffprobe are required: without them the test fails, it does
//! not skip, so a CI image that lost them is noticed.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest any one step may take before the test gives up.
const LIMIT: Duration = Duration::from_secs(30);

/// Seconds of test video.
const SECONDS: u32 = 4;

/// Frames per second of the test video.
const FPS: u32 = 25;

const REQUIRED: &str = "ffmpeg is required (apt-get install ffmpeg)";

#[test]
fn ffmpeg_stream_through_a_relay_comes_out_byte_for_byte_and_decodes() {
    let began = Instant::now();
    require_tools();
    let scratch = Scratch::new();
    let mut procs = Procs::default();

    let source = scratch.path("source.ts");
    encode(&source);
    let source_frames = video_frames(&source);
    assert_eq!(
        source_frames,
        u64::from(SECONDS * FPS),
        "ffmpeg made {SECONDS} s at {FPS} fps"
    );

    let (relay, relay_log) = start_relay(&mut procs);
    let key = scratch.path("stream.key");
    let stream = keygen(&key);

    // Not --quiet: the "subscribed" line tells us the relay holds the
    // subscription, so the watcher gets the stream from its first chunk.
    let watched = scratch.path("watched.ts");
    let watch = procs.spawn(
        "shoal watch",
        shoal()
            .args(["watch", "--stream", &stream, "--relay", &relay.to_string()])
            .arg("--output")
            .arg(&watched),
    );
    let (lines, watch_log) = lines_of(procs.stderr(watch));
    let subscribed = Instant::now() + LIMIT;
    loop {
        let left = subscribed.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("subscribed to") => break,
            Ok(_) => {}
            Err(_) => panic!(
                "shoal watch did not subscribe within {LIMIT:?}: {}",
                finish(watch_log)
            ),
        }
    }

    let sent = Instant::now();
    let publish = procs.spawn(
        "shoal publish",
        shoal()
            .args(["publish", "--key"])
            .arg(&key)
            .args(["--relay", &relay.to_string(), "--input"])
            .arg(&source)
            .arg("--quiet"),
    );
    let publish_log = read_all(procs.stderr(publish));
    let status = procs.wait(publish, Instant::now() + LIMIT);
    let publish_took = sent.elapsed();
    let publish_log = finish(publish_log);
    assert!(status.success(), "shoal publish: {status}: {publish_log}");
    assert!(!publish_log.contains("panicked"), "{publish_log}");

    let status = procs.wait(watch, Instant::now() + LIMIT);
    let watch_took = sent.elapsed();
    drop(lines);
    let watch_log = finish(watch_log);
    assert!(status.success(), "shoal watch: {status}: {watch_log}");
    assert!(
        watch_log.contains("end of stream"),
        "shoal watch ended at the end of the stream: {watch_log}"
    );

    let expected = std::fs::read(&source).expect("read the source");
    let got = std::fs::read(&watched).expect("read what was watched");
    assert_eq!(
        got.len(),
        expected.len(),
        "every byte came out: {watch_log}"
    );
    if let Some(at) = got.iter().zip(&expected).position(|(g, e)| g != e) {
        panic!(
            "the watched stream differs from the source at byte {at} (TS packet {})",
            at / 188
        );
    }

    let watched_frames = video_frames(&watched);
    assert_eq!(watched_frames, source_frames, "every frame decodes");

    procs.stop_all();
    let relay_log = finish(relay_log);
    assert!(!relay_log.contains("panicked"), "{relay_log}");
    let last_status = watch_log
        .lines()
        .rfind(|l| l.contains("lost"))
        .unwrap_or("-");
    eprintln!(
        "{source_frames} frames, {} bytes; publish {publish_took:?}, watch done after \
         {watch_took:?}, test {:?}; {last_status}",
        got.len(),
        began.elapsed()
    );
}

/// Fails, loudly, when ffmpeg or ffprobe cannot run.
fn require_tools() {
    for tool in ["ffmpeg", "ffprobe"] {
        let ran = Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(
            ran.is_ok_and(|s| s.success()),
            "{REQUIRED}: {tool} did not run"
        );
    }
}

/// Four seconds of test pattern and tone: H.264 with a keyframe every
/// second and no B-frames, AAC, in MPEG-TS.
fn encode(out: &Path) {
    let t = SECONDS.to_string();
    let video = format!("testsrc=size=320x240:rate={FPS}");
    let gop = FPS.to_string();
    let out = run_to_end(
        "ffmpeg",
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-f", "lavfi", "-i", &video])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", &t, "-c:v", "libx264", "-preset", "ultrafast"])
            .args(["-g", &gop, "-bf", "0", "-pix_fmt", "yuv420p"])
            .args(["-c:a", "aac", "-b:a", "64k", "-f", "mpegts", "-y"])
            .arg(out),
    );
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Decodes every video frame of `path`; any decoder complaint fails.
fn video_frames(path: &Path) -> u64 {
    let out = run_to_end(
        "ffprobe",
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(path),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe {}: {err}", path.display());
    assert!(
        err.trim().is_empty(),
        "ffprobe decodes {} cleanly: {err}",
        path.display()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("ffprobe counted no frames in {}: {text:?}", path.display()))
}

/// Runs `cmd` to completion, bounded by [`LIMIT`], collecting its output.
fn run_to_end(what: &'static str, cmd: &mut Command) -> Output {
    let mut procs = Procs::default();
    let child = procs.spawn(what, cmd.stdin(Stdio::null()).stdout(Stdio::piped()));
    let mut stdout = procs.children[child].1.stdout.take().expect("piped stdout");
    let stdout = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let stderr = read_all(procs.stderr(child));
    let status = procs.wait(child, Instant::now() + LIMIT);
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: finish(stderr).into_bytes(),
    }
}

fn shoal() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
    cmd.stdin(Stdio::null());
    cmd
}

/// Starts `shoal relay` on a free port; returns its address and its log.
fn start_relay(procs: &mut Procs) -> (SocketAddr, JoinHandle<String>) {
    let relay = procs.spawn(
        "shoal relay",
        shoal().args([
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "off",
            "--workers",
            "1",
            "--no-pin",
            "--log",
            "info",
        ]),
    );
    let (lines, log) = lines_of(procs.stderr(relay));
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(addr) = listening_addr(&line) {
                    return (addr, log);
                }
            }
            Err(_) => panic!("the relay did not log its address: {}", finish(log)),
        }
    }
}

/// The address in the relay's `relay listening addr=HOST:PORT` line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("relay listening")?..];
    let rest = &rest[rest.find("addr=")? + "addr=".len()..];
    let end = rest.find([' ', '\n']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Makes a stream key at `path`; returns the stream id it printed.
fn keygen(path: &Path) -> String {
    let out = run_to_end("shoal keygen", shoal().args(["keygen", "--out"]).arg(path));
    assert!(
        out.status.success(),
        "shoal keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!id.is_empty(), "shoal keygen printed the stream id");
    id
}

/// Sends each line of `stderr` over a channel, and returns all of it at
/// the end; the pipe is drained even when nobody reads the channel.
fn lines_of(stderr: ChildStderr) -> (mpsc::Receiver<String>, JoinHandle<String>) {
    let (tx, rx) = mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (rx, log)
}

fn read_all(stderr: ChildStderr) -> JoinHandle<String> {
    lines_of(stderr).1
}

fn finish(log: JoinHandle<String>) -> String {
    log.join()
        .unwrap_or_else(|_| "(log reader panicked)".to_owned())
}

/// Child processes, killed when the test ends, however it ends.
#[derive(Debug, Default)]
struct Procs {
    children: Vec<(&'static str, Child)>,
}

impl Procs {
    /// Starts `cmd` with stderr piped; returns its index.
    fn spawn(&mut self, what: &'static str, cmd: &mut Command) -> usize {
        let child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        self.children.push((what, child));
        self.children.len() - 1
    }

    fn stderr(&mut self, i: usize) -> ChildStderr {
        self.children[i].1.stderr.take().expect("piped stderr")
    }

    /// Waits for child `i` to exit by `deadline`; kills it and fails if not.
    fn wait(&mut self, i: usize, deadline: Instant) -> ExitStatus {
        let (what, child) = &mut self.children[i];
        loop {
            if let Some(status) = child.try_wait().expect("wait for a child") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} still running after {LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop_all(&mut self) {
        for (_, child) in &mut self.children {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A directory of its own under the temp dir, removed at the end.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("shoal-ffmpeg-e2e-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
