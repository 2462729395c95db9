//! The portable backend: `recvmmsg` and `sendmmsg` on one UDP socket, and
//! `ppoll` to wait for it and the worker's [`Waker`].
//!
//! Receives land in a fixed set of 2 KiB buffers whose message headers are
//! built once. Sends wait in a FIFO of trains that hold clones of the
//! callers' buffers; each turn hands as many as fit to `sendmmsg`: one
//! message per train with GSO (a `UDP_SEGMENT` control message), else one
//! message per datagram. What the kernel will not take yet (EAGAIN) waits
//! for POLLOUT. A GSO send the kernel refuses goes out again datagram by
//! datagram: EINVAL (segments larger than the route's MTU) for that train
//! alone, EIO (no checksum offload) for good, as GSO is then switched off.
//!
//! A turn: send what is queued, wait, drain the socket (a bounded number
//! of batches, so a flood cannot starve sends), send again. Nothing here
//! allocates once the queues have reached their high-water mark.

mod rx;
#[cfg(test)]
mod tests;
mod tx;

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Backend, BackendStats, IoConfig, Sink, Train, Waker, socket};

use self::rx::RxRing;
use self::tx::{Queued, TrainQueue, TxBatch};

/// Bytes per receive buffer: more than any datagram shoal sends. A larger
/// datagram comes back flagged MSG_TRUNC and is dropped.
const RX_BUFFER: usize = 2048;
/// Most datagrams per `recvmmsg`.
const RX_BATCH: usize = 256;
/// Most `recvmmsg` calls per turn: one, so that under a flood of junk the
/// sends a batch made ready go out before the next batch is read (measured
/// with `shoal-bench --flood 200000`, 1000 viewers: one-way p99 4-10 ms at
/// 8 calls a turn, 3.7-4.5 ms at 1).
const RX_BATCHES_PER_TURN: usize = 1;
/// Most messages per `sendmmsg` (the kernel caps a call at UIO_MAXIOV, 1024).
const TX_BATCH: usize = 256;
/// Most iovecs in one `sendmmsg` (a GSO message takes one per segment).
const TX_IOVECS: usize = 2048;
/// Most `sendmmsg` calls per flush; the rest waits for the next one.
const TX_BATCHES_PER_FLUSH: usize = 64;
/// Queue capacity reserved up front; both queues grow past it if needed.
const TX_RESERVE: usize = 1024;

/// recvmmsg/sendmmsg with ppoll. See the module docs.
pub struct MmsgBackend {
    socket: UdpSocket,
    waker: Arc<Waker>,
    local: SocketAddr,
    /// An IPv6 socket: destinations are written as IPv6, v4-mapped where
    /// needed.
    ipv6: bool,
    gso: bool,
    tx_queue: usize,
    rx: RxRing,
    queue: TrainQueue,
    batch: TxBatch,
    stats: BackendStats,
}

impl MmsgBackend {
    /// Drives `socket` (any blocking mode: every call passes
    /// MSG_DONTWAIT), watching `waker` beside it.
    pub fn new(socket: UdpSocket, waker: Arc<Waker>, config: IoConfig) -> io::Result<Self> {
        let local = socket.local_addr()?;
        let gso = config.gso && socket::gso_supported(&socket);
        Ok(Self {
            socket,
            waker,
            local,
            ipv6: local.is_ipv6(),
            gso,
            tx_queue: config.tx_queue,
            rx: RxRing::new(config.rx_buffers.clamp(1, RX_BATCH)),
            queue: TrainQueue {
                trains: VecDeque::with_capacity(TX_RESERVE.min(config.tx_queue)),
                segments: VecDeque::with_capacity(TX_RESERVE),
            },
            batch: TxBatch::new(),
            stats: BackendStats::default(),
        })
    }
}

impl Backend for MmsgBackend {
    fn name(&self) -> &'static str {
        "mmsg"
    }

    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn gso(&self) -> bool {
        self.gso
    }

    fn push(&mut self, train: &mut Train, born: Instant) {
        let Some(dst) = train.dst() else {
            return;
        };
        if self.queue.trains.len() >= self.tx_queue {
            self.stats.tx_dropped += 1;
            return;
        }
        let (count, gso_size) = (train.segments().len(), train.segment_size().unwrap_or(0));
        self.queue.segments.extend(train.drain());
        self.queue.trains.push_back(Queued {
            dst,
            born,
            count,
            done: 0,
            bytes: 0,
            gso_size,
        });
    }

    fn turn(&mut self, timeout: Option<Duration>, sink: &mut dyn Sink) -> io::Result<()> {
        self.flush(sink);
        let writable = if self.queue.trains.is_empty() {
            0
        } else {
            libc::POLLOUT
        };
        let mut fds = [
            libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events: libc::POLLIN | writable,
                revents: 0,
            },
            libc::pollfd {
                fd: self.waker.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let limit = timeout.map(|d| libc::timespec {
            tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: d.subsec_nanos().into(),
        });
        let limit_ptr = limit.as_ref().map_or(ptr::null(), ptr::from_ref);
        // SAFETY: `fds` is a live array of two pollfds, `limit_ptr` is null
        // or points at `limit`, which outlives the call, and a null signal
        // mask leaves the mask as it is.
        let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, limit_ptr, ptr::null()) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if fds[1].revents != 0 {
            self.waker.reset();
        }
        let received = if fds[0].revents & (libc::POLLIN | libc::POLLERR) != 0 {
            self.receive(sink)
        } else {
            Ok(())
        };
        self.flush(sink);
        received
    }

    fn stats(&self) -> BackendStats {
        self.stats
    }
}

impl std::fmt::Debug for MmsgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgBackend")
            .field("local", &self.local)
            .field("gso", &self.gso)
            .field("queued_trains", &self.queue.trains.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// A header with no pointers set.
fn zeroed_header() -> libc::mmsghdr {
    // SAFETY: mmsghdr is integers and raw pointers; zero (null) is valid
    // for each.
    unsafe { mem::zeroed() }
}
