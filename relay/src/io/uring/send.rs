//! Send slots: what an in-flight train needs at a stable address until
//! its completions arrive (msghdrs, iovecs, the destination, the GSO cmsg)
//! and the `Arc`s that keep its datagrams alive.
//!
//! Slots are reused through a free list and only ever added, so once as
//! many trains have been in flight as ever will be, `fill` allocates
//! nothing. The kernel-visible parts sit in a `Box` of their own, so
//! bookkeeping never writes memory the kernel may be reading.

use std::io;
use std::time::Instant;

use crate::io::{BackendStats, MAX_SEGMENTS, SharedBuf, Sink, Train};
use crate::sys::addr::RawAddr;
use crate::sys::cmsg::GsoCmsg;
use io_uring::{opcode, squeue, types};

/// What the kernel reads while a slot's SQEs are in flight.
struct KernelView {
    addr: RawAddr,
    cmsg: GsoCmsg,
    iovs: Vec<libc::iovec>,
    /// One msghdr (GSO) or one per datagram.
    msgs: Vec<libc::msghdr>,
}

/// One train.
struct Slot {
    view: Box<KernelView>,
    bufs: Vec<SharedBuf>,
    born: Instant,
    /// Datagrams each SQE carries: the whole train with GSO, else 1.
    per_sqe: usize,
    /// SQEs not yet in the submission queue.
    unpushed: usize,
    /// SQEs in the submission queue or the kernel.
    unfinished: usize,
    bytes: usize,
    errno: Option<i32>,
}

/// All send slots of one backend.
pub(super) struct SendSlots {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Most slots in use at once (`IoConfig::tx_queue`).
    limit: usize,
    gso: bool,
    /// SQEs pushed and not yet completed, over all slots.
    in_kernel: usize,
}

// SAFETY: the raw pointers in the msghdrs and iovecs point into this
// value's own boxes and into `Arc`s it holds; none is tied to a thread.
unsafe impl Send for SendSlots {}

impl std::fmt::Debug for SendSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendSlots")
            .field("slots", &self.slots.len())
            .field("free", &self.free.len())
            .field("in_kernel", &self.in_kernel)
            .finish_non_exhaustive()
    }
}

/// Slots made up front (one turn's trains to a thousand subscribers); more
/// are added while more trains are in flight.
const INITIAL_SLOTS: usize = 1024;

impl SendSlots {
    pub(super) fn new(limit: usize, gso: bool) -> Self {
        let limit = limit.clamp(1, u32::MAX as usize);
        let mut slots = Self {
            slots: Vec::with_capacity(INITIAL_SLOTS.min(limit)),
            free: Vec::with_capacity(INITIAL_SLOTS.min(limit)),
            limit,
            gso,
            in_kernel: 0,
        };
        for _ in 0..INITIAL_SLOTS.min(limit) {
            slots.add_slot();
        }
        slots.free.reverse();
        slots
    }

    fn add_slot(&mut self) {
        let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(Slot {
            view: Box::new(KernelView {
                addr: RawAddr::zeroed(),
                cmsg: GsoCmsg::new(0),
                iovs: Vec::with_capacity(MAX_SEGMENTS),
                msgs: Vec::with_capacity(if self.gso { 1 } else { MAX_SEGMENTS }),
            }),
            bufs: Vec::with_capacity(MAX_SEGMENTS),
            born: Instant::now(),
            per_sqe: 1,
            unpushed: 0,
            unfinished: 0,
            bytes: 0,
            errno: None,
        });
        self.free.push(index);
    }

    /// SQEs pushed and not yet completed.
    pub(super) fn in_kernel(&self) -> usize {
        self.in_kernel
    }

    /// Takes a train into a free slot and returns the slot's index, or
    /// None if `limit` trains are already queued or in flight.
    pub(super) fn fill(&mut self, addr: RawAddr, train: &mut Train, born: Instant) -> Option<u32> {
        if self.slots.len() - self.free.len() >= self.limit {
            return None;
        }
        if self.free.is_empty() {
            self.add_slot();
        }
        let index = self.free.pop()?;
        let count = train.segments().len();
        let gso_size = train.segment_size().filter(|_| self.gso);
        let slot = self.slots.get_mut(index as usize)?;
        train.take_segments(&mut slot.bufs);
        slot.born = born;
        slot.bytes = 0;
        slot.errno = None;
        let view = &mut *slot.view;
        view.addr = addr;
        view.iovs.clear();
        view.iovs.extend(slot.bufs.iter().map(|buf| libc::iovec {
            // The kernel only reads from it: sendmsg.
            iov_base: buf.as_ptr().cast_mut().cast(),
            iov_len: buf.len(),
        }));
        view.msgs.clear();
        // The kernel only reads a send's name.
        let name = view.addr.as_ptr().cast_mut();
        let namelen = view.addr.len();
        let iov_base = view.iovs.as_mut_ptr();
        let one_msghdr = |iov: *mut libc::iovec, iovlen: usize| {
            // SAFETY: msghdr is pointers and integers, for which zero (null)
            // is valid.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = name;
            msg.msg_namelen = namelen;
            msg.msg_iov = iov;
            msg.msg_iovlen = iovlen as _;
            msg
        };
        if gso_size.is_some() || count == 1 {
            let mut msg = one_msghdr(iov_base, count);
            if let Some(size) = gso_size {
                view.cmsg.set_size(size);
                view.cmsg.attach(&mut msg);
            }
            view.msgs.push(msg);
            slot.per_sqe = count;
        } else {
            view.msgs
                .extend((0..count).map(|i| one_msghdr(iov_base.wrapping_add(i), 1)));
            slot.per_sqe = 1;
        }
        slot.unpushed = view.msgs.len();
        slot.unfinished = 0;
        Some(index)
    }

    /// The next SQE of slot `index`, not yet pushed; None once all are.
    pub(super) fn next_sqe(&self, index: u32, fd: types::Fixed) -> Option<squeue::Entry> {
        let slot = self.slots.get(index as usize)?;
        let next = slot.view.msgs.len().checked_sub(slot.unpushed)?;
        let msg = slot.view.msgs.get(next)?;
        Some(
            opcode::SendMsg::new(fd, msg)
                .build()
                .user_data(u64::from(index)),
        )
    }

    /// The SQE from `next_sqe(index)` is in the submission queue.
    pub(super) fn pushed(&mut self, index: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize) {
            slot.unpushed = slot.unpushed.saturating_sub(1);
            slot.unfinished += 1;
            self.in_kernel += 1;
        }
    }

    /// An SQE of slot `index` completed with `res`. Once the train's last
    /// SQE has, tells `sink` and frees the slot.
    pub(super) fn complete(
        &mut self,
        index: u32,
        res: i32,
        sink: &mut dyn Sink,
        stats: &mut BackendStats,
    ) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        if slot.unfinished == 0 {
            return;
        }
        slot.unfinished -= 1;
        self.in_kernel -= 1;
        match usize::try_from(res) {
            Ok(bytes) => {
                slot.bytes += bytes;
                stats.tx_datagrams += slot.per_sqe as u64;
                stats.tx_messages += 1;
                if slot.per_sqe > 1 {
                    stats.tx_trains += 1;
                }
            }
            Err(_) => {
                stats.tx_errors += 1;
                slot.errno.get_or_insert(-res);
            }
        }
        if slot.unfinished > 0 || slot.unpushed > 0 {
            return;
        }
        let result = match slot.errno {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Ok(slot.bytes),
        };
        sink.sent(slot.born, slot.bufs.len(), result);
        slot.bufs.clear();
        self.free.push(index);
    }
}
