//! `shoal demo`: a relay, a publisher and many viewers in one process on
//! loopback, with a built-in stream: a short clip of real H.264 and AAC,
//! looped with its timestamps running on ([`clip`]).
//!
//! Before anything starts, the demo says if the load asked for is more than
//! the machine can carry now ([`capacity`]). The relay runs on its own
//! workers ([`Server`]), with its web face when `--http` asks for it; one
//! or two crowd threads drive the viewers ([`crowd`]) until each has seen
//! the end of the stream; once they have subscribed ([`start`]), the
//! publisher thread plays the clip in real time, one burst per frame, for
//! the duration, then finishes the stream. The main thread prints a status
//! line each second and a summary at the end, in which a viewer is "exact"
//! when its output, from its first chunk to the end, is byte for byte the
//! tail of what was published ([`digest`]).

mod capacity;
mod clip;
mod crowd;
mod digest;
mod start;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::os;

use anyhow::Context;
use shoal_proto::integrity::PublisherKey;
use shoal_proto::publisher::{Publisher, PublisherConfig};

use self::clip::{Clip, FRAME_TIME, LABEL, Player};
use self::crowd::{Member, Outcome, Tally};
use crate::io::BackendKind;
use crate::server::Server;
use crate::server::config::{RelayArgs, Settings};

/// Most viewers one demo runs.
const MAX_VIEWERS: usize = 2000;
/// Shortest demo.
const MIN_DURATION: Duration = Duration::from_millis(100);
/// Longest demo.
const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Highest loss rate, in percent, FEC and NACK are asked to mend.
const MAX_LOSS: f64 = 50.0;
/// How often the status line is printed.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How long viewers get after the stream ends to see its end.
const GRACE: Duration = Duration::from_secs(3);
/// Viewers per crowd thread before a second thread is used.
const PER_THREAD: usize = 25;

/// `shoal demo` flags.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How many viewers to run, each on its own loopback address.
    #[arg(long, value_name = "N", default_value = "50")]
    pub viewers: String,
    /// How long to publish, e.g. 10s, 1.5s or 1m.
    #[arg(long, value_name = "TIME", default_value = "10s")]
    pub duration: String,
    /// Each viewer drops this percentage of the datagrams it receives, to
    /// show FEC and NACK repair.
    #[arg(long, value_name = "PERCENT", default_value = "0")]
    pub loss: String,
    /// The relay's IO backend.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendKind,
    /// Serve the relay's web face here, e.g. 127.0.0.1:8080, and print
    /// the stream's page: the demo's video in a browser.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
}

/// The parsed flags.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plan {
    viewers: usize,
    duration: Duration,
    /// 0 to 1.
    loss: f64,
    /// The web face's address.
    http: Option<SocketAddr>,
}

impl Plan {
    fn parse(args: &DemoArgs) -> anyhow::Result<Self> {
        Ok(Self {
            viewers: parse_viewers(&args.viewers)?,
            duration: parse_duration(&args.duration)?,
            loss: parse_loss(&args.loss)? / 100.0,
            http: args.http.as_deref().map(parse_http).transpose()?,
        })
    }
}

/// What the publisher thread did.
#[derive(Debug, Clone, Copy)]
struct Published {
    chunks: u64,
    frames: u64,
    bytes: u64,
}

/// Runs `shoal demo`.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let plan = Plan::parse(args)?;
    capacity::warn_if_beyond(plan.viewers, plan.loss);
    let clip = Clip::builtin()?;
    let mut settings = Settings::load(&RelayArgs::default())?;
    settings.listen = "127.0.0.1:0".parse().context("a loopback address")?;
    settings.metrics = None;
    settings.http = plan.http;
    settings.pin = false;
    settings.workers = 2;
    settings.backend = args.backend;
    let server = Server::start(&settings).map_err(|e| {
        let web = e.chain().any(|c| c.to_string().starts_with("cannot serve HTTP"));
        if let Some(addr) = plan.http
            && web
        {
            anyhow::anyhow!(
                "--http {addr}: cannot serve there ({}); try a free port, e.g. --http 127.0.0.1:8080",
                e.root_cause()
            )
        } else {
            e.context(format!(
                "--backend {}: the relay did not start; try --backend auto or mmsg",
                backend_name(args.backend)
            ))
        }
    })?;
    let relay = server.local_addr();
    eprintln!(
        "shoal demo: relay on {relay} ({} backend), {} viewers, {:.1} s, {}% loss; stream: {LABEL}",
        server.backend(),
        plan.viewers,
        plan.duration.as_secs_f64(),
        plan.loss * 100.0
    );

    let result = run_with(relay, server.http_addr(), clip, plan);
    // Let the workers publish their last counters before they go.
    thread::sleep(Duration::from_millis(300));
    let snaps = server.metrics().snapshots();
    server.shutdown();
    let (published, outcomes, tally) = result?;
    let forwarded: u64 = snaps.iter().map(|s| s.relay.forwarded).sum();
    let dropped: u64 = snaps.iter().map(|s| s.relay.dropped()).sum();
    summary(clip, plan, published, &outcomes, &tally, forwarded, dropped);
    Ok(())
}

type Ran = (Published, Vec<Outcome>, Tally);

fn run_with(
    relay: SocketAddr,
    http: Option<SocketAddr>,
    clip: &'static Clip,
    plan: Plan,
) -> anyhow::Result<Ran> {
    let seed = random_seed();
    let key = PublisherKey::from_seed(seed);
    let socket = UdpSocket::bind("127.0.0.1:0").context("cannot open the publisher's socket")?;
    let config = PublisherConfig {
        wall_clock: os::wall_clock(),
        bitrate_bps: clip.bitrate_bps(),
        ..PublisherConfig::default()
    };
    let publisher = Publisher::new(key, config, vec![relay], os::now())
        .map_err(|e| anyhow::anyhow!("the publisher cannot be made: {e}"))?;
    let stream = publisher.stream_id();
    if let Some(http) = http {
        eprintln!(
            "shoal demo: watch in a browser at {}watch/{stream}",
            crate::web::page_url(http)
        );
    }
    let nonce_seed = u64::from_le_bytes(seed[..8].try_into().unwrap_or_default());

    let mut members = Vec::with_capacity(plan.viewers);
    for i in 0..plan.viewers {
        members.push(Member::new(i, relay, stream, nonce_seed)?);
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let joining = Instant::now();
    let deadline = joining + start::JOIN_WAIT + plan.duration + GRACE;
    let threads = if plan.viewers > PER_THREAD { 2 } else { 1 };
    let per = plan.viewers.div_ceil(threads);
    let mut crowds = Vec::new();
    while !members.is_empty() {
        let rest = members.split_off(per.min(members.len()));
        let group = std::mem::replace(&mut members, rest);
        let tally = Arc::clone(&tally);
        let handle = thread::Builder::new()
            .name("demo-viewers".into())
            .spawn(move || crowd::drive(group, plan.loss, &tally, deadline))
            .context("starting a viewer thread")?;
        crowds.push(handle);
    }
    start::wait_for_viewers(&tally, plan.viewers);
    let started = Instant::now();
    let publishing = thread::Builder::new()
        .name("demo-publisher".into())
        .spawn(move || publish(publisher, socket, clip, plan.duration))
        .context("starting the publisher thread")?;

    let mut next_status = started + STATUS_EVERY;
    while !crowds.iter().all(thread::JoinHandle::is_finished) {
        thread::sleep(Duration::from_millis(50));
        if Instant::now() >= next_status {
            next_status += STATUS_EVERY;
            let tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
            eprintln!("shoal demo: {}", status_line(plan.viewers, &tally));
        }
    }
    let published = publishing
        .join()
        .map_err(|_| anyhow::anyhow!("the publisher thread panicked"))??;
    let mut outcomes = Vec::with_capacity(plan.viewers);
    for handle in crowds {
        outcomes.extend(
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("a viewer thread panicked"))?,
        );
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(PoisonError::into_inner));
    Ok((published, outcomes, tally))
}

/// Plays `clip` in real time for `duration`, then ends the stream.
fn publish(
    mut publisher: Publisher,
    socket: UdpSocket,
    clip: &'static Clip,
    duration: Duration,
) -> anyhow::Result<Published> {
    let mut player = Player::new(clip);
    let mut frame = Vec::new();
    let mut bytes = 0u64;
    let started = Instant::now();
    let frames = (duration.as_nanos() / FRAME_TIME.as_nanos()).max(1) as u64;
    while player.frames() < frames {
        let due = started + FRAME_TIME * u32::try_from(player.frames()).unwrap_or(u32::MAX);
        if Instant::now() >= due {
            frame.clear();
            player.next_frame(&mut frame);
            bytes += frame.len() as u64;
            publisher.handle_input(os::now(), &frame);
        }
        pump(&mut publisher, &socket)?;
        let next = started + FRAME_TIME * u32::try_from(player.frames()).unwrap_or(u32::MAX);
        let timer = publisher
            .poll_timeout()
            .map_or(FRAME_TIME, |t| t.saturating_since(os::now()));
        let wait = next.saturating_duration_since(Instant::now()).min(timer);
        // A floor, so that a timer already due cannot make this spin.
        thread::sleep(wait.max(Duration::from_micros(100)));
    }
    publisher.finish(os::now());
    pump(&mut publisher, &socket)?;
    Ok(Published {
        chunks: publisher.stats().chunks,
        frames: player.frames(),
        bytes,
    })
}

/// Runs due timers and sends every queued datagram.
fn pump(publisher: &mut Publisher, socket: &UdpSocket) -> anyhow::Result<()> {
    let now = os::now();
    if publisher.poll_timeout().is_some_and(|t| t <= now) {
        publisher.handle_timeout(now);
    }
    while let Some(t) = publisher.poll_transmit() {
        socket
            .send_to(t.payload, t.dst)
            .with_context(|| format!("the publisher cannot send to the relay at {}", t.dst))?;
    }
    Ok(())
}

fn status_line(viewers: usize, tally: &Tally) -> String {
    format!(
        "viewers {}/{viewers} subscribed, delivered {} chunks, repaired {} (FEC {}, NACK {}), lost {}, latency p50 {} p99 {}",
        tally.subscribed,
        tally.delivered,
        tally.fec + tally.nack,
        tally.fec,
        tally.nack,
        tally.lost,
        millis(tally, 50.0),
        millis(tally, 99.0),
    )
}

fn millis(tally: &Tally, quantile: f64) -> String {
    if tally.latency_us.is_empty() {
        return "-".to_owned();
    }
    let us = if quantile >= 100.0 {
        tally.latency_us.max()
    } else {
        tally.latency_us.value_at_percentile(quantile)
    };
    format!("{} ms", us / 1000)
}

fn summary(
    clip: &'static Clip,
    plan: Plan,
    published: Published,
    outcomes: &[Outcome],
    tally: &Tally,
    forwarded: u64,
    dropped: u64,
) {
    // The tails of the published stream that viewers' outputs should be.
    let mut tails: HashMap<u64, Option<digest::Digest>> = HashMap::new();
    let exact = outcomes
        .iter()
        .filter(|o| {
            o.complete
                && *tails
                    .entry(o.bytes)
                    .or_insert_with(|| digest::suffix_digest(clip, published.frames, o.bytes))
                    == Some(o.digest)
        })
        .count();
    let ended = outcomes.iter().filter(|o| o.ended).count();
    let played: Vec<u64> = outcomes.iter().map(|o| o.stats.played).collect();
    let min = played.iter().copied().min().unwrap_or(0);
    let avg = played.iter().sum::<u64>() as f64 / played.len().max(1) as f64;
    eprintln!("shoal demo: {}", status_line(plan.viewers, tally));
    eprintln!("shoal demo: summary");
    eprintln!("  stream             {LABEL}");
    eprintln!(
        "  published          {} chunks, {} bytes, {} frames",
        published.chunks, published.bytes, published.frames
    );
    eprintln!(
        "  viewers            {}, {} subscribed, {ended} saw the end",
        plan.viewers, tally.subscribed
    );
    eprintln!("  chunks per viewer  min {min}, avg {avg:.1}");
    eprintln!("  exact viewers      {exact}/{}", plan.viewers);
    eprintln!(
        "  repaired           {} (FEC {}, NACK {})",
        tally.fec + tally.nack,
        tally.fec,
        tally.nack
    );
    eprintln!("  lost               {}", tally.lost);
    eprintln!(
        "  latency            p50 {} p99 {} max {}",
        millis(tally, 50.0),
        millis(tally, 99.0),
        millis(tally, 100.0)
    );
    eprintln!("  relay              forwarded {forwarded}, dropped {dropped}");
}

fn backend_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Auto => "auto",
        BackendKind::Uring => "uring",
        BackendKind::Mmsg => "mmsg",
    }
}

fn parse_viewers(text: &str) -> anyhow::Result<usize> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_VIEWERS).contains(&n) => Ok(n),
        _ => anyhow::bail!(
            "--viewers {text:?}: must be a whole number from 1 to {MAX_VIEWERS}; try --viewers 50"
        ),
    }
}

fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let d = crate::units::duration(text)
        .map_err(|why| anyhow::anyhow!("--duration {text:?}: {why}; try --duration 10s"))?;
    if d < MIN_DURATION || d > MAX_DURATION {
        anyhow::bail!(
            "--duration {text:?}: must be from 100ms to {} s; try --duration 10s",
            MAX_DURATION.as_secs()
        );
    }
    Ok(d)
}

fn parse_loss(text: &str) -> anyhow::Result<f64> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(p) if (0.0..=MAX_LOSS).contains(&p) => Ok(p),
        _ => anyhow::bail!(
            "--loss {text:?}: must be a percentage from 0 to {MAX_LOSS}; try --loss 5"
        ),
    }
}

fn parse_http(text: &str) -> anyhow::Result<SocketAddr> {
    text.trim().parse().map_err(|_| {
        anyhow::anyhow!("--http {text:?}: not an address (HOST:PORT); try --http 127.0.0.1:8080")
    })
}

/// A fresh stream key seed; the clock and pid stand in only if
/// /dev/urandom cannot be read.
fn random_seed() -> [u8; 32] {
    let urandom = os::random_bytes::<32>();
    let mut bytes = urandom.as_ref().map_or([0u8; 32], |b| *b);
    if urandom.is_err() {
        let fallback = os::wall_time().as_micros() ^ (u64::from(std::process::id()) << 32);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (fallback.rotate_left(i as u32 * 8) & 0xFF) as u8 ^ i as u8;
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        assert_eq!(parse_viewers("50").ok(), Some(50));
        assert_eq!(parse_duration("3s").ok(), Some(Duration::from_secs(3)));
        assert_eq!(parse_loss("5").ok(), Some(5.0));
        assert_eq!(parse_loss("2.5%").ok(), Some(2.5));
        for bad in ["0", "-1", "x", "1000000"] {
            let err = parse_viewers(bad).expect_err(bad).to_string();
            assert!(err.starts_with("--viewers"), "{err}");
        }
        for bad in ["", "0s", "10", "2h", "abc"] {
            let err = parse_duration(bad).expect_err(bad).to_string();
            assert!(err.starts_with("--duration"), "{err}");
        }
        for bad in ["-1", "51", "lots", "NaN"] {
            let err = parse_loss(bad).expect_err(bad).to_string();
            assert!(err.starts_with("--loss"), "{err}");
        }
        assert_eq!(
            parse_http("127.0.0.1:8080").ok(),
            "127.0.0.1:8080".parse().ok()
        );
        for bad in ["", "8080", "localhost", "127.0.0.1:99999"] {
            let err = parse_http(bad).expect_err(bad).to_string();
            assert!(err.starts_with("--http"), "{err}");
        }
    }
}
