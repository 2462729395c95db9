//! The machine's limit for the same destinations: bare send loops on the
//! relay's CPUs, to the viewers' own sockets, while the viewer threads
//! count what arrives. What arrives per second is the ceiling against
//! which the relay's fan-out is judged.
//!
//! Three loops, each for a fixed time: (a) sendmmsg, 64 datagrams a call,
//! round-robin over the destinations; (b) UDP GSO, trains of
//! [`GSO_SEGMENTS`] segments to one destination (UDP_SEGMENT in a cmsg),
//! two trains a sendmmsg call, round-robin; (c) the same trains through
//! io_uring, one SEND each (`shoal_relay::sys::uring_gso`). Datagrams are DATA-sized
//! and zero-filled; the viewers count them without parsing further.

use std::io;
use std::net::{SocketAddrV4, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use shoal_relay::sys::addr::RawAddr;
use shoal_relay::sys::batch::{Outgoing, SendBatch};
use shoal_relay::sys::cmsg::GsoCmsg;

use crate::shared::Shared;
use crate::sys;

/// Datagrams per sendmmsg call in the plain loop.
const MMSG_BATCH: usize = 64;
/// Segments per GSO train: 32, about what the relay's trains carry at
/// saturation (34 on average at 1,000 x 12 Mbit/s), so the ceiling is
/// measured with trains at least as long as the relay's own. 16 and 47
/// were within this machine's noise of 32 (BENCHMARKS.md, issue 19).
pub const GSO_SEGMENTS: usize = 32;
/// Trains per sendmmsg call in the GSO loop (64 datagrams, as above).
const GSO_TRAINS: usize = 2;
/// Time after the senders stop for what is in flight to be read.
const SETTLE: Duration = Duration::from_millis(50);

/// Which loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One datagram per message, 64 messages per sendmmsg.
    Sendmmsg,
    /// GSO trains.
    Gso,
    /// GSO trains through io_uring.
    UringGso,
}

/// What one loop achieved.
#[derive(Debug, Clone, Copy)]
pub struct LoopResult {
    /// Datagrams the senders handed to the kernel.
    pub sent: u64,
    /// Datagrams the viewers received.
    pub received: u64,
    /// How long the senders ran.
    pub elapsed: Duration,
}

impl LoopResult {
    /// Datagrams received per second.
    pub fn received_pps(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Datagrams sent per second.
    pub fn sent_pps(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What the three loops achieved; a GSO loop the kernel refused is `None`.
#[derive(Debug, Clone, Copy)]
pub struct Loops {
    /// One datagram per message, sendmmsg.
    pub mmsg: LoopResult,
    /// GSO trains, sendmmsg.
    pub gso: Option<LoopResult>,
    /// GSO trains, io_uring.
    pub uring_gso: Option<LoopResult>,
}

/// Runs one loop for `time`: one sender thread per CPU in `cpus` (one
/// unpinned thread if empty), the destinations dealt round-robin among
/// them. The viewer threads must be counting into `shared.rx_datagrams`.
pub fn run(
    mode: Mode,
    dests: &[SocketAddrV4],
    cpus: &[usize],
    datagram_len: usize,
    time: Duration,
    shared: &Shared,
) -> anyhow::Result<LoopResult> {
    let threads = cpus.len().max(1).min(dests.len().max(1));
    let received_before = shared.rx_datagrams.load(Ordering::Relaxed);
    let start = Instant::now();
    let deadline = start + time;
    let sent = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<SocketAddrV4> =
                    dests.iter().skip(t).step_by(threads).copied().collect();
                let cpu = cpus.get(t).copied();
                std::thread::Builder::new()
                    .name(format!("bench-baseline-{t}"))
                    .spawn_scoped(scope, move || {
                        if let Some(cpu) = cpu {
                            let _ = sys::pin_to(&[cpu]);
                        }
                        send_loop(mode, &mine, datagram_len, deadline)
                    })
                    .context("cannot start a baseline sender")
            })
            .collect::<anyhow::Result<_>>()?;
        let mut sent = 0;
        for h in handles {
            sent += h
                .join()
                .map_err(|_| anyhow::anyhow!("a baseline sender panicked"))??;
        }
        anyhow::Ok(sent)
    })?;
    let elapsed = start.elapsed();
    std::thread::sleep(SETTLE);
    let received = shared.rx_datagrams.load(Ordering::Relaxed) - received_before;
    Ok(LoopResult {
        sent,
        received,
        elapsed,
    })
}

/// Sends to `dests` until `deadline`; returns datagrams sent.
fn send_loop(
    mode: Mode,
    dests: &[SocketAddrV4],
    datagram_len: usize,
    deadline: Instant,
) -> anyhow::Result<u64> {
    if dests.is_empty() {
        return Ok(0);
    }
    let (segments, per_call) = match mode {
        Mode::Sendmmsg => (1, MMSG_BATCH),
        Mode::Gso => (GSO_SEGMENTS, GSO_TRAINS),
        Mode::UringGso => {
            return shoal_relay::sys::uring_gso::send_loop(
                dests,
                datagram_len,
                GSO_SEGMENTS,
                deadline,
            );
        }
    };
    let socket = UdpSocket::bind("127.0.0.1:0").context("cannot bind a baseline socket")?;
    let _ = sys::set_buffer(&socket, sys::Buffer::Send, 4 << 20);
    let names: Vec<RawAddr> = dests
        .iter()
        .map(|&d| RawAddr::new(d.into(), false))
        .collect();
    let payload = vec![0u8; datagram_len * segments];
    let gso = match mode {
        Mode::Sendmmsg | Mode::UringGso => None,
        Mode::Gso => Some(GsoCmsg::new(
            u16::try_from(datagram_len).context("segment size")?,
        )),
    };
    let mut batch = SendBatch::new(per_call);
    let mut cursor = 0;
    let mut sent = 0;
    let mut failures = 0u32;
    while Instant::now() < deadline {
        let messages = (0..per_call).map(|_| {
            let to = &names[cursor % names.len()];
            cursor = cursor.wrapping_add(1);
            Outgoing {
                to: Some(to),
                payload: &payload,
                gso: gso.as_ref(),
            }
        });
        match batch.send(&socket, messages, 0) {
            Ok(messages) => {
                sent += (messages * segments) as u64;
                failures = 0;
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => {
                failures += 1;
                // Not a passing hiccup: e.g. no UDP_SEGMENT on this kernel.
                if sent == 0 || failures > 100 {
                    return Err(e).with_context(|| format!("{mode:?} baseline: sendmmsg"));
                }
            }
        }
    }
    Ok(sent)
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    ) || e.raw_os_error() == Some(libc::ENOBUFS)
        || e.raw_os_error() == Some(libc::ECONNREFUSED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Sends with `mode` for a short time to two local sockets and checks
    /// that what they read matches what the sender says it sent.
    fn loop_delivers(mode: Mode) {
        let rx: Vec<UdpSocket> = (0..2)
            .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let dests: Vec<SocketAddrV4> = rx
            .iter()
            .map(|s| match s.local_addr().expect("addr") {
                std::net::SocketAddr::V4(a) => a,
                std::net::SocketAddr::V6(_) => unreachable!("bound to IPv4"),
            })
            .collect();
        for s in &rx {
            s.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
        }
        // A loop whose setup (an io_uring ring) takes its whole window on
        // a busy host sends nothing: try again with a longer one.
        let sent = [1, 10, 100, 1000]
            .into_iter()
            .map(|ms| {
                let deadline = Instant::now() + Duration::from_millis(ms);
                send_loop(mode, &dests, 100, deadline).expect("sends")
            })
            .find(|&sent| sent > 0)
            .unwrap_or(0);
        let got = AtomicU64::new(0);
        let mut buf = [0u8; 2048];
        for s in &rx {
            while let Ok(n) = s.recv(&mut buf) {
                assert_eq!(n, 100, "each segment arrives as its own datagram");
                got.fetch_add(1, Ordering::Relaxed);
            }
        }
        assert!(sent > 0);
        // The receive buffers may overflow; nothing arrives that was not sent.
        assert!(got.load(Ordering::Relaxed) <= sent);
        assert!(got.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn sendmmsg_loop_delivers() {
        loop_delivers(Mode::Sendmmsg);
    }

    #[test]
    fn gso_loop_delivers_segments() {
        loop_delivers(Mode::Gso);
    }

    #[test]
    fn io_uring_gso_loop_delivers_segments() {
        loop_delivers(Mode::UringGso);
    }
}
