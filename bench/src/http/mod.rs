//! HTTP readers (`--http-viewers`): TCP connections to the relay's web
//! face, each a `GET /streams/<ID>.ts` (HTTP/1.1, chunked), all on one
//! thread that waits on one epoll and reads whatever is ready into one
//! buffer, counting, never keeping: what a reader costs the load tool is
//! a socket and a few dozen bytes.
//!
//! Each reader counts its stream bytes (framing off, [`answer`]) while
//! measuring, and how late each frame reaches it: the source stamps a
//! frame's first TS packet with the run clock ([`crate::ts`]), and the
//! reader subtracts that from the clock when the packet arrives. A
//! reader fell behind when a frame came later than [`LATE_AFTER`], or it
//! got less than [`MIN_RATE_SHARE`] of the stream's bytes. The relay's count of readers that fell so far behind that they
//! jumped to a newer keyframe comes from its `/api/streams` ([`api`]).
//!
//! Readers connect [`MAX_OPENING`] at a time, so the relay's accept queue
//! never overflows into a SYN retry a second later.

mod answer;
pub mod api;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use shoal_relay::sys::epoll::Epoll;

use self::answer::Answer;
use crate::shared::{Phase, Shared};
use crate::sys;
use crate::viewers::latency_histogram;

/// Readers connected and not yet answered, at most: well under a
/// listener's default backlog (128).
const MAX_OPENING: usize = 64;
/// Longest epoll wait, in milliseconds.
const TICK_MS: i32 = 10;
/// The one receive buffer.
const READ_BUF: usize = 64 << 10;
/// Reads per readiness report, so that one reader cannot starve the rest.
const READS_PER_WAKE: usize = 4;
/// How long a connect may take on loopback.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A frame reaching a reader later than this after the source made it
/// means the reader fell behind: the latency budget of the relay's own
/// viewer that fills the HTTP feed, past which that viewer would give up
/// on a chunk. On loopback a frame takes some 20-40 ms (most of it the
/// chunker waiting for the next frame's first packet).
pub const LATE_AFTER: Duration = Duration::from_millis(500);
/// A reader that got less than this share of the stream's bytes per
/// second over the measurement fell behind.
pub const MIN_RATE_SHARE: f64 = 0.95;

/// What the reader thread needs.
#[derive(Debug, Clone)]
pub struct ReadersConfig {
    /// The relay's web face.
    pub addr: SocketAddr,
    /// `/streams/<ID>.ts`.
    pub path: String,
    /// Readers to open.
    pub count: usize,
    /// CPUs for the thread; empty to leave it unpinned.
    pub cpus: Vec<usize>,
}

/// What the main thread watches while the readers run.
#[derive(Debug, Default)]
pub struct Counts {
    /// Readers whose stream has begun (their first body byte).
    pub started: AtomicUsize,
    /// Readers answered with another status than 200.
    pub refused: AtomicUsize,
    /// Readers that could not connect, or whose connection ended or went
    /// wrong before or while streaming.
    pub failed: AtomicUsize,
    /// Stream bytes all readers received, from the start.
    pub bytes: AtomicU64,
}

/// One reader's result.
#[derive(Debug, Clone, Default)]
pub struct ReaderResult {
    /// The status of its answer, if one came.
    pub status: Option<u16>,
    /// Whether its stream began.
    pub started: bool,
    /// Stream bytes received while measuring.
    pub measured_bytes: u64,
    /// How late the latest-arriving frame measured reached it, ns.
    pub latest_ns: Option<u64>,
    /// Why it stopped before the measurement was over, if it did.
    pub ended: Option<String>,
}

/// The thread's results.
#[derive(Debug)]
pub struct ReadersReport {
    /// Per reader, in the order opened.
    pub readers: Vec<ReaderResult>,
    /// How late measured frames reached the readers (one sample per
    /// frame per reader), microseconds.
    pub latency_us: Histogram<u64>,
}

/// The running reader thread.
#[derive(Debug)]
pub struct Readers {
    /// The thread; it returns once the phase reaches [`Phase::Stop`].
    pub thread: JoinHandle<anyhow::Result<ReadersReport>>,
    /// Its live counts.
    pub counts: Arc<Counts>,
}

/// Starts the reader thread.
pub fn spawn(config: ReadersConfig, shared: &Arc<Shared>) -> anyhow::Result<Readers> {
    let counts = Arc::new(Counts::default());
    let shared = Arc::clone(shared);
    let thread_counts = Arc::clone(&counts);
    let thread = std::thread::Builder::new()
        .name("bench-http".into())
        .spawn(move || {
            if !config.cpus.is_empty() {
                let _ = sys::pin_to(&config.cpus);
            }
            run(&config, &shared, &thread_counts)
        })
        .context("cannot start the HTTP reader thread")?;
    Ok(Readers { thread, counts })
}

/// One reader.
struct Reader {
    /// `None` once it ended.
    socket: Option<TcpStream>,
    answer: Answer,
    result: ReaderResult,
}

/// What a read sees of the moment.
struct Now<'a> {
    shared: &'a Shared,
    counts: &'a Counts,
    latency_us: &'a mut Histogram<u64>,
}

fn run(config: &ReadersConfig, shared: &Shared, counts: &Counts) -> anyhow::Result<ReadersReport> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shoal-bench\r\n\r\n",
        config.path, config.addr
    );
    let mut epoll = Epoll::new(1024).context("epoll_create1")?;
    let mut readers: Vec<Reader> = Vec::with_capacity(config.count);
    let mut buf = vec![0u8; READ_BUF];
    let mut latency_us = latency_histogram();
    let mut ready = Vec::with_capacity(1024);
    loop {
        let phase = shared.phase();
        if phase == Phase::Stop {
            break;
        }
        if readers.len() < config.count && phase < Phase::Drain {
            let opening = readers
                .iter()
                .filter(|r| r.socket.is_some() && r.answer.status().is_none())
                .count();
            for _ in opening..MAX_OPENING.min(opening + config.count - readers.len()) {
                let reader = Reader::open(config.addr, &request, readers.len(), &epoll, counts);
                readers.push(reader);
            }
        }
        ready.clear();
        ready.extend(epoll.wait(TICK_MS).context("epoll_wait")?);
        let mut now = Now {
            shared,
            counts,
            latency_us: &mut latency_us,
        };
        for &token in &ready {
            if let Some(r) = readers.get_mut(token as usize) {
                r.on_readable(&mut buf, &mut now);
            }
        }
    }
    Ok(ReadersReport {
        readers: readers.into_iter().map(|r| r.result).collect(),
        latency_us,
    })
}

impl Reader {
    /// Connects, sends the request and registers the socket as `token`;
    /// a reader that could not is returned ended, and counted failed.
    fn open(addr: SocketAddr, request: &str, token: usize, epoll: &Epoll, counts: &Counts) -> Self {
        let opened = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
            .and_then(|mut s| {
                s.write_all(request.as_bytes())?;
                s.set_nonblocking(true)?;
                epoll.add(s.as_raw_fd(), token as u64)?;
                Ok(s)
            })
            .map_err(|e| format!("connect: {e}"));
        let mut reader = Self {
            socket: None,
            answer: Answer::default(),
            result: ReaderResult::default(),
        };
        match opened {
            Ok(s) => reader.socket = Some(s),
            Err(why) => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                reader.result.ended = Some(why);
            }
        }
        reader
    }

    /// Reads what is there, up to [`READS_PER_WAKE`] buffers.
    fn on_readable(&mut self, buf: &mut [u8], now: &mut Now<'_>) {
        for _ in 0..READS_PER_WAKE {
            let Some(socket) = &mut self.socket else {
                return;
            };
            let n = match socket.read(buf) {
                Ok(0) => return self.end("the relay closed the connection", now),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return self.end(&format!("read: {e}"), now),
            };
            self.take(&buf[..n], now);
            if n < buf.len() {
                return;
            }
        }
    }

    /// Counts `bytes`, just read.
    fn take(&mut self, bytes: &[u8], now: &mut Now<'_>) {
        let measuring = now.shared.phase() == Phase::Measure;
        let at = now.shared.clock.now();
        let mut latest = self.result.latest_ns;
        let latency_us = &mut *now.latency_us;
        let fed = self.answer.feed(bytes, &mut |stamp| {
            if measuring {
                let late = at.saturating_sub(stamp);
                latency_us.saturating_record((late / 1000).max(1));
                latest = latest.max(Some(late));
            }
        });
        self.result.latest_ns = latest;
        self.result.status = self.answer.status();
        let body = match fed {
            Ok(body) => body,
            Err(why) => return self.end(&format!("a malformed answer: {why}"), now),
        };
        if let Some(status) = self.result.status.filter(|&s| s != 200) {
            now.counts.refused.fetch_add(1, Ordering::Relaxed);
            self.socket = None;
            self.result.ended = Some(format!("answered {status}"));
            return;
        }
        if body > 0 && !self.result.started {
            self.result.started = true;
            now.counts.started.fetch_add(1, Ordering::Relaxed);
        }
        if measuring {
            self.result.measured_bytes += body;
        }
        now.counts.bytes.fetch_add(body, Ordering::Relaxed);
        if self.answer.done() {
            self.end("the stream ended", now);
        }
    }

    /// Closes the reader; counted failed if the measurement was not over.
    fn end(&mut self, why: &str, now: &Now<'_>) {
        self.socket = None;
        if now.shared.phase() <= Phase::Measure {
            now.counts.failed.fetch_add(1, Ordering::Relaxed);
            self.result.ended = Some(why.to_owned());
        }
    }
}
