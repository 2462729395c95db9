//! The send side: trains wait in a FIFO that holds clones of the
//! callers' buffers, and each `sendmmsg` takes as many as fit, one message
//! per train with GSO, else one per datagram.

use std::collections::VecDeque;
use std::ffi::{c_uint, c_void};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::ptr;
use std::time::Instant;

use super::{MmsgBackend, TX_BATCH, TX_BATCHES_PER_FLUSH, TX_IOVECS, zeroed_header};
use crate::io::{SharedBuf, Sink};
use crate::sys::addr::RawAddr;
use crate::sys::cmsg::{self, GsoCmsg};

impl MmsgBackend {
    /// Sends queued trains until the queue is empty, the kernel says
    /// EAGAIN, or this flush has made [`TX_BATCHES_PER_FLUSH`] calls.
    pub(super) fn flush(&mut self, sink: &mut dyn Sink) {
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
        self.stats.tx_messages += 1;
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

/// A train waiting to be sent. Its segments are the next `count` entries
/// of [`TrainQueue::segments`].
#[derive(Debug)]
pub(super) struct Queued {
    pub(super) dst: SocketAddr,
    pub(super) born: Instant,
    pub(super) count: usize,
    /// Segments already sent (without GSO a train may leave over several
    /// calls).
    pub(super) done: usize,
    /// Bytes already sent.
    pub(super) bytes: usize,
    /// The UDP_SEGMENT size to send it with as one message
    /// ([`Train::segment_size`](crate::io::Train::segment_size)), or 0:
    /// datagram by datagram (one datagram, or GSO refused for it).
    pub(super) gso_size: u16,
}

/// Trains in send order, and their segments back to back in one FIFO, so
/// neither allocates once it has grown to its high-water mark.
#[derive(Debug)]
pub(super) struct TrainQueue {
    pub(super) trains: VecDeque<Queued>,
    pub(super) segments: VecDeque<SharedBuf>,
}

impl TrainQueue {
    /// Removes the front train and lets go of its buffers.
    pub(super) fn pop(&mut self) -> Option<Queued> {
        let train = self.trains.pop_front()?;
        self.segments.drain(..train.count.min(self.segments.len()));
        Some(train)
    }
}

/// What one message of a send batch carries.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Planned {
    segments: usize,
    gso: bool,
}

/// The `sendmmsg` arrays, refilled for every call from the queue's front.
pub(super) struct TxBatch {
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
    pub(super) fn new() -> Self {
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
            cmsgs: vec![GsoCmsg::new(0); TX_BATCH],
            plan: vec![Planned::default(); TX_BATCH],
        }
    }

    /// Fills headers for the front of `queue` and returns how many.
    fn build(&mut self, queue: &TrainQueue, gso: bool, ipv6: bool) -> usize {
        let (mut messages, mut iovecs, mut first) = (0, 0, 0);
        'trains: for (t, train) in queue.trains.iter().enumerate() {
            if messages == TX_BATCH || iovecs == TX_IOVECS {
                break;
            }
            let Some(slot) = self.names.get_mut(t) else {
                break;
            };
            let name_len = slot.set(train.dst, ipv6);
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
        let header = &mut self.headers[m];
        header.msg_len = 0;
        let h = &mut header.msg_hdr;
        (h.msg_name, h.msg_namelen) = name;
        h.msg_iov = self.iovecs.as_mut_ptr().wrapping_add(iovecs.0);
        h.msg_iovlen = iovecs.1 as _;
        h.msg_flags = 0;
        if gso_size == 0 {
            cmsg::detach(h);
        } else {
            let control = &mut self.cmsgs[m];
            control.set_size(gso_size);
            control.attach(h);
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
