//! The demo's viewers: many [`Viewer`]s, each on its own UDP socket and
//! loopback address, driven by one thread.
//!
//! Each turn: wait in `poll(2)` for a readable socket or the earliest
//! viewer timer (at most [`MAX_WAIT`]), read what is waiting (dropping a
//! seeded share of it when a loss rate is set), run due timers, send what
//! the viewers queued and take their events. Counters go to a shared
//! [`Tally`] for the status line.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use shoal_proto::rng::Rng;
use shoal_proto::viewer::{Viewer, ViewerConfig, ViewerEvent, ViewerStats};
use shoal_proto::{StreamId, Time};

use super::digest::Digest;
use crate::os;
use crate::roles::udp::wait_until;
use crate::sys::{self, poll::PollFd};

/// Longest wait in `poll(2)`.
const MAX_WAIT: Duration = Duration::from_millis(20);
/// Most datagrams read from one socket per turn, so none starves the rest.
const READ_BURST: usize = 64;

/// What the viewers of all threads have done so far.
#[derive(Debug)]
pub struct Tally {
    /// Viewers that have been accepted.
    pub subscribed: usize,
    /// Chunks output, all viewers.
    pub delivered: u64,
    /// Chunks rebuilt by FEC.
    pub fec: u64,
    /// Chunks repaired by NACK.
    pub nack: u64,
    /// Chunks given up.
    pub lost: u64,
    /// Publisher timestamp to output, microseconds.
    pub latency_us: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            subscribed: 0,
            delivered: 0,
            fec: 0,
            nack: 0,
            lost: 0,
            latency_us: crate::server::metrics::latency_histogram(),
        }
    }
}

/// How one viewer did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its counters.
    pub stats: ViewerStats,
    /// It saw the end of the stream.
    pub ended: bool,
    /// Every chunk from its first to the end came, in order, no gap.
    pub complete: bool,
    /// Bytes output.
    pub bytes: u64,
    /// Digest of its output.
    pub digest: Digest,
}

/// The loopback address of viewer `i`, its own IP (the relay limits
/// handshakes per IP).
pub fn viewer_addr(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(127, 20, (i / 250) as u8, (i % 250 + 1) as u8);
    SocketAddr::new(IpAddr::V4(ip), 0)
}

/// One viewer and its socket.
#[derive(Debug)]
pub struct Member {
    viewer: Viewer,
    socket: UdpSocket,
    /// Decides which datagrams to drop.
    rng: Rng,
    subscribed: bool,
    next_seq: Option<u64>,
    broken: bool,
    ended: bool,
    bytes: u64,
    digest: Digest,
}

impl Member {
    /// Viewer `i` of `stream` at `relay`.
    pub fn new(i: usize, relay: SocketAddr, stream: StreamId, seed: u64) -> anyhow::Result<Self> {
        let addr = viewer_addr(i);
        let socket = UdpSocket::bind(addr)
            .with_context(|| format!("cannot bind viewer {i}'s socket to {addr}"))?;
        socket
            .set_nonblocking(true)
            .context("making a viewer socket nonblocking")?;
        let mut config = ViewerConfig::new(relay, stream);
        config.nonce_seed = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        config.window.wall_clock = os::wall_clock();
        let viewer = Viewer::new(config, os::now())
            .map_err(|e| anyhow::anyhow!("viewer {i} cannot be made: {e}"))?;
        Ok(Self {
            viewer,
            socket,
            rng: Rng::new((i as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D)),
            subscribed: false,
            next_seq: None,
            broken: false,
            ended: false,
            bytes: 0,
            digest: Digest::default(),
        })
    }

    /// Whether to drop the next datagram, at `loss` (0 to 1).
    fn drop_next(&mut self, loss: f64) -> bool {
        if loss <= 0.0 {
            return false;
        }
        self.rng.chance(loss)
    }

    fn read(&mut self, buf: &mut [u8], loss: f64) {
        for _ in 0..READ_BURST {
            match self.socket.recv_from(buf) {
                Ok((n, from)) => {
                    if self.drop_next(loss) {
                        continue;
                    }
                    let bytes = buf.get(..n).unwrap_or_default();
                    self.viewer.handle_datagram(os::now(), from, bytes);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock, or an ICMP error from an earlier send.
                Err(_) => return,
            }
        }
    }

    fn drive(&mut self, now: Time, tally: &mut Tally) {
        if self.viewer.poll_timeout().is_some_and(|t| t <= now) {
            self.viewer.handle_timeout(now);
        }
        while let Some(t) = self.viewer.poll_transmit() {
            // Loopback: a failed send is a lost datagram, which the
            // protocol repairs.
            if let Err(e) = self.socket.send_to(t.payload, t.dst) {
                tracing::trace!(error = %e, "viewer send failed");
            }
        }
        while let Some(event) = self.viewer.poll_event() {
            match event {
                ViewerEvent::Subscribed { .. } => {
                    if !self.subscribed {
                        tally.subscribed += 1;
                    }
                    self.subscribed = true;
                }
                ViewerEvent::Chunk {
                    seq,
                    payload,
                    latency,
                    ..
                } => {
                    if self.next_seq.is_some_and(|next| next != seq) {
                        self.broken = true;
                    }
                    self.next_seq = Some(seq + 1);
                    self.bytes += payload.len() as u64;
                    self.digest.write(&payload);
                    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                    tally.latency_us.saturating_record(us.max(1));
                }
                ViewerEvent::Gap { to, .. } => {
                    self.broken = true;
                    self.next_seq = Some(to);
                }
                ViewerEvent::Rejected(reason) => {
                    tracing::debug!(?reason, "viewer refused");
                }
                // The demo's viewers have one relay.
                ViewerEvent::RelayChanged { .. } | ViewerEvent::NewRun { .. } => {}
                ViewerEvent::EndOfStream => self.ended = true,
            }
        }
    }

    fn outcome(&self) -> Outcome {
        let stats = self.viewer.stats();
        Outcome {
            stats,
            ended: self.ended,
            complete: self.ended && !self.broken && stats.lost == 0 && self.bytes > 0,
            bytes: self.bytes,
            digest: self.digest,
        }
    }
}

/// Drives `members` until all have seen the end of the stream or
/// `deadline` passes.
pub fn drive(
    mut members: Vec<Member>,
    loss: f64,
    tally: &Arc<Mutex<Tally>>,
    deadline: Instant,
) -> Vec<Outcome> {
    let mut buf = vec![0u8; 65536];
    let mut fds: Vec<PollFd> = members
        .iter()
        .map(|m| PollFd {
            fd: m.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // This thread's share of the counters, kept to update the tally by
    // difference.
    let mut counted = ViewerStats::default();
    loop {
        for (m, fd) in members.iter_mut().zip(&fds) {
            if fd.revents & libc::POLLIN != 0 {
                m.read(&mut buf, loss);
            }
        }
        let now = os::now();
        {
            let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
            for m in &mut members {
                m.drive(now, &mut tally);
            }
            let mut sum = ViewerStats::default();
            for s in members.iter().map(|m| m.viewer.stats()) {
                sum.played += s.played;
                sum.fec_repaired += s.fec_repaired;
                sum.nack_repaired += s.nack_repaired;
                sum.lost += s.lost;
            }
            tally.delivered += sum.played - counted.played;
            tally.fec += sum.fec_repaired - counted.fec_repaired;
            tally.nack += sum.nack_repaired - counted.nack_repaired;
            tally.lost += sum.lost - counted.lost;
            counted = sum;
        }
        if members.iter().all(|m| m.ended) || Instant::now() >= deadline {
            break;
        }
        let timer = members.iter().filter_map(|m| m.viewer.poll_timeout()).min();
        let wait = wait_until(timer, MAX_WAIT);
        for fd in &mut fds {
            fd.revents = 0;
        }
        let ready = sys::poll::poll(&mut fds, wait);
        if ready.is_err() {
            // EINTR, or worse: go round after a pause, so that even a
            // failing poll cannot spin; the deadline bounds the loop.
            for fd in &mut fds {
                fd.revents = 0;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    members.iter().map(Member::outcome).collect()
}
