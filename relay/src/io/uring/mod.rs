//! The io_uring backend: one ring per worker, one multishot recvmsg
//! feeding a provided-buffer ring, a read kept armed on the worker's
//! [`Waker`] eventfd, and one sendmsg SQE per train (UDP GSO), or per
//! datagram where GSO is unavailable.
//!
//! Contract: [`UringBackend::new`] fails with the socket back and a
//! one-line reason when io_uring cannot do what this backend needs (see
//! [`probe`]), so `auto` can fall back. After the first
//! [`Backend::turn`], the backend belongs to the thread that ran it: the
//! ring is single-issuer where the kernel supports that, and is only
//! enabled by that first turn, so building it on one thread and driving
//! it on another is fine.
//!
//! A turn: show the kernel the receive buffers given back, arm the
//! receive and wake-up operations if they ended, queue the pushed sends
//! as SQEs (submitting early when the SQ fills), submit and wait once,
//! then drain every completion into the sink.
//!
//! Memory the kernel reads or writes while an operation is in flight
//! (send slots, the recvmsg msghdr, the waker's counter, the buffer ring)
//! lives at stable heap addresses. On drop, everything in flight is
//! cancelled and its completions reaped; if that does not finish within a
//! second (or the ring cannot be entered from the dropping thread), that
//! memory is leaked rather than freed.

mod buf_ring;
mod send;
mod setup;
#[cfg(test)]
mod tests;

use std::cell::UnsafeCell;
use std::io;
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{EnterFlags, IoUring, cqueue, opcode, squeue, types};

pub use setup::probe;

use self::buf_ring::BufRing;
use self::send::SendSlots;
use self::setup::{BUF_GROUP, REAP_LIMIT};
use crate::io::{Backend, BackendStats, IoConfig, Sink, Train, Waker, socket};
use crate::sys::addr::{self, RawAddr};

/// The socket, registered as the ring's only fixed file.
const SOCKET: types::Fixed = types::Fixed(0);

/// user_data of the multishot recvmsg. Sends use their slot index, which
/// is below 2^32, so these tags cannot collide with them.
const RECV: u64 = u64::MAX;
/// user_data of the read on the waker's eventfd.
const WAKE_READ: u64 = u64::MAX - 1;
/// user_data of the poll on the waker's eventfd, used instead of the read
/// on kernels that fail a read on a non-blocking eventfd with EAGAIN.
const WAKE_POLL: u64 = u64::MAX - 2;
/// user_data of the cancellation sent on drop.
const CANCEL: u64 = u64::MAX - 3;

/// Most datagrams one turn takes from the socket (the mmsg backend's
/// recvmmsg batch).
const RECEIVE_BUDGET: usize = 1024;

/// The longest single wait; longer timeouts are cut to it (the kernel
/// takes a signed `tv_sec`).
const LONGEST_WAIT: Duration = Duration::from_secs(1 << 31);

/// Memory the receive and wake-up operations point at.
struct KernelMem {
    /// The recvmsg template: only its name and control lengths matter
    /// (the kernel copies it when the SQE is issued).
    msg: libc::msghdr,
    /// Where `msg.msg_name` points; multishot writes names into the
    /// buffers instead, but a valid pointer costs nothing.
    name: libc::sockaddr_in6,
    /// The 8-byte eventfd counter the wake-up read fills.
    wake: UnsafeCell<u64>,
}

/// The io_uring backend. See the module docs.
pub struct UringBackend {
    ring: IoUring,
    /// The ring was made disabled and the first turn must enable it.
    needs_enable: bool,
    /// The socket, open for as long as the ring may use it (fixed file 0).
    _socket: UdpSocket,
    local_addr: SocketAddr,
    gso: bool,
    waker: Arc<Waker>,
    // The next three are freed by `Drop` only once the kernel is done
    // with them, and leaked otherwise.
    rx_bufs: ManuallyDrop<BufRing>,
    mem: ManuallyDrop<Box<KernelMem>>,
    tx: ManuallyDrop<SendSlots>,
    /// The multishot recvmsg is in the SQ or the kernel.
    recv_armed: bool,
    /// The wake-up read (or poll) is in the SQ or the kernel.
    wake_armed: bool,
    /// Arm the wake-up as a poll next time (the read said EAGAIN).
    wake_poll: bool,
    /// Slots pushed since the last turn, in order; those before
    /// `pending_done` have all their SQEs in the SQ.
    pending: Vec<u32>,
    pending_done: usize,
    stats: BackendStats,
    /// An error the receive side hit that would recur; `turn` reports it.
    failure: Option<io::Error>,
}

// SAFETY: the raw pointers in `mem` point into its own box; the ring,
// buffer ring and send slots are Send on their own terms (see theirs);
// nothing here is tied to the thread that made it. A single-issuer ring
// does care which thread submits, which is why it is only enabled by
// the first `turn` (see the module docs).
unsafe impl Send for UringBackend {}

impl std::fmt::Debug for UringBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringBackend")
            .field("local_addr", &self.local_addr)
            .field("gso", &self.gso)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl UringBackend {
    /// A backend on `socket` (non-blocking, bound), woken by `waker`.
    ///
    /// On failure returns the socket back with a one-line human reason
    /// (e.g. "kernel.io_uring_disabled=2", "io_uring_setup: Operation not
    /// permitted (seccomp?)", "RLIMIT_MEMLOCK too low for the buffer
    /// ring", "kernel lacks multishot recvmsg").
    ///
    /// `config.rx_buffers` is rounded up to a power of two, at most 32768.
    pub fn new(
        socket: UdpSocket,
        waker: Arc<Waker>,
        config: IoConfig,
    ) -> Result<Self, (UdpSocket, String)> {
        if let Err(why) = probe() {
            return Err((socket, why));
        }
        let local_addr = match socket.local_addr() {
            Ok(addr) => addr,
            Err(e) => return Err((socket, format!("socket has no address: {e}"))),
        };
        let setup::NewRing {
            ring,
            disabled,
            flavour,
        } = match setup::new_ring() {
            Ok(ring) => ring,
            Err(why) => return Err((socket, why)),
        };
        let entries = config
            .rx_buffers
            .clamp(1, buf_ring::MAX_ENTRIES)
            .next_power_of_two();
        let rx_bufs = match BufRing::new(entries) {
            Ok(bufs) => bufs,
            Err(e) => {
                let why = format!("mapping {entries} receive buffers: {}", setup::text(&e));
                return Err((socket, why));
            }
        };
        if let Err(e) = rx_bufs.register(&ring.submitter(), BUF_GROUP) {
            return Err((socket, setup::buf_ring_reason(&e)));
        }
        // The socket as fixed file 0: each SQE then skips the file table
        // lookup and its reference count.
        if let Err(e) = ring.submitter().register_files(&[socket.as_raw_fd()]) {
            let why = format!("IORING_REGISTER_FILES: {}", setup::text(&e));
            return Err((socket, why));
        }
        // SAFETY: msghdr and sockaddr_in6 are pointers and integers, for
        // which zero is valid.
        let mut mem = Box::new(unsafe {
            KernelMem {
                msg: std::mem::zeroed(),
                name: std::mem::zeroed(),
                wake: UnsafeCell::new(0),
            }
        });
        mem.msg.msg_name = (&raw mut mem.name).cast();
        mem.msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        let gso = config.gso && socket::gso_supported(&socket);
        tracing::debug!(%local_addr, flavour, gso, rx_buffers = entries, "io_uring backend ready");
        Ok(Self {
            ring,
            needs_enable: disabled,
            _socket: socket,
            local_addr,
            gso,
            waker,
            rx_bufs: ManuallyDrop::new(rx_bufs),
            mem: ManuallyDrop::new(mem),
            tx: ManuallyDrop::new(SendSlots::new(config.tx_queue, gso)),
            recv_armed: false,
            wake_armed: false,
            wake_poll: false,
            pending: Vec::with_capacity(1024),
            pending_done: 0,
            stats: BackendStats::default(),
            failure: None,
        })
    }

    /// Pushes `entry` into the SQ, submitting once to make room if it is
    /// full. Ok(false): still no room (the kernel is busy); try next turn.
    ///
    /// # Safety
    ///
    /// Whatever `entry` points at must stay valid until its last CQE is
    /// reaped (or be leaked by `Drop`).
    unsafe fn push_sqe(&mut self, entry: &squeue::Entry) -> io::Result<bool> {
        for _ in 0..2 {
            // SAFETY: the caller vouches for the memory `entry` points at.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(true);
            }
            match self.ring.submit() {
                Ok(_) => {}
                Err(e) if is_transient(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Arms the multishot recvmsg and the wake-up if they are not.
    fn arm(&mut self) -> io::Result<()> {
        if !self.recv_armed {
            let entry = opcode::RecvMsgMulti::new(SOCKET, &raw const self.mem.msg, BUF_GROUP)
                .build()
                .user_data(RECV);
            // SAFETY: the msghdr lives in `mem` and the buffers in
            // `rx_bufs`, both freed only by `Drop` after the recvmsg's
            // last CQE (no F_MORE) was reaped; `self._socket` (fixed file 0) outlives it.
            self.recv_armed = unsafe { self.push_sqe(&entry) }?;
        }
        if !self.wake_armed {
            let fd = types::Fd(self.waker.as_raw_fd());
            let entry = if self.wake_poll {
                opcode::PollAdd::new(fd, libc::POLLIN as u32)
                    .build()
                    .user_data(WAKE_POLL)
            } else {
                opcode::Read::new(fd, self.mem.wake.get().cast(), 8)
                    .build()
                    .user_data(WAKE_READ)
            };
            // SAFETY: the read fills the `UnsafeCell<u64>` in `mem`, which
            // nothing in Rust reads and which `Drop` frees only after the
            // read's CQE was reaped; the poll points at no memory. The
            // eventfd stays open as long as `self.waker`.
            self.wake_armed = unsafe { self.push_sqe(&entry) }?;
        }
        Ok(())
    }

    /// Puts the SQEs of every pushed train into the SQ, in order.
    fn flush(&mut self) -> io::Result<()> {
        while let Some(&index) = self.pending.get(self.pending_done) {
            let Some(entry) = self.tx.next_sqe(index, SOCKET) else {
                self.pending_done += 1;
                continue;
            };
            // SAFETY: the entry points into slot `index` (its boxed
            // msghdrs, iovecs, address and cmsg) and into the buffers
            // whose `Arc`s the slot holds. The slot is neither refilled
            // nor freed before its last CQE (`SendSlots::complete`), and
            // `Drop` leaks all slots unless every CQE was reaped.
            if !unsafe { self.push_sqe(&entry) }? {
                return Ok(());
            }
            self.tx.pushed(index);
        }
        self.pending.clear();
        self.pending_done = 0;
        Ok(())
    }

    /// Submits, and waits for one completion or `timeout`.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let submitter = self.ring.submitter();
        let result = match timeout {
            None => submitter.submit_and_wait(1),
            Some(timeout) => {
                let ts = types::Timespec::from(timeout.min(LONGEST_WAIT));
                submitter.submit_with_args(1, &types::SubmitArgs::new().timespec(&ts))
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_transient(&e) || e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs the deferred task work (receives that arrived since the last
    /// enter) without submitting or waiting.
    fn run_task_work(&mut self) -> io::Result<()> {
        // SAFETY: nothing is submitted and no argument is passed: the call
        // only posts completions of operations already in flight.
        let result = unsafe {
            self.ring
                .submitter()
                .enter::<libc::sigset_t>(0, 0, EnterFlags::GETEVENTS.bits(), None)
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_transient(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Hands every completion to where it belongs, then shows the kernel
    /// the receive buffers given back. Returns the datagrams received.
    fn drain(&mut self, sink: &mut dyn Sink) -> usize {
        let Self {
            ring,
            rx_bufs,
            mem,
            tx,
            stats,
            recv_armed,
            wake_armed,
            wake_poll,
            failure,
            ..
        } = self;
        let mut cq = ring.completion();
        let received_before = stats.rx_datagrams;
        // Without deferred task work, completions can arrive while we
        // drain; one more pass takes those, and the next turn the rest.
        for _ in 0..2 {
            for cqe in &mut cq {
                let (res, flags) = (cqe.result(), cqe.flags());
                match cqe.user_data() {
                    RECV => {
                        if !cqueue::more(flags) {
                            *recv_armed = false;
                        }
                        if let Err(e) = on_recv(rx_bufs, &mem.msg, res, flags, sink, stats) {
                            failure.get_or_insert(e);
                        }
                    }
                    WAKE_READ => {
                        *wake_armed = false;
                        *wake_poll = res == -libc::EAGAIN;
                    }
                    WAKE_POLL => {
                        *wake_armed = false;
                        *wake_poll = false;
                    }
                    CANCEL => {}
                    index => {
                        if let Ok(index) = u32::try_from(index) {
                            tx.complete(index, res, sink, stats);
                        }
                    }
                }
            }
            cq.sync();
            if cq.is_empty() {
                break;
            }
        }
        drop(cq);
        rx_bufs.publish();
        (stats.rx_datagrams - received_before) as usize
    }

    /// Anything the kernel may still touch.
    fn in_flight(&self) -> bool {
        self.recv_armed || self.wake_armed || self.tx.in_kernel() > 0
    }

    /// Cancels everything in flight and reaps it. False if that did not
    /// finish within [`REAP_LIMIT`].
    fn quiesce(&mut self) -> bool {
        if !self.in_flight() {
            return true;
        }
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(CANCEL);
        // SAFETY: a cancellation points at no memory.
        if !matches!(unsafe { self.push_sqe(&cancel) }, Ok(true)) {
            return false;
        }
        let deadline = Instant::now() + REAP_LIMIT;
        let mut sink = Discard;
        loop {
            if self.wait(Some(Duration::from_millis(10))).is_err() {
                return false;
            }
            self.drain(&mut sink);
            if !self.in_flight() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }
}

impl Backend for UringBackend {
    fn name(&self) -> &'static str {
        "uring"
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn gso(&self) -> bool {
        self.gso
    }

    fn push(&mut self, train: &mut Train, born: Instant) {
        let Some(dst) = train.dst() else {
            return;
        };
        let addr = RawAddr::new(dst, self.local_addr.is_ipv6());
        match self.tx.fill(addr, train, born) {
            Some(index) => self.pending.push(index),
            None => self.stats.tx_dropped += 1,
        }
    }

    fn turn(&mut self, timeout: Option<Duration>, sink: &mut dyn Sink) -> io::Result<()> {
        if self.needs_enable {
            self.ring.submitter().register_enable_rings()?;
            self.needs_enable = false;
        }
        self.rx_bufs.publish();
        self.arm()?;
        self.flush()?;
        self.wait(timeout)?;
        let mut received = self.drain(sink);
        // A multishot receive posts a bounded number of datagrams per run
        // of its task work; while they keep coming, take more, so that a
        // turn sees what queued up during the last one (as recvmmsg does),
        // and the trains it sends are long.
        let mut budget = RECEIVE_BUDGET;
        while received > 0 && budget > received {
            budget -= received;
            self.run_task_work()?;
            received = self.drain(sink);
        }
        match self.failure.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn stats(&self) -> BackendStats {
        self.stats
    }
}

impl Drop for UringBackend {
    fn drop(&mut self) {
        if self.quiesce() {
            // SAFETY: nothing is in flight, so the kernel holds no pointer
            // into these any more (the buffer ring's registration only
            // pins its pages); each is dropped once and never used again.
            unsafe {
                ManuallyDrop::drop(&mut self.tx);
                ManuallyDrop::drop(&mut self.mem);
                ManuallyDrop::drop(&mut self.rx_bufs);
            }
        } else {
            tracing::warn!(
                local_addr = %self.local_addr,
                "io_uring operations still in flight at drop; leaking their buffers"
            );
        }
    }
}

/// A receive completion: hands the datagram to `sink` and the buffer back
/// to the ring. Err: the receive failed in a way re-arming would repeat.
fn on_recv(
    bufs: &mut BufRing,
    msg: &libc::msghdr,
    res: i32,
    flags: u32,
    sink: &mut dyn Sink,
    stats: &mut BackendStats,
) -> io::Result<()> {
    let Ok(len) = usize::try_from(res) else {
        return match -res {
            libc::ENOBUFS => {
                stats.rx_no_buffer += 1;
                Ok(())
            }
            errno @ (libc::EINVAL
            | libc::EBADF
            | libc::ENOTSOCK
            | libc::EFAULT
            | libc::EOPNOTSUPP) => Err(io::Error::from_raw_os_error(errno)),
            // ECANCELED, ENOMEM, an ICMP error, ...: re-armed next turn.
            _ => Ok(()),
        };
    };
    let Some(bid) = cqueue::buffer_select(flags) else {
        return Ok(());
    };
    let Some(buf) = bufs.filled(bid, len) else {
        return Ok(());
    };
    match types::RecvMsgOut::parse(buf, msg) {
        Ok(out)
            if out.is_payload_truncated()
                || out.payload_data().len() < out.incoming_payload_len() as usize =>
        {
            stats.rx_truncated += 1;
        }
        // As the kernel wrote it: IPv4 peers of a dual-stack socket are
        // v4-mapped IPv6 (as with the mmsg backend).
        Ok(out) => match addr::parse(out.name_data()) {
            Some(from) => {
                stats.rx_datagrams += 1;
                sink.datagram(from, out.payload_data());
            }
            None => tracing::trace!("datagram with an unreadable source address"),
        },
        Err(()) => tracing::trace!(len, "recvmsg completion too short to parse"),
    }
    bufs.give_back(bid);
    Ok(())
}

/// Errors after which submitting or waiting again later is the cure.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
    )
}

/// The sink of completions reaped on drop.
struct Discard;

impl Sink for Discard {
    fn datagram(&mut self, _: SocketAddr, _: &[u8]) {}
    fn sent(&mut self, _: Instant, _: usize, _: io::Result<usize>) {}
}
