//! A same-run reference fan-out: GStreamer's `multiudpsink` forwarding the
//! stream to the same viewer sockets from the relay's CPUs, one send per
//! datagram and destination (the way most "UDP fan-out" is done today).
//!
//! `gst-launch-1.0 udpsrc ! multiudpsink clients=<every viewer>` runs as a
//! child process pinned (with `taskset`) to the relay's CPUs. A feeder
//! thread sends it DATA-sized datagrams at the stream's datagram rate, in
//! one burst per frame as the source does; the viewers count what
//! arrives. The rate is read over a steady span after a warm-up, so what
//! GStreamer queued before or after it does not count. At the rates where
//! shoal is compared (its own saturation) multiudpsink is saturated too,
//! so what arrives per second is its ceiling.

use std::net::{SocketAddrV4, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::shared::Shared;
use crate::sys;

/// How long the pipeline may take to forward its first datagram.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// Feeding before the measured span starts.
const WARMUP: Duration = Duration::from_millis(500);
/// The pipeline's socket buffers (its defaults are small).
const SOCKET_BUFFER: usize = 4 << 20;

/// What the reference achieved over the measured span.
#[derive(Debug, Clone, Copy)]
pub struct ReferenceResult {
    /// Datagrams the viewers received per second.
    pub received_pps: f64,
    /// Datagrams fed to the pipeline per second.
    pub fed_pps: f64,
    /// The pipeline's CPU use, percent of one core.
    pub cpu_percent: f64,
}

/// What the reference is fed: the stream's shape.
#[derive(Debug, Clone, Copy)]
pub struct Feed {
    /// Datagrams per second (the source's, parity and manifests included).
    pub pps: f64,
    /// Frames per second: the datagrams go in one burst per frame.
    pub fps: u32,
    /// Bytes per datagram.
    pub datagram_len: usize,
}

/// Runs multiudpsink to `dests` on `relay_cpus`, fed from a thread on
/// `feeder_cpus`, and measures it for `time` after a warm-up. The viewer
/// threads must be counting into `shared.rx_datagrams`.
pub fn multiudpsink(
    dests: &[SocketAddrV4],
    relay_cpus: &[usize],
    feeder_cpus: &[usize],
    feed: Feed,
    time: Duration,
    shared: &Shared,
) -> anyhow::Result<ReferenceResult> {
    if dests.is_empty() {
        bail!("--reference needs UDP viewers");
    }
    let port = free_udp_port()?;
    let mut child = Pipeline(spawn(port, dests, relay_cpus)?);
    let pid = child.0.id().to_string();
    let feeder = UdpSocket::bind("127.0.0.1:0").context("binding the reference's feeder")?;
    let input = SocketAddrV4::new([127, 0, 0, 1].into(), port);
    let payload = vec![0u8; feed.datagram_len];
    wait_ready(&mut child.0, &feeder, input, &payload, shared)?;

    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let feeding = std::thread::Builder::new()
            .name("bench-reference-feed".to_owned())
            .spawn_scoped(scope, || {
                let _ = sys::pin_to(feeder_cpus);
                feed_frames(&feeder, input, &payload, feed, &stop)
            })
            .context("cannot start the reference's feeder")?;
        let result = (|| {
            std::thread::sleep(WARMUP);
            let (rx0, cpu0, t0) = (
                shared.rx_datagrams.load(Ordering::Relaxed),
                process_ticks(&pid)?,
                Instant::now(),
            );
            std::thread::sleep(time);
            let (rx1, cpu1, elapsed) = (
                shared.rx_datagrams.load(Ordering::Relaxed),
                process_ticks(&pid)?,
                t0.elapsed(),
            );
            let secs = elapsed.as_secs_f64().max(1e-9);
            let per_tick = 100.0 / sys::clock_ticks_per_sec() as f64 / secs;
            anyhow::Ok((
                rx1.saturating_sub(rx0) as f64 / secs,
                cpu1.saturating_sub(cpu0) as f64 * per_tick,
            ))
        })();
        stop.store(true, Ordering::Relaxed);
        let fed = feeding
            .join()
            .map_err(|_| anyhow::anyhow!("the reference's feeder panicked"))??;
        let (received_pps, cpu_percent) = result?;
        Ok(ReferenceResult {
            received_pps,
            fed_pps: fed,
            cpu_percent,
        })
    })
}

/// The child process, killed when dropped.
struct Pipeline(Child);

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `taskset -c CPUS gst-launch-1.0 -q udpsrc ... ! multiudpsink ...`.
fn spawn(port: u16, dests: &[SocketAddrV4], cpus: &[usize]) -> anyhow::Result<Child> {
    let clients: Vec<String> = dests.iter().map(ToString::to_string).collect();
    let cpus: Vec<String> = cpus.iter().map(ToString::to_string).collect();
    let mut command = if cpus.is_empty() {
        Command::new("gst-launch-1.0")
    } else {
        let mut c = Command::new("taskset");
        c.args(["-c", &cpus.join(","), "gst-launch-1.0"]);
        c
    };
    command
        .args([
            "-q",
            "udpsrc",
            "address=127.0.0.1",
            &format!("port={port}"),
            &format!("buffer-size={SOCKET_BUFFER}"),
            "!",
            "multiudpsink",
            &format!("clients={}", clients.join(",")),
            &format!("buffer-size={SOCKET_BUFFER}"),
            "sync=false",
            "async=false",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command.spawn().map_err(|e| {
        anyhow::anyhow!(
            "cannot run gst-launch-1.0 ({e}): --reference multiudpsink needs GStreamer; on \
             Debian: apt-get install gstreamer1.0-tools gstreamer1.0-plugins-good"
        )
    })
}

/// Sends one datagram every 50 ms until the viewers see the pipeline's
/// first forwards, or fails with what the pipeline said.
fn wait_ready(
    child: &mut Child,
    feeder: &UdpSocket,
    input: SocketAddrV4,
    payload: &[u8],
    shared: &Shared,
) -> anyhow::Result<()> {
    let before = shared.rx_datagrams.load(Ordering::Relaxed);
    let deadline = Instant::now() + READY_LIMIT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().context("waiting on gst-launch-1.0")? {
            let mut said = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut err, &mut said);
            }
            bail!(
                "gst-launch-1.0 exited ({status}) before forwarding anything: {}; is \
                 gstreamer1.0-plugins-good (udpsrc, multiudpsink) installed?",
                said.trim()
            );
        }
        let _ = feeder.send_to(payload, input);
        std::thread::sleep(Duration::from_millis(50));
        if shared.rx_datagrams.load(Ordering::Relaxed) > before {
            return Ok(());
        }
    }
    bail!("multiudpsink forwarded nothing within {READY_LIMIT:?}")
}

/// Feeds `feed.pps` datagrams a second in one burst per frame until
/// `stop`; returns the rate actually fed.
fn feed_frames(
    socket: &UdpSocket,
    to: SocketAddrV4,
    payload: &[u8],
    feed: Feed,
    stop: &AtomicBool,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let fps = f64::from(feed.fps.max(1));
    let mut sent = 0u64;
    let mut frame = 0u64;
    while !stop.load(Ordering::Relaxed) {
        frame += 1;
        // Frame `i` ends when `pps * i / fps` datagrams have gone.
        let due = (feed.pps * frame as f64 / fps) as u64;
        while sent < due {
            match socket.send_to(payload, to) {
                Ok(_) => sent += 1,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => sent += 1,
                Err(e) => return Err(e).context("feeding multiudpsink"),
            }
        }
        let next = start + Duration::from_secs_f64(frame as f64 / fps);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(sent as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
fn free_udp_port() -> anyhow::Result<u16> {
    let probe = UdpSocket::bind("127.0.0.1:0").context("finding a free UDP port")?;
    Ok(probe.local_addr()?.port())
}

/// CPU ticks a process has used (all its threads).
fn process_ticks(pid: &str) -> anyhow::Result<u64> {
    sys::stat_cpu_ticks(std::path::Path::new(&format!("/proc/{pid}/stat")))
        .with_context(|| format!("reading gst-launch-1.0's CPU time (pid {pid})"))
}
