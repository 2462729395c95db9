//! One run, start to end: relay, viewers, source, warm-up, measurement
//! (with the flood process and the soak samples, if asked for), drain,
//! optional baseline, results.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shoal_relay::io::BackendKind;

mod assemble;
mod cpu;
mod http;

use self::assemble::{Assembly, assemble};
use self::cpu::CpuSample;
use crate::baseline::{self, Loops, Mode};
use crate::cli::{Args, ReferenceKind};
use crate::clock::Clock;
use crate::flood::Flooder;
use crate::http::{Readers, ReadersReport};
use crate::progress::Progress;
use crate::reference;
use crate::report::Report;
use crate::shared::{Phase, Shared, UNSET};
use crate::soak::Sampler;
use crate::source::{self, SourceConfig, SourceReport};
use crate::sys;
use crate::target::Target;
use crate::viewers::{self, ThreadReport, ViewerConfig};

/// After the source stops, viewers take in what is in flight until nothing
/// has arrived for this long...
const DRAIN_QUIET: Duration = Duration::from_millis(200);
/// ...or this much time has passed (an overloaded relay may still be
/// working through its backlog; what it sends after this counts as lost).
const DRAIN_MAX: Duration = Duration::from_secs(5);
/// Extra wait for the relay's workers to publish counters that cover the
/// whole measurement (they publish about every 250 ms).
const METRICS_SETTLE: Duration = Duration::from_millis(300);
/// After a flood, also the relay window's wait for a manifest (500 ms):
/// forged DATA held for one is counted only when the wait ends.
const FLOOD_SETTLE: Duration = Duration::from_millis(600);
/// How long each baseline loop runs.
const BASELINE_TIME: Duration = Duration::from_secs(2);
/// How often the main thread looks at the progress.
const TICK: Duration = Duration::from_millis(100);

/// The threads of a run. Dropping it stops and joins them, so an error
/// anywhere leaves nothing running.
struct Running {
    shared: Arc<Shared>,
    source: Option<JoinHandle<anyhow::Result<SourceReport>>>,
    viewers: Vec<JoinHandle<anyhow::Result<ThreadReport>>>,
    readers: Option<Readers>,
}

impl Running {
    /// Stops the source (the measurement ends) and returns its report.
    fn stop_source(&mut self) -> anyhow::Result<SourceReport> {
        if self.shared.phase() < Phase::Drain {
            self.shared.set_phase(Phase::Drain);
        }
        let handle = self
            .source
            .take()
            .context("the source was already stopped")?;
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("the source thread panicked"))?
    }

    /// Stops the viewers and the HTTP readers and returns their reports.
    fn stop_viewers(&mut self) -> anyhow::Result<(Vec<ThreadReport>, Option<ReadersReport>)> {
        self.shared.set_phase(Phase::Stop);
        let viewers = self
            .viewers
            .drain(..)
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a viewer thread panicked"))?
            })
            .collect::<anyhow::Result<_>>()?;
        let readers = match self.readers.take() {
            Some(r) => Some(
                r.thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("the HTTP reader thread panicked"))??,
            ),
            None => None,
        };
        Ok((viewers, readers))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.set_phase(Phase::Stop);
        if let Some(h) = self.source.take() {
            let _ = h.join();
        }
        for h in self.viewers.drain(..) {
            let _ = h.join();
        }
        if let Some(r) = self.readers.take() {
            let _ = r.thread.join();
        }
    }
}

/// Runs the benchmark `args` describe and returns its results.
pub fn run(args: &Args) -> anyhow::Result<Report> {
    let nofile = sys::raise_nofile().context("cannot raise the open-file limit")?;
    // An HTTP reader is two sockets in this process: its own and the
    // in-process relay's end.
    let needed = args.viewers as u64 + 2 * args.http_viewers as u64 + 256;
    if nofile < needed {
        bail!(
            "--viewers {} --http-viewers {}: needs about {needed} open files and the limit is \
             {nofile}; raise the hard limit (ulimit -Hn) or lower --viewers",
            args.viewers,
            args.http_viewers
        );
    }
    let allowed = sys::allowed_cpus();
    let relay_cpus: Vec<usize> = allowed.iter().take(args.workers).copied().collect();
    let generator_cpus: Vec<usize> = allowed.iter().skip(args.workers).copied().collect();
    if generator_cpus.is_empty() {
        eprintln!(
            "shoal-bench: note: --workers {} takes every CPU ({}); the load generator shares \
             them, so the figures understate the relay",
            args.workers,
            allowed.len()
        );
    }

    // The relay starts first, from this thread, while it may still run on
    // every CPU: the relay pins its workers to the first allowed CPUs.
    let target = match args.relay {
        Some(addr) => Target::External {
            addr,
            pid: args.relay_pid,
            metrics: args.relay_metrics,
            http: args.relay_http,
        },
        None => Target::start(
            args.backend.unwrap_or(BackendKind::Auto),
            args.workers,
            args.viewers,
            args.http_viewers > 0,
        )?,
    };
    let relay_addr = target.addr()?;

    let shared = Arc::new(Shared::new(Clock::start()));
    // A deep receive buffer per viewer absorbs a relay burst without loss
    // on the generator's side; bounded overall to 256 MiB.
    let rcvbuf = ((256usize << 20) / args.viewers.max(1)).clamp(256 << 10, 16 << 20);
    let sockets = viewers::bind(args.viewers, rcvbuf)?;
    let dests: Vec<SocketAddrV4> = sockets
        .iter()
        .map(|s| match s.local_addr() {
            Ok(SocketAddr::V4(a)) => Ok(a),
            Ok(SocketAddr::V6(a)) => bail!("viewer socket on IPv6 {a}"),
            Err(e) => Err(e).context("viewer socket address"),
        })
        .collect::<anyhow::Result<_>>()?;

    let mut running = Running {
        shared: Arc::clone(&shared),
        source: None,
        viewers: Vec::new(),
        readers: None,
    };
    running.source = Some(source::spawn(
        SourceConfig {
            relay: SocketAddr::V4(relay_addr),
            bitrate_bps: args.bitrate,
            fps: args.fps,
            chunk: args.chunk,
            fec: args.fec,
            cpus: generator_cpus.first().copied().into_iter().collect(),
            stamped_ts: args.http_viewers > 0,
        },
        Arc::clone(&shared),
    )?);
    let chunks_per_sec = args.bitrate / 8 / u64::from(args.chunk);
    running.viewers = viewers::spawn(
        sockets,
        &ViewerConfig {
            relay: relay_addr,
            stream: source::stream_id(),
            threads: generator_cpus.len().max(1),
            cpus: generator_cpus.clone(),
            // Two seconds of the stream, to tell duplicates from late
            // arrivals.
            window_span: (chunks_per_sec * 2).clamp(4096, 65536) as usize,
            churn: args.churn.unwrap_or(0.0),
            rcvbuf,
            greedy: args.greedy_viewers,
        },
        &shared,
    )?;

    let mut progress = Progress::new();
    running.readers = http::start(args, &target, &shared, &generator_cpus, &mut progress)?;
    wait_for_subscribers(args, &shared, relay_addr, &mut progress)?;
    http::wait_started(args, running.readers.as_ref(), &mut progress)?;
    let warm_until = Instant::now() + args.warmup;
    while Instant::now() < warm_until {
        progress.show(&format!(
            "warm-up: {} viewers subscribed, {} HTTP readers, {:.1} s left",
            args.viewers,
            args.http_viewers,
            warm_until
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
        ));
        std::thread::sleep(TICK.min(warm_until.saturating_duration_since(Instant::now())));
    }

    // The measurement. Its start is aligned with a fresh publication of
    // the relay's counters, so they cover the same span.
    let relay_before = target.fresh_counters()?;
    let socket_drops_before = sys::udp_port_drops(relay_addr.port()).ok();
    let flooder = match args.flood {
        Some(rate) => Some(Flooder::start(
            relay_addr,
            rate,
            args.duration,
            &generator_cpus,
            &args.flood_kinds,
            shared.epoch.load(Ordering::Acquire),
            args.flood_spoof_source.then(|| {
                let port = shared.source_port.load(Ordering::Acquire);
                SocketAddrV4::new(
                    std::net::Ipv4Addr::LOCALHOST,
                    u16::try_from(port).unwrap_or(0),
                )
            }),
        )?),
        None => None,
    };
    let mut sampler = args.churn.map(|_| Sampler::new(&target));
    let cpu_before = CpuSample::take(&target);
    let start = Instant::now();
    shared.set_phase(Phase::Measure);
    let throughput = measure(
        args,
        &shared,
        &mut progress,
        start,
        &target,
        sampler.as_mut(),
    );
    let source_report = running.stop_source()?;
    let elapsed = start.elapsed();
    let cpu = CpuSample::take(&target).since(&cpu_before, elapsed);
    progress.show("draining");
    drain(&shared);
    let flood = match flooder {
        Some(f) => {
            progress.show("waiting for the flood process");
            Some(f.finish()?)
        }
        None => None,
    };
    let relay_after = match relay_before {
        Some(before) => {
            // Every worker publishes again after the source stopped: the
            // counters then hold everything the measured chunks caused.
            std::thread::sleep(METRICS_SETTLE);
            if flood.is_some() {
                std::thread::sleep(FLOOD_SETTLE);
            }
            target
                .counters()?
                .map(|after| after.since(&before))
                .transpose()?
        }
        None => None,
    };
    let relay_jumps = http::relay_jumps(&target);
    let backend = target.backend();
    let socket_drops = sys::udp_port_drops(relay_addr.port())
        .ok()
        .zip(socket_drops_before)
        .map(|(after, before)| after.saturating_sub(before));
    let in_process = matches!(target, Target::InProcess(_));

    // From here the relay is gone (or idle): viewers only listen.
    shared.set_phase(Phase::Baseline);
    target.shutdown();
    let baseline = if args.baseline {
        std::thread::sleep(Duration::from_millis(100));
        Some(run_baseline(
            args,
            &shared,
            &dests,
            &relay_cpus,
            &mut progress,
        )?)
    } else {
        None
    };
    let reference = match args.reference {
        Some(ReferenceKind::Multiudpsink) => {
            std::thread::sleep(Duration::from_millis(200));
            progress.show("reference: multiudpsink");
            let feed = reference::Feed {
                pps: source_report.measured_datagrams as f64 / elapsed.as_secs_f64().max(1e-9),
                fps: args.fps,
                datagram_len: args.datagram_len(),
            };
            Some(reference::multiudpsink(
                &dests,
                &relay_cpus,
                &generator_cpus,
                feed,
                BASELINE_TIME,
                &shared,
            )?)
        }
        None => None,
    };
    progress.finish();

    let (threads, readers) = running.stop_viewers()?;
    let first_seq = shared.first_seq();
    let end_seq = shared.end_seq();
    if first_seq == UNSET || end_seq == UNSET {
        bail!("the source never saw the measurement start; is --duration too short?");
    }
    Ok(assemble(
        args,
        Assembly {
            threads,
            first_seq,
            end_seq,
            elapsed,
            backend,
            cpu,
            relay: relay_after,
            baseline,
            reference,
            source: source_report,
            subscribed: shared.subscribed.load(Ordering::Relaxed),
            relay_cpus,
            generator_cpus,
            throughput,
            flood: flood.map(|f| (f, socket_drops)),
            soak: sampler.map(|s| (s, in_process)),
            http: readers.map(|r| (r, relay_jumps)),
            shared: Arc::clone(&shared),
        },
    ))
}

/// Waits (bounded) until every viewer's subscription is accepted.
fn wait_for_subscribers(
    args: &Args,
    shared: &Shared,
    relay: SocketAddrV4,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let limit = Duration::from_secs(10) + Duration::from_millis(2 * args.viewers as u64);
    let deadline = Instant::now() + limit;
    loop {
        let n = shared.subscribed.load(Ordering::Relaxed);
        if n >= args.viewers {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "only {n} of {} viewers subscribed within {:.0} s; check that a relay runs at \
                 {relay} (--relay) or lower --viewers",
                args.viewers,
                limit.as_secs_f64()
            );
        }
        progress.show(&format!("subscribing: {n}/{} viewers", args.viewers));
        std::thread::sleep(TICK);
    }
}

/// Shows progress until the measurement time is up, and samples the
/// delivered datagrams every [`TICK`]: (seconds since `start`, datagrams
/// per second since the previous sample).
fn measure(
    args: &Args,
    shared: &Shared,
    progress: &mut Progress,
    start: Instant,
    target: &Target,
    mut sampler: Option<&mut Sampler>,
) -> Vec<(f64, f64)> {
    let end = start + args.duration;
    let mut samples = Vec::new();
    let mut sampled = (start, shared.rx_datagrams.load(Ordering::Relaxed));
    let mut last = (
        Instant::now(),
        0u64,
        shared.rx_datagrams.load(Ordering::Relaxed),
    );
    let mut rates = (0.0, 0.0);
    loop {
        let now = Instant::now();
        let datagrams = shared.rx_datagrams.load(Ordering::Relaxed);
        let since_sample = now.duration_since(sampled.0).as_secs_f64();
        // The first pass comes right after `start`: too short a span for
        // a rate.
        if since_sample >= TICK.as_secs_f64() / 2.0 || (now >= end && since_sample > 0.0) {
            samples.push((
                now.duration_since(start).as_secs_f64(),
                (datagrams - sampled.1) as f64 / since_sample,
            ));
            sampled = (now, datagrams);
        }
        if now >= end {
            return samples;
        }
        if let Some(s) = sampler.as_deref_mut() {
            s.tick(now.duration_since(start).as_secs_f64(), target, shared);
        }
        let chunks = shared.rx_chunks.load(Ordering::Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64();
        if dt >= 0.5 {
            rates = (
                (chunks - last.1) as f64 / dt,
                (datagrams - last.2) as f64 / dt,
            );
            last = (now, chunks, datagrams);
        }
        progress.show(&format!(
            "measuring: {:.1}/{:.1} s, {chunks} chunks delivered, {:.0} chunks/s, {:.0} \
             datagrams/s",
            now.duration_since(start).as_secs_f64(),
            args.duration.as_secs_f64(),
            rates.0,
            rates.1
        ));
        std::thread::sleep(TICK.min(end.saturating_duration_since(now)));
    }
}

/// Waits until the viewers have received nothing for [`DRAIN_QUIET`], at
/// most [`DRAIN_MAX`].
fn drain(shared: &Shared) {
    let end = Instant::now() + DRAIN_MAX;
    let mut seen = shared.rx_datagrams.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        let count = shared.rx_datagrams.load(Ordering::Relaxed);
        if count != seen {
            seen = count;
            quiet_since = now;
        }
        if now >= end || now.duration_since(quiet_since) >= DRAIN_QUIET {
            return;
        }
    }
}

fn run_baseline(
    args: &Args,
    shared: &Shared,
    dests: &[SocketAddrV4],
    cpus: &[usize],
    progress: &mut Progress,
) -> anyhow::Result<Loops> {
    let run = |mode| {
        baseline::run(
            mode,
            dests,
            cpus,
            args.datagram_len(),
            BASELINE_TIME,
            shared,
        )
    };
    progress.show("baseline: sendmmsg loop");
    let mmsg = run(Mode::Sendmmsg)?;
    let mut optional = |mode, name: &str| {
        std::thread::sleep(Duration::from_millis(200));
        progress.show(&format!("baseline: {name} loop"));
        match run(mode) {
            Ok(r) => Some(r),
            Err(e) => {
                progress.finish();
                eprintln!("shoal-bench: the {name} baseline did not run: {e:#}");
                None
            }
        }
    };
    let gso = optional(Mode::Gso, "GSO");
    let uring_gso = optional(Mode::UringGso, "io_uring GSO");
    Ok(Loops {
        mmsg,
        gso,
        uring_gso,
    })
}
