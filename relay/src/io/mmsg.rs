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

use std::collections::VecDeque;
use std::ffi::{c_uint, c_void};
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    Backend, BackendStats, IoConfig, MAX_SEGMENTS, MAX_TRAIN_BYTES, SharedBuf, Sink, Waker, socket,
};

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

/// Room for one UDP_SEGMENT control message.
// SAFETY: CMSG_SPACE is arithmetic on its argument; it touches no memory.
const GSO_CMSG_SPACE: usize = unsafe { libc::CMSG_SPACE(size_of::<u16>() as c_uint) } as usize;

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
    queue: TxQueue,
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
            queue: TxQueue {
                trains: VecDeque::with_capacity(TX_RESERVE.min(config.tx_queue)),
                segments: VecDeque::with_capacity(TX_RESERVE),
            },
            batch: TxBatch::new(),
            stats: BackendStats::default(),
        })
    }

    /// Hands the datagrams waiting on the socket to `sink`, up to
    /// [`RX_BATCHES_PER_TURN`] calls' worth.
    fn receive(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        let fd = self.socket.as_raw_fd();
        let count = self.rx.headers.len();
        for _ in 0..RX_BATCHES_PER_TURN {
            self.rx.rearm();
            // SAFETY: the `count` headers point at names and iovecs in
            // `self.rx`, and the iovecs at its buffers, all allocated in
            // `RxRing::new` and never resized; the kernel writes at most
            // `msg_namelen` bytes of name and `iov_len` bytes per buffer.
            let rc = unsafe {
                libc::recvmmsg(
                    fd,
                    self.rx.headers.as_mut_ptr(),
                    count as c_uint,
                    libc::MSG_DONTWAIT,
                    ptr::null_mut(),
                )
            };
            let Ok(received) = usize::try_from(rc) else {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Ok(()),
                    _ => return Err(e),
                }
            };
            for (i, header) in self.rx.headers.iter().enumerate().take(received) {
                if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    self.stats.rx_truncated += 1;
                    continue;
                }
                let Some(from) = decode(&self.rx.names[i], header.msg_hdr.msg_namelen) else {
                    continue;
                };
                let len = (header.msg_len as usize).min(RX_BUFFER);
                sink.datagram(from, &self.rx.buffers[i * RX_BUFFER..][..len]);
                self.stats.rx_datagrams += 1;
            }
            if received < count {
                // The socket is drained; asking again would only say EAGAIN.
                return Ok(());
            }
        }
        Ok(())
    }

    /// Sends queued trains until the queue is empty, the kernel says
    /// EAGAIN, or this flush has made [`TX_BATCHES_PER_FLUSH`] calls.
    fn flush(&mut self, sink: &mut dyn Sink) {
        let fd = self.socket.as_raw_fd();
        for _ in 0..TX_BATCHES_PER_FLUSH {
            if self.queue.trains.is_empty() {
                return;
            }
            let count = self.batch.build(&self.queue, self.gso, self.ipv6);
            // SAFETY: `build` just filled headers[..count]; their names,
            // iovecs and control buffers live in `self.batch`, and the
            // iovecs point into segment buffers that `self.queue` keeps
            // alive (Arc clones) and that nothing touches during the call.
            // The kernel only reads them, and writes each `msg_len`.
            let rc = unsafe {
                libc::sendmmsg(
                    fd,
                    self.batch.headers.as_mut_ptr(),
                    count as c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            let Ok(sent) = usize::try_from(rc) else {
                // The first message of the batch failed.
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    // A full socket buffer (EAGAIN, which is EWOULDBLOCK
                    // on Linux) or device queue (ENOBUFS) passes: the rest
                    // waits for POLLOUT.
                    Some(libc::EAGAIN | libc::ENOBUFS) => return,
                    Some(libc::EIO) if self.batch.plan[0].gso => {
                        tracing::warn!("UDP GSO send refused ({e}); sending datagram by datagram");
                        self.gso = false;
                    }
                    // Segments too large for this route, or a destination
                    // the kernel refuses either way (port 0): try the train
                    // unsegmented, which sends it or says which.
                    Some(libc::EINVAL) if self.batch.plan[0].gso => {
                        if let Some(front) = self.queue.trains.front_mut() {
                            front.gso_size = 0;
                        }
                    }
                    _ => self.fail_front(e, sink),
                }
                continue;
            };
            // A short count means message `sent` failed or would block:
            // the next call starts with it and reports which.
            for m in 0..sent.min(count) {
                let bytes = self.batch.headers[m].msg_len as usize;
                self.complete(self.batch.plan[m], bytes, sink);
            }
        }
    }

    /// Records that the front train's next message left.
    fn complete(&mut self, message: Planned, bytes: usize, sink: &mut dyn Sink) {
        self.stats.tx_datagrams += message.segments as u64;
        if message.gso && message.segments > 1 {
            self.stats.tx_trains += 1;
        }
        let Some(front) = self.queue.trains.front_mut() else {
            return;
        };
        front.done += message.segments;
        front.bytes += bytes;
        if front.done >= front.count
            && let Some(train) = self.queue.pop()
        {
            sink.sent(train.born, train.count, Ok(train.bytes));
        }
    }

    /// Drops the rest of the front train, whose next message failed: the
    /// causes (no route, refused by a firewall, bad address) are the
    /// destination's, so its other datagrams would fail alike.
    fn fail_front(&mut self, e: io::Error, sink: &mut dyn Sink) {
        if let Some(train) = self.queue.pop() {
            tracing::trace!(dst = %train.dst, "send failed: {e}");
            self.stats.tx_errors += 1;
            sink.sent(train.born, train.count, Err(e));
        }
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

    fn push(&mut self, dst: SocketAddr, segments: &[SharedBuf], born: Instant) {
        if segments.is_empty() {
            return;
        }
        if self.queue.trains.len() >= self.tx_queue {
            self.stats.tx_dropped += 1;
            return;
        }
        self.queue.segments.extend(segments.iter().map(Arc::clone));
        self.queue.trains.push_back(Train {
            dst,
            born,
            count: segments.len(),
            done: 0,
            bytes: 0,
            gso_size: gso_size(segments),
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

/// The segment size to send `segments` with as one GSO message, or 0 when
/// they must go one by one: a single datagram, or a train the kernel
/// would refuse or cut wrongly (the caller promises the shape; this keeps
/// a broken promise from turning into one oversized datagram).
fn gso_size(segments: &[SharedBuf]) -> u16 {
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return 0;
    };
    let size = first.len();
    let total: usize = segments.iter().map(|s| s.len()).sum();
    let shaped = segments.len() > 1
        && segments.len() <= MAX_SEGMENTS
        && total <= MAX_TRAIN_BYTES
        && !last.is_empty()
        && last.len() <= size
        && segments[..segments.len() - 1]
            .iter()
            .all(|s| s.len() == size);
    if shaped {
        u16::try_from(size).unwrap_or(0)
    } else {
        0
    }
}

/// A train waiting to be sent. Its segments are the next `count` entries
/// of [`TxQueue::segments`].
#[derive(Debug)]
struct Train {
    dst: SocketAddr,
    born: Instant,
    count: usize,
    /// Segments already sent (without GSO a train may leave over several
    /// calls).
    done: usize,
    /// Bytes already sent.
    bytes: usize,
    /// See [`gso_size`].
    gso_size: u16,
}

/// Trains in send order, and their segments back to back in one FIFO, so
/// neither allocates once it has grown to its high-water mark.
#[derive(Debug)]
struct TxQueue {
    trains: VecDeque<Train>,
    segments: VecDeque<SharedBuf>,
}

impl TxQueue {
    /// Removes the front train and lets go of its buffers.
    fn pop(&mut self) -> Option<Train> {
        let train = self.trains.pop_front()?;
        self.segments.drain(..train.count.min(self.segments.len()));
        Some(train)
    }
}

/// What one message of a send batch carries.
#[derive(Debug, Clone, Copy, Default)]
struct Planned {
    segments: usize,
    gso: bool,
}

/// Room for one UDP_SEGMENT control message, aligned for `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct GsoCmsg([u8; GSO_CMSG_SPACE]);

const _: () = assert!(align_of::<GsoCmsg>() >= align_of::<libc::cmsghdr>());

/// The `sendmmsg` arrays, refilled for every call from the queue's front.
struct TxBatch {
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
    /// One per train in the batch.
    names: Vec<RawAddr>,
    /// One per message.
    cmsgs: Vec<GsoCmsg>,
    plan: Vec<Planned>,
}

// SAFETY: the raw pointers in `headers` and `iovecs` point into this
// struct's own heap arrays and into buffers the queue beside it owns; they
// are rewritten before every call and used only by the thread that owns
// the backend, so moving the whole to another thread is sound.
unsafe impl Send for TxBatch {}

impl TxBatch {
    fn new() -> Self {
        Self {
            headers: vec![zeroed_header(); TX_BATCH],
            iovecs: vec![
                libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0
                };
                TX_IOVECS
            ],
            names: vec![RawAddr::zeroed(); TX_BATCH],
            cmsgs: vec![GsoCmsg([0; GSO_CMSG_SPACE]); TX_BATCH],
            plan: vec![Planned::default(); TX_BATCH],
        }
    }

    /// Fills headers for the front of `queue` and returns how many.
    fn build(&mut self, queue: &TxQueue, gso: bool, ipv6: bool) -> usize {
        let (mut messages, mut iovecs, mut first) = (0, 0, 0);
        'trains: for (t, train) in queue.trains.iter().enumerate() {
            if messages == TX_BATCH || iovecs == TX_IOVECS {
                break;
            }
            let Some(slot) = self.names.get_mut(t) else {
                break;
            };
            let name_len = encode(train.dst, ipv6, slot);
            let name = self.names.as_mut_ptr().wrapping_add(t).cast::<c_void>();
            let pending = queue
                .segments
                .range(first + train.done..first + train.count);
            first += train.count;
            if gso && train.gso_size > 0 && train.done == 0 {
                if iovecs + train.count > TX_IOVECS {
                    break;
                }
                for (iov, segment) in self.iovecs[iovecs..].iter_mut().zip(pending) {
                    *iov = iovec_of(segment);
                }
                self.set(
                    messages,
                    (name, name_len),
                    (iovecs, train.count),
                    train.gso_size,
                );
                self.plan[messages] = Planned {
                    segments: train.count,
                    gso: true,
                };
                messages += 1;
                iovecs += train.count;
            } else {
                for segment in pending {
                    if messages == TX_BATCH || iovecs == TX_IOVECS {
                        break 'trains;
                    }
                    self.iovecs[iovecs] = iovec_of(segment);
                    self.set(messages, (name, name_len), (iovecs, 1), 0);
                    self.plan[messages] = Planned {
                        segments: 1,
                        gso: false,
                    };
                    messages += 1;
                    iovecs += 1;
                }
            }
        }
        messages
    }

    /// Points header `m` at a name, `iovecs.1` iovecs from `iovecs.0`, and
    /// a UDP_SEGMENT control message unless `gso_size` is 0.
    fn set(
        &mut self,
        m: usize,
        name: (*mut c_void, libc::socklen_t),
        iovecs: (usize, usize),
        gso_size: u16,
    ) {
        let control = self.cmsgs.as_mut_ptr().wrapping_add(m);
        let header = &mut self.headers[m];
        header.msg_len = 0;
        let h = &mut header.msg_hdr;
        (h.msg_name, h.msg_namelen) = name;
        h.msg_iov = self.iovecs.as_mut_ptr().wrapping_add(iovecs.0);
        h.msg_iovlen = iovecs.1 as _;
        h.msg_flags = 0;
        if gso_size == 0 {
            h.msg_control = ptr::null_mut();
            h.msg_controllen = 0;
            return;
        }
        h.msg_control = control.cast();
        h.msg_controllen = GSO_CMSG_SPACE as _;
        // SAFETY: `msg_control` points at this message's GsoCmsg, owned by
        // `self.cmsgs`, aligned for cmsghdr and GSO_CMSG_SPACE bytes long,
        // which is room for a header and a u16; so CMSG_FIRSTHDR is
        // non-null and the header and data it and CMSG_DATA point at lie
        // inside that buffer. The data may be unaligned, hence
        // write_unaligned.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(h);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as c_uint) as _;
            ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), gso_size);
        }
    }
}

/// An iovec over a segment; the kernel only reads through it.
fn iovec_of(segment: &SharedBuf) -> libc::iovec {
    libc::iovec {
        iov_base: segment.as_ptr().cast_mut().cast(),
        iov_len: segment.len(),
    }
}

/// The receive buffers and their `recvmmsg` headers, built once.
struct RxRing {
    /// One RX_BUFFER-byte buffer per header, back to back.
    buffers: Vec<u8>,
    names: Vec<RawAddr>,
    #[expect(dead_code, reason = "only the kernel reads it, through `headers`")]
    iovecs: Vec<libc::iovec>,
    /// Point into the three vectors above, which are never resized.
    headers: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `headers` and `iovecs` point only into this
// struct's own heap arrays, which move with it and are never resized.
unsafe impl Send for RxRing {}

impl RxRing {
    fn new(count: usize) -> Self {
        let mut buffers = vec![0; count * RX_BUFFER];
        let mut names = vec![RawAddr::zeroed(); count];
        let base = buffers.as_mut_ptr();
        let mut iovecs: Vec<_> = (0..count)
            .map(|i| libc::iovec {
                iov_base: base.wrapping_add(i * RX_BUFFER).cast(),
                iov_len: RX_BUFFER,
            })
            .collect();
        let (name_base, iovec_base) = (names.as_mut_ptr(), iovecs.as_mut_ptr());
        let headers = (0..count)
            .map(|i| {
                let mut header = zeroed_header();
                header.msg_hdr.msg_name = name_base.wrapping_add(i).cast();
                header.msg_hdr.msg_iov = iovec_base.wrapping_add(i);
                header.msg_hdr.msg_iovlen = 1;
                header
            })
            .collect();
        Self {
            buffers,
            names,
            iovecs,
            headers,
        }
    }

    /// Resets what the kernel wrote into the headers last time.
    fn rearm(&mut self) {
        for header in &mut self.headers {
            header.msg_hdr.msg_namelen = size_of::<RawAddr>() as libc::socklen_t;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
    }
}

/// A socket address as the kernel reads and writes it.
#[derive(Clone, Copy)]
#[repr(C)]
union RawAddr {
    storage: libc::sockaddr_storage,
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl RawAddr {
    fn zeroed() -> Self {
        // SAFETY: sockaddr_storage is integers only; all zeroes is valid.
        Self {
            storage: unsafe { mem::zeroed() },
        }
    }
}

/// A header with no pointers set.
fn zeroed_header() -> libc::mmsghdr {
    // SAFETY: mmsghdr is integers and raw pointers; zero (null) is valid
    // for each.
    unsafe { mem::zeroed() }
}

/// Writes `addr` into `out` as the socket's family wants it (an IPv4
/// address v4-mapped on an IPv6 socket; a v4-mapped one plain on an IPv4
/// socket) and returns its length.
fn encode(addr: SocketAddr, ipv6: bool, out: &mut RawAddr) -> libc::socklen_t {
    let addr = match (addr, ipv6) {
        (SocketAddr::V4(a), true) => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        (SocketAddr::V6(a), false) => a.ip().to_ipv4_mapped().map_or(SocketAddr::V6(a), |ip| {
            SocketAddr::V4(SocketAddrV4::new(ip, a.port()))
        }),
        (a, _) => a,
    };
    match addr {
        SocketAddr::V4(a) => {
            out.v4 = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            out.v6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// The address the kernel wrote (`len` bytes), if it is IPv4 or IPv6.
fn decode(raw: &RawAddr, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    // SAFETY (all three reads): every field of the union is integers only,
    // and all its bytes are initialised (zeroed at construction, then
    // written by the kernel or `encode`), so any field may be read; the
    // family says which one the kernel filled, and `len` that it did.
    match i32::from(unsafe { raw.storage.ss_family }) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: see above.
            let a = unsafe { raw.v4 };
            let ip = Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: see above.
            let a = unsafe { raw.v6 };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// How long any one test may wait for the network.
    const PATIENCE: Duration = Duration::from_secs(5);

    #[derive(Default)]
    struct Record {
        datagrams: Vec<(SocketAddr, Vec<u8>)>,
        sent: Vec<(usize, Result<usize, Option<i32>>)>,
    }

    impl Sink for Record {
        fn datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
            self.datagrams.push((from, bytes.to_vec()));
        }
        fn sent(&mut self, _born: Instant, segments: usize, result: io::Result<usize>) {
            self.sent
                .push((segments, result.map_err(|e| e.raw_os_error())));
        }
    }

    fn backend_on(addr: &str, config: IoConfig) -> (MmsgBackend, Arc<Waker>) {
        let socket = socket::bind_reuseport(addr.parse().expect("address")).expect("bind");
        let waker = Arc::new(Waker::new().expect("eventfd"));
        let backend = MmsgBackend::new(socket, Arc::clone(&waker), config).expect("backend");
        (backend, waker)
    }

    fn backend(addr: &str) -> MmsgBackend {
        backend_on(addr, IoConfig::default()).0
    }

    /// A plain socket whose reads give up after [`PATIENCE`].
    fn plain(addr: &str) -> UdpSocket {
        let s = UdpSocket::bind(addr).expect("bind");
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        s
    }

    /// Turns until `done` holds, or fails the test after [`PATIENCE`].
    fn turn_until(b: &mut MmsgBackend, r: &mut Record, done: impl Fn(&Record) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(r) {
            assert!(
                Instant::now() < deadline,
                "timed out; stats {:?}",
                b.stats()
            );
            b.turn(Some(Duration::from_millis(50)), r).expect("turn");
        }
    }

    /// `count - 1` segments of `size` bytes and a shorter last one, each
    /// with its own byte pattern.
    fn train(count: usize, size: usize) -> Vec<SharedBuf> {
        (0..count)
            .map(|i| {
                let len = if i + 1 == count { size / 3 } else { size };
                let bytes = (0..len).map(|j| (i * 31 + j) as u8).collect();
                SharedBuf::new(bytes)
            })
            .collect()
    }

    fn receive_all(s: &UdpSocket, expected: &[SharedBuf], from: SocketAddr) {
        let mut buf = [0; 4096];
        for (i, want) in expected.iter().enumerate() {
            let (len, src) = s.recv_from(&mut buf).expect("datagram");
            assert_eq!(src, from);
            assert_eq!(&buf[..len], want.as_slice(), "datagram {i}");
        }
    }

    #[test]
    fn receives_with_the_source_address() {
        let mut b = backend("127.0.0.1:0");
        let p = plain("127.0.0.1:0");
        p.send_to(b"hello", b.local_addr()).expect("send");
        let mut r = Record::default();
        turn_until(&mut b, &mut r, |r| !r.datagrams.is_empty());
        assert_eq!(
            r.datagrams,
            vec![(p.local_addr().expect("addr"), b"hello".to_vec())]
        );
        assert_eq!(b.stats().rx_datagrams, 1);
    }

    fn sends_a_train(gso: bool) {
        let (mut b, _) = backend_on(
            "127.0.0.1:0",
            IoConfig {
                gso,
                ..IoConfig::default()
            },
        );
        assert!(gso || !b.gso());
        let p = plain("127.0.0.1:0");
        let segments = train(10, 1377);
        let total = segments.iter().map(|s| s.len()).sum();
        b.push(p.local_addr().expect("addr"), &segments, Instant::now());
        let mut r = Record::default();
        turn_until(&mut b, &mut r, |r| !r.sent.is_empty());
        assert_eq!(r.sent, vec![(10, Ok(total))]);
        receive_all(&p, &segments, b.local_addr());
        let stats = b.stats();
        assert_eq!(stats.tx_datagrams, 10);
        assert_eq!(stats.tx_trains, u64::from(b.gso()));
        assert_eq!(Arc::strong_count(&segments[0]), 1, "buffers let go");
    }

    #[test]
    fn a_train_arrives_as_separate_datagrams() {
        sends_a_train(true);
    }

    #[test]
    fn a_train_arrives_as_separate_datagrams_without_gso() {
        sends_a_train(false);
    }

    #[test]
    fn an_irregular_train_goes_datagram_by_datagram() {
        let mut b = backend("127.0.0.1:0");
        let p = plain("127.0.0.1:0");
        let segments: Vec<SharedBuf> = [1000, 500, 1000]
            .map(|len| SharedBuf::new(vec![len as u8; len]))
            .into();
        b.push(p.local_addr().expect("addr"), &segments, Instant::now());
        let mut r = Record::default();
        turn_until(&mut b, &mut r, |r| !r.sent.is_empty());
        assert_eq!(r.sent, vec![(3, Ok(2500))]);
        receive_all(&p, &segments, b.local_addr());
        assert_eq!(b.stats().tx_trains, 0);
    }

    #[test]
    fn many_trains_span_several_calls() {
        let (mut b, _) = backend_on(
            "127.0.0.1:0",
            IoConfig {
                gso: false,
                ..IoConfig::default()
            },
        );
        let p = plain("127.0.0.1:0");
        let segments = train(3, 300);
        for _ in 0..300 {
            b.push(p.local_addr().expect("addr"), &segments, Instant::now());
        }
        let mut r = Record::default();
        turn_until(&mut b, &mut r, |r| r.sent.len() == 300);
        assert!(r.sent.iter().all(|s| *s == (3, Ok(700))));
        assert_eq!(b.stats().tx_datagrams, 900);
    }

    #[test]
    fn a_waker_on_another_thread_ends_a_turn() {
        let (mut b, waker) = backend_on("127.0.0.1:0", IoConfig::default());
        let (done, turned) = mpsc::channel();
        std::thread::spawn(move || {
            let result = b.turn(None, &mut Record::default());
            let _ = done.send(result.map_err(|e| e.kind()));
        });
        waker.wake();
        assert_eq!(turned.recv_timeout(PATIENCE), Ok(Ok(())));
    }

    #[test]
    fn an_oversize_datagram_is_dropped_and_counted() {
        let mut b = backend("127.0.0.1:0");
        let p = plain("127.0.0.1:0");
        p.send_to(&[7; 4000], b.local_addr()).expect("send");
        p.send_to(&[8; 100], b.local_addr()).expect("send");
        let mut r = Record::default();
        turn_until(&mut b, &mut r, |r| !r.datagrams.is_empty());
        assert_eq!(
            r.datagrams,
            vec![(p.local_addr().expect("addr"), vec![8; 100])]
        );
        assert_eq!(b.stats().rx_truncated, 1);
    }

    #[test]
    fn ipv6_round_trip() {
        let mut b = backend("[::1]:0");
        let p = plain("[::1]:0");
        let from = p.local_addr().expect("addr");
        p.send_to(b"ping", b.local_addr()).expect("send");
        let mut r = Record::default();
        turn_until(&mut b, &mut r, |r| !r.datagrams.is_empty());
        assert_eq!(r.datagrams, vec![(from, b"ping".to_vec())]);
        let segments = train(4, 1200);
        b.push(from, &segments, Instant::now());
        turn_until(&mut b, &mut r, |r| !r.sent.is_empty());
        receive_all(&p, &segments, b.local_addr());
    }

    #[test]
    fn ipv4_destinations_work_on_a_dual_stack_socket() {
        let mut b = backend("[::]:0");
        let p = plain("127.0.0.1:0");
        let to = SocketAddr::from(([127, 0, 0, 1], b.local_addr().port()));
        p.send_to(b"ping", to).expect("send");
        let mut r = Record::default();
        turn_until(&mut b, &mut r, |r| !r.datagrams.is_empty());
        let from = r.datagrams[0].0;
        assert!(from.is_ipv6(), "v4-mapped on a dual-stack socket");
        assert_eq!(from.ip().to_canonical(), p.local_addr().expect("addr").ip());
        let segments = train(2, 1000);
        b.push(p.local_addr().expect("addr"), &segments, Instant::now());
        turn_until(&mut b, &mut r, |r| !r.sent.is_empty());
        receive_all(&p, &segments, to);
    }

    #[test]
    fn a_failed_send_is_reported_and_skipped() {
        let mut b = backend("127.0.0.1:0");
        let p = plain("127.0.0.1:0");
        let unreachable: SocketAddr = "[2001:db8::1]:9".parse().expect("address");
        let segments = train(2, 1000);
        b.push(unreachable, &segments, Instant::now());
        b.push(p.local_addr().expect("addr"), &segments, Instant::now());
        let mut r = Record::default();
        turn_until(&mut b, &mut r, |r| r.sent.len() == 2);
        assert_eq!(r.sent[0], (2, Err(Some(libc::EAFNOSUPPORT))));
        assert_eq!(r.sent[1], (2, Ok(1333)));
        receive_all(&p, &segments, b.local_addr());
        assert_eq!(b.stats().tx_errors, 1);
    }

    #[test]
    fn a_refused_gso_train_does_not_switch_gso_off() {
        let mut b = backend("127.0.0.1:0");
        let gso = b.gso();
        let port_zero = SocketAddr::from(([127, 0, 0, 1], 0));
        b.push(port_zero, &train(3, 1000), Instant::now());
        let mut r = Record::default();
        turn_until(&mut b, &mut r, |r| !r.sent.is_empty());
        assert_eq!(r.sent, vec![(3, Err(Some(libc::EINVAL)))]);
        assert_eq!(b.gso(), gso);
        assert_eq!(b.stats().tx_errors, 1);
    }

    #[test]
    fn a_full_queue_drops_new_trains() {
        let (mut b, _) = backend_on(
            "127.0.0.1:0",
            IoConfig {
                tx_queue: 2,
                ..IoConfig::default()
            },
        );
        let p = plain("127.0.0.1:0");
        let segments = train(1, 100);
        for _ in 0..3 {
            b.push(p.local_addr().expect("addr"), &segments, Instant::now());
        }
        assert_eq!(b.stats().tx_dropped, 1);
        let mut r = Record::default();
        turn_until(&mut b, &mut r, |r| r.sent.len() == 2);
        assert_eq!(Arc::strong_count(&segments[0]), 1);
    }

    #[test]
    fn gso_only_for_well_shaped_trains() {
        let bufs = |lens: &[usize]| -> Vec<SharedBuf> {
            lens.iter().map(|&n| SharedBuf::new(vec![0; n])).collect()
        };
        assert_eq!(gso_size(&bufs(&[1377, 1377, 400])), 1377);
        assert_eq!(gso_size(&bufs(&[1377, 1377])), 1377);
        assert_eq!(gso_size(&bufs(&[1377])), 0, "one datagram");
        assert_eq!(gso_size(&bufs(&[1000, 500, 1000])), 0, "short middle");
        assert_eq!(gso_size(&bufs(&[1000, 1001])), 0, "long last");
        assert_eq!(gso_size(&bufs(&[0, 0])), 0, "empty");
        assert_eq!(gso_size(&bufs(&[1000, 0])), 0, "empty last");
        assert_eq!(gso_size(&bufs(&[100; MAX_SEGMENTS + 1])), 0, "too many");
        assert_eq!(gso_size(&bufs(&[1400; 47])), 0, "too many bytes");
        assert_eq!(gso_size(&[]), 0);
    }

    #[test]
    fn addresses_survive_encoding() {
        let mut raw = RawAddr::zeroed();
        for (addr, ipv6) in [
            ("10.1.2.3:4567", false),
            ("[2001:db8::7]:80", true),
            ("[fe80::1%3]:80", true),
        ] {
            let addr: SocketAddr = addr.parse().expect("address");
            let len = encode(addr, ipv6, &mut raw);
            assert_eq!(decode(&raw, len), Some(addr));
        }
        let v4: SocketAddr = "10.1.2.3:4567".parse().expect("address");
        let len = encode(v4, true, &mut raw);
        let mapped = decode(&raw, len).expect("decodes");
        assert_eq!(mapped.ip().to_canonical(), v4.ip());
        let len = encode(mapped, false, &mut raw);
        assert_eq!(decode(&raw, len), Some(v4));
        assert_eq!(decode(&raw, 3), None, "short");
    }
}
