//! Virtual viewers: each a UDP socket on its own loopback address
//! (127.10.x.y: the relay limits handshakes per source IP, as it would for
//! viewers on the internet) doing the real handshake, sending keepalives,
//! and counting what the relay delivers.
//!
//! Viewers are spread over a few threads, each pinned to a generator CPU,
//! each waiting on one epoll for all of its sockets and reading a ready
//! socket with recvmmsg. A thread wakes at least every [`TICK_MS`] to run
//! the viewers' timers and look at the phase; it never spins.
//!
//! With churn, each thread replaces its share of its viewers once a second
//! while measuring, in turn: the old one leaves (every other one with a
//! LEAVE, the rest silently) and its socket is closed; a new viewer on a
//! fresh socket at the same address (a new port) starts the handshake and
//! asks to start at the source's newest seq: the bench's opaque stream has
//! a keyframe only at seq 0, where the relay would otherwise start a new
//! viewer (with up to 256 chunks of catch-up) for as long as its window
//! holds it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use anyhow::Context;
use hdrhistogram::Histogram;
use shoal_proto::StreamId;
use shoal_proto::wire::{
    DataView, HELLO_MIN_LEN, Hello, Keepalive, MAX_NACK_ENTRIES, Message, MessageType, Nack,
    NackEntry, NackKind, SUPPORTED_VERSIONS, Subscribe, peek_type,
};
use shoal_relay::sys::batch::RecvBatch;
use shoal_relay::sys::clock::realtime_nanos;
use shoal_relay::sys::epoll::Epoll;
use shoal_relay::sys::socket::enable_timestamps;

use crate::seqs::{Arrival, SeqWindow};
use crate::shared::{Phase, Shared};
use crate::sys;
use churn::Churn;

mod churn;

/// Longest epoll wait, in milliseconds.
const TICK_MS: i32 = 10;
/// Timers run at most this often (nanoseconds).
const TIMER_EVERY: u64 = 20_000_000;
/// A HELLO or SUBSCRIBE unanswered this long is sent again (nanoseconds).
const RETRY_AFTER: u64 = 300_000_000;
/// Keepalive interval until the relay's ACCEPT names one (nanoseconds).
const DEFAULT_KEEPALIVE: u64 = 1_000_000_000;
/// Datagrams per recvmmsg.
const BATCH: usize = 64;
/// recvmmsg calls per readiness report, so one busy socket cannot starve
/// the others.
const BATCHES_PER_WAKE: usize = 4;
/// Highest one-way latency recorded, in microseconds (60 s).
const LATENCY_MAX_US: u64 = 60_000_000;
/// A viewer that joins by churn is served if its first DATA comes within
/// this long (nanoseconds).
pub const JOIN_DEADLINE: u64 = 2_000_000_000;

/// The loopback address of viewer `i`: 127.10.x.y with y in 1..=250.
pub fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 10, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// An empty one-way latency histogram: microseconds, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("constant bounds are valid")
}

/// Binds `count` viewer sockets, non-blocking, each with a receive buffer
/// of `rcvbuf` bytes (as far as the system allows).
pub fn bind(count: usize, rcvbuf: usize) -> anyhow::Result<Vec<UdpSocket>> {
    (0..count).map(|i| bind_one(i, rcvbuf)).collect()
}

/// Binds viewer `i`'s socket on a fresh port.
fn bind_one(i: usize, rcvbuf: usize) -> anyhow::Result<UdpSocket> {
    let addr = SocketAddrV4::new(address(i), 0);
    let socket = UdpSocket::bind(addr).with_context(|| {
        format!(
            "viewer {i}: cannot bind {addr}; every viewer needs its own loopback address and a \
             file descriptor: lower --viewers"
        )
    })?;
    socket.set_nonblocking(true)?;
    let _ = sys::set_buffer(&socket, sys::Buffer::Receive, rcvbuf);
    // Latency is taken when the datagram reached the socket, not when this
    // viewer's thread (one of a few serving thousands) got round to it.
    let _ = enable_timestamps(socket.as_raw_fd());
    Ok(socket)
}

/// What the viewer threads need to know.
#[derive(Debug, Clone)]
pub struct ViewerConfig {
    /// The relay.
    pub relay: SocketAddrV4,
    /// The stream to subscribe to.
    pub stream: StreamId,
    /// Threads to spread the viewers over.
    pub threads: usize,
    /// CPUs for those threads (thread `t` on `cpus[t % len]`); empty to
    /// leave them unpinned.
    pub cpus: Vec<usize>,
    /// Seqs each viewer remembers behind its highest, to tell duplicates.
    pub window_span: usize,
    /// Share of the viewers replaced each second while measuring (0: none).
    pub churn: f64,
    /// Receive buffer of a replacement's socket.
    pub rcvbuf: usize,
    /// Viewers (the first ones) that NACK the whole window every
    /// [`GREEDY_NACK_EVERY`]: subscribers abusing repairs (SPEC §11.6).
    pub greedy: usize,
}

/// How often a greedy viewer asks for the whole window again.
const GREEDY_NACK_EVERY: u64 = 1_000_000;
/// Chunks a greedy NACK asks for per entry.
const GREEDY_NACK_LEN: u16 = 64;

/// One viewer's counts over the measured range.
#[derive(Debug, Clone, Copy, Default)]
pub struct ViewerResult {
    /// The start seq of its first accepted subscription.
    pub start_seq: Option<u64>,
    /// Distinct measured DATA chunks received.
    pub delivered: u64,
    /// Measured DATA chunks received again.
    pub duplicates: u64,
    /// Measured DATA chunks that arrived after a higher seq.
    pub out_of_order: u64,
    /// For a viewer that left (churn): one past the highest seq it got;
    /// it owes nothing after. `None` while it stays.
    pub end_seq: Option<u64>,
}

/// One thread's results.
#[derive(Debug)]
pub struct ThreadReport {
    /// Per viewer, in the order given to the thread, then those replaced
    /// by churn.
    pub viewers: Vec<(usize, ViewerResult)>,
    /// One-way latency of measured chunks, microseconds.
    pub latency_us: Histogram<u64>,
    /// Datagrams from the relay received during [`Phase::Measure`].
    pub measured_datagrams: u64,
    /// Their bytes (UDP payload).
    pub measured_bytes: u64,
    /// REJECTs received, by reason.
    pub rejects: BTreeMap<String, u64>,
    /// LEAVEs received before the baseline.
    pub leaves: u64,
    /// Datagrams the viewers could not send (HELLO, SUBSCRIBE, KEEPALIVE).
    pub send_errors: u64,
    /// Churn: joins whose first DATA came after [`JOIN_DEADLINE`].
    pub joins_late: u64,
    /// Churn: joins that got no DATA at all within [`JOIN_DEADLINE`].
    pub joins_unserved: u64,
    /// Churn: joins still within their deadline at the end.
    pub joins_pending: u64,
    /// Datagrams without a kernel timestamp (dated when read instead).
    pub unstamped: u64,
}

/// Starts the viewer threads over `sockets` (viewer `i` on thread
/// `i % threads`).
pub fn spawn(
    sockets: Vec<UdpSocket>,
    config: &ViewerConfig,
    shared: &Arc<Shared>,
) -> anyhow::Result<Vec<JoinHandle<anyhow::Result<ThreadReport>>>> {
    let threads = config.threads.clamp(1, sockets.len().max(1));
    let mut groups: Vec<Vec<(usize, UdpSocket)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, socket) in sockets.into_iter().enumerate() {
        groups[i % threads].push((i, socket));
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(t, group)| {
            let config = config.clone();
            let shared = Arc::clone(shared);
            let cpu = (!config.cpus.is_empty()).then(|| config.cpus[t % config.cpus.len()]);
            std::thread::Builder::new()
                .name(format!("bench-viewers-{t}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        let _ = sys::pin_to(&[cpu]);
                    }
                    run(group, &config, &shared)
                })
                .context("cannot start a viewer thread")
        })
        .collect()
}

/// Counters of one thread, shared by its viewers.
struct Tally {
    latency_us: Histogram<u64>,
    measured_datagrams: u64,
    measured_bytes: u64,
    /// Delivered chunks not yet added to the shared progress counter.
    unflushed_chunks: u64,
    rejects: BTreeMap<String, u64>,
    leaves: u64,
    send_errors: u64,
    /// Viewers replaced by churn, with their results.
    retired: Vec<(usize, ViewerResult)>,
    joins_late: u64,
    joins_unserved: u64,
    /// Datagrams without a kernel timestamp.
    unstamped: u64,
}

/// What a viewer needs to know about the moment.
struct Now<'a> {
    nanos: u64,
    phase: Phase,
    first_seq: u64,
    relay: SocketAddrV4,
    stream: StreamId,
    shared: &'a Shared,
}

fn run(
    group: Vec<(usize, UdpSocket)>,
    config: &ViewerConfig,
    shared: &Shared,
) -> anyhow::Result<ThreadReport> {
    let mut epoll = Epoll::new(group.len().min(1024)).context("epoll_create1")?;
    let mut viewers = Vec::with_capacity(group.len());
    for (token, (index, socket)) in group.into_iter().enumerate() {
        epoll
            .add(socket.as_raw_fd(), token as u64)
            .context("epoll_ctl")?;
        let mut viewer = Viewer::new(index, socket, config.window_span, shared);
        viewer.greedy = index < config.greedy;
        viewers.push(viewer);
    }
    let mut batch = RecvBatch::new(BATCH);
    let mut tally = Tally {
        latency_us: latency_histogram(),
        measured_datagrams: 0,
        measured_bytes: 0,
        unflushed_chunks: 0,
        rejects: BTreeMap::new(),
        leaves: 0,
        send_errors: 0,
        retired: Vec::new(),
        joins_late: 0,
        joins_unserved: 0,
        unstamped: 0,
    };
    let mut churn = Churn::default();
    let mut ready = Vec::with_capacity(1024);
    let mut last_timers = 0;
    loop {
        let mut now = Now {
            nanos: shared.clock.now(),
            phase: shared.phase(),
            first_seq: shared.first_seq(),
            relay: config.relay,
            stream: config.stream,
            shared,
        };
        if now.phase == Phase::Stop {
            break;
        }
        if now.nanos.saturating_sub(last_timers) >= TIMER_EVERY {
            last_timers = now.nanos;
            for v in &mut viewers {
                v.on_timer(&now, &mut tally);
            }
            if config.churn > 0.0 && now.phase == Phase::Measure {
                churn.turn(&mut viewers, &epoll, config, &now, &mut tally)?;
            }
            shared.rx_chunks.fetch_add(
                std::mem::take(&mut tally.unflushed_chunks),
                Ordering::Relaxed,
            );
        }
        ready.clear();
        ready.extend(epoll.wait(TICK_MS).context("epoll_wait")?);
        for &token in &ready {
            let Some(v) = viewers.get_mut(token as usize) else {
                continue;
            };
            for _ in 0..BATCHES_PER_WAKE {
                let n = batch
                    .recv(v.socket.as_raw_fd())
                    .with_context(|| format!("viewer {}: recvmmsg", v.index))?;
                if n == 0 {
                    break;
                }
                // One clock read per batch; each datagram is dated by its
                // kernel timestamp, as its age then (realtime) subtracted
                // from the run's clock, or else by the read.
                let read_at = shared.clock.now();
                let wall = realtime_nanos();
                now.phase = shared.phase();
                now.first_seq = shared.first_seq();
                shared.rx_datagrams.fetch_add(n as u64, Ordering::Relaxed);
                for i in 0..n {
                    now.nanos = match batch.received_at(i) {
                        Some(at) => read_at.saturating_sub(wall.saturating_sub(at)),
                        None => {
                            tally.unstamped += 1;
                            read_at
                        }
                    };
                    let (bytes, from) = batch.datagram(i);
                    v.on_datagram(bytes, from, &now, &mut tally);
                }
                now.nanos = read_at;
                if n < BATCH {
                    break;
                }
            }
        }
    }
    shared
        .rx_chunks
        .fetch_add(tally.unflushed_chunks, Ordering::Relaxed);
    let end = shared.clock.now();
    let mut joins_pending = 0;
    for v in &viewers {
        match v.joined_at {
            Some(t) if !v.served && end.saturating_sub(t) >= JOIN_DEADLINE => {
                tally.joins_unserved += 1;
            }
            Some(_) if !v.served => joins_pending += 1,
            _ => {}
        }
    }
    let mut results: Vec<(usize, ViewerResult)> =
        viewers.iter().map(|v| (v.index, v.result)).collect();
    results.append(&mut tally.retired);
    Ok(ThreadReport {
        viewers: results,
        latency_us: tally.latency_us,
        measured_datagrams: tally.measured_datagrams,
        measured_bytes: tally.measured_bytes,
        rejects: tally.rejects,
        leaves: tally.leaves,
        send_errors: tally.send_errors,
        joins_late: tally.joins_late,
        joins_unserved: tally.joins_unserved,
        joins_pending,
        unstamped: tally.unstamped,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Sending HELLO until a CHALLENGE comes.
    Hello,
    /// SUBSCRIBE sent at this time; waiting for ACCEPT.
    Subscribing(u64),
    /// Accepted.
    Subscribed,
}

/// One virtual viewer.
struct Viewer {
    index: usize,
    socket: UdpSocket,
    state: State,
    nonce: u64,
    /// The session id from ACCEPT: its KEEPALIVE and LEAVE carry it.
    session: u64,
    last_hello: Option<u64>,
    last_keepalive: u64,
    keepalive_every: u64,
    /// Counted in `Shared::subscribed` already.
    counted: bool,
    seen: SeqWindow,
    result: ViewerResult,
    /// When it joined by churn (nanoseconds); `None` for the run's own.
    joined_at: Option<u64>,
    /// Whether DATA has reached it.
    served: bool,
    /// Asks for the whole window every [`GREEDY_NACK_EVERY`].
    greedy: bool,
    last_nack: u64,
}

impl Viewer {
    fn new(index: usize, socket: UdpSocket, window_span: usize, shared: &Shared) -> Self {
        // Distinct per viewer and per run; it only has to match its echo.
        let nonce = (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ shared.clock.now();
        Self {
            index,
            socket,
            state: State::Hello,
            nonce,
            session: 0,
            last_hello: None,
            last_keepalive: 0,
            keepalive_every: DEFAULT_KEEPALIVE,
            counted: false,
            seen: SeqWindow::new(window_span),
            result: ViewerResult::default(),
            joined_at: None,
            served: false,
            greedy: false,
            last_nack: 0,
        }
    }

    /// Its result as it leaves: it owes nothing past what it got.
    fn retire(&self) -> (usize, ViewerResult) {
        let mut result = self.result;
        result.end_seq = Some(self.seen.highest().map_or(0, |h| h + 1));
        (self.index, result)
    }

    fn send(&self, msg: &Message<'_>, now: &Now<'_>, tally: &mut Tally) {
        let mut buf = [0u8; 512];
        let sent = msg
            .emit(&mut buf)
            .ok()
            .and_then(|n| self.socket.send_to(&buf[..n], now.relay).ok());
        if sent.is_none() {
            tally.send_errors += 1;
        }
    }

    fn on_timer(&mut self, now: &Now<'_>, tally: &mut Tally) {
        // In the baseline the relay is gone: the viewers only listen.
        if now.phase >= Phase::Baseline {
            return;
        }
        match self.state {
            State::Hello => {
                if self
                    .last_hello
                    .is_none_or(|t| now.nanos.saturating_sub(t) >= RETRY_AFTER)
                {
                    self.last_hello = Some(now.nanos);
                    self.send(
                        &Message::Hello(Hello {
                            versions: SUPPORTED_VERSIONS,
                            nonce: self.nonce,
                            padded_len: HELLO_MIN_LEN as u16,
                        }),
                        now,
                        tally,
                    );
                }
            }
            State::Subscribing(since) => {
                if now.nanos.saturating_sub(since) >= RETRY_AFTER {
                    self.state = State::Hello;
                    self.last_hello = None;
                }
            }
            State::Subscribed => {
                if self.greedy && now.nanos.saturating_sub(self.last_nack) >= GREEDY_NACK_EVERY {
                    self.last_nack = now.nanos;
                    self.nack_everything(now, tally);
                }
                if now.nanos.saturating_sub(self.last_keepalive) >= self.keepalive_every {
                    self.last_keepalive = now.nanos;
                    self.send(
                        &Message::Keepalive(Keepalive {
                            stream: now.stream,
                            session: self.session,
                            highest_seq: self.seen.highest().unwrap_or(0),
                            lost: 0,
                            fec_repaired: 0,
                            nack_repaired: 0,
                            latency_us: 0,
                        }),
                        now,
                        tally,
                    );
                }
            }
        }
    }

    /// A NACK for the 2048 chunks behind the newest it has seen.
    fn nack_everything(&self, now: &Now<'_>, tally: &mut Tally) {
        let Some(highest) = self.seen.highest() else {
            return;
        };
        let span = MAX_NACK_ENTRIES as u64 * u64::from(GREEDY_NACK_LEN);
        let from = highest.saturating_sub(span);
        let mut nack = Nack::new(now.stream, self.session);
        for e in 0..MAX_NACK_ENTRIES as u64 {
            nack.push(NackEntry {
                kind: NackKind::Chunks,
                start: from + e * u64::from(GREEDY_NACK_LEN),
                len: GREEDY_NACK_LEN,
            });
        }
        self.send(&Message::Nack(nack), now, tally);
    }

    fn on_datagram(&mut self, bytes: &[u8], from: SocketAddrV4, now: &Now<'_>, tally: &mut Tally) {
        if from != now.relay {
            return;
        }
        if now.phase == Phase::Measure {
            tally.measured_datagrams += 1;
            tally.measured_bytes += bytes.len() as u64;
        }
        match peek_type(bytes) {
            Ok(MessageType::Data) => {
                if let Ok(data) = DataView::new_checked(bytes) {
                    self.on_data(data.fields().seq, now, tally);
                }
            }
            Ok(
                MessageType::Challenge
                | MessageType::Accept
                | MessageType::Reject
                | MessageType::Leave,
            ) => {
                if let Ok(msg) = Message::parse(bytes) {
                    self.on_control(msg, now, tally);
                }
            }
            _ => {}
        }
    }

    fn on_data(&mut self, seq: u64, now: &Now<'_>, tally: &mut Tally) {
        if !self.served {
            self.served = true;
            if let Some(t) = self.joined_at {
                if now.nanos.saturating_sub(t) <= JOIN_DEADLINE {
                    now.shared.joins_served.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.joins_late += 1;
                }
            }
        }
        let arrival = self.seen.insert(seq);
        // Before the measurement (first_seq unset) nothing is counted.
        if seq < now.first_seq {
            return;
        }
        if arrival == Arrival::Duplicate {
            self.result.duplicates += 1;
            return;
        }
        self.result.delivered += 1;
        tally.unflushed_chunks += 1;
        if arrival != Arrival::InOrder {
            self.result.out_of_order += 1;
        }
        if let Some(sent) = now.shared.sent.sent_at(seq) {
            tally
                .latency_us
                .saturating_record(now.nanos.saturating_sub(sent) / 1000);
        }
    }

    fn on_control(&mut self, msg: Message<'_>, now: &Now<'_>, tally: &mut Tally) {
        match msg {
            Message::Challenge(c) if self.state == State::Hello && c.nonce == self.nonce => {
                self.state = State::Subscribing(now.nanos);
                let newest = now.shared.newest_seq.load(Ordering::Relaxed);
                let start_seq =
                    (self.joined_at.is_some() && newest != crate::shared::UNSET).then_some(newest);
                self.send(
                    &Message::Subscribe(Subscribe {
                        stream: now.stream,
                        clubs: u64::MAX,
                        start_seq,
                        cookie: c.cookie,
                        token: &[],
                    }),
                    now,
                    tally,
                );
            }
            Message::Accept(a) if a.stream == now.stream && self.state != State::Subscribed => {
                self.state = State::Subscribed;
                self.session = a.session;
                // A later re-subscription keeps the first start: what the
                // viewer missed in between counts as lost.
                self.result.start_seq.get_or_insert(a.start_seq);
                self.keepalive_every = u64::from(a.keepalive_ms) * 1_000_000;
                self.last_keepalive = now.nanos;
                if !self.counted {
                    self.counted = true;
                    now.shared.subscribed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Message::Reject(r) => {
                *tally.rejects.entry(format!("{:?}", r.reason)).or_default() += 1;
                // Refused or forgotten: start over (HELLO after the retry
                // delay).
                self.state = State::Hello;
            }
            Message::Leave(_) if now.phase < Phase::Baseline => {
                tally.leaves += 1;
                self.state = State::Hello;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_loopback_ips() {
        assert_eq!(address(0), Ipv4Addr::new(127, 10, 0, 1));
        assert_eq!(address(249), Ipv4Addr::new(127, 10, 0, 250));
        assert_eq!(address(250), Ipv4Addr::new(127, 10, 1, 1));
        assert_eq!(
            address(crate::cli::MAX_VIEWERS - 1),
            Ipv4Addr::new(127, 10, 255, 250)
        );
        let all: std::collections::HashSet<_> = (0..crate::cli::MAX_VIEWERS).map(address).collect();
        assert_eq!(all.len(), crate::cli::MAX_VIEWERS);
    }
}
