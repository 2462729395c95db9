//! The provided-buffer ring that multishot recvmsg fills: `entries`
//! buffers of [`BUF_LEN`] bytes, handed to the kernel through a ring of
//! `io_uring_buf` descriptors, and handed back one by one once a datagram
//! has been read out of them.
//!
//! Both regions are anonymous mappings, not Rust allocations: the kernel
//! writes into the buffers behind our back, so no Rust reference may cover
//! a buffer the kernel owns. A buffer is ours from the CQE that names it
//! until [`BufRing::give_back`].

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::Submitter;

/// Bytes per receive buffer: the 16-byte `io_uring_recvmsg_out` header,
/// a 28-byte `sockaddr_in6` name and up to 2004 bytes of payload, more
/// than the 1452-byte datagrams shoal sends.
pub(super) const BUF_LEN: usize = 2048;

/// Most entries a buffer ring may have (the kernel's limit).
pub(super) const MAX_ENTRIES: usize = 1 << 15;

/// The kernel's `struct io_uring_buf`. In the first entry, `resv` is the
/// ring's tail, which only [`BufRing::publish`] writes, so entries are
/// written field by field and never as a whole.
#[repr(C)]
struct BufDesc {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(size_of::<BufDesc>() == 16);

/// An anonymous private mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Self> {
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choosing touches no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(ptr.cast())
            .map(|ptr| Self { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned null"))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and no
        // reference into the mapping outlives its owner (`BufRing` hands
        // out slices borrowed from itself only).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The ring and its buffers. See the module docs.
pub(super) struct BufRing {
    descs: Mapping,
    bufs: Mapping,
    entries: u16,
    /// Our tail: descriptors up to here are written.
    tail: u16,
    /// The tail the kernel has been shown.
    published: u16,
}

// SAFETY: the mappings are owned by this value alone (the kernel aside,
// which does not care which thread we run on); nothing is thread-local.
unsafe impl Send for BufRing {}

impl std::fmt::Debug for BufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufRing")
            .field("entries", &self.entries)
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

impl BufRing {
    /// `entries` buffers, all in the ring (not yet shown to a kernel).
    /// `entries` must be a power of two in 1..=[`MAX_ENTRIES`].
    pub(super) fn new(entries: usize) -> io::Result<Self> {
        if !entries.is_power_of_two() || entries > MAX_ENTRIES {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let count =
            u16::try_from(entries).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // mmap rounds up to whole pages, which is also the alignment the
        // kernel wants for the descriptor ring.
        let descs = Mapping::new(entries * size_of::<BufDesc>())?;
        let bufs = Mapping::new(entries * BUF_LEN)?;
        let mut ring = Self {
            descs,
            bufs,
            entries: count,
            tail: 0,
            published: 0,
        };
        for bid in 0..count {
            ring.give_back(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// Registers the ring as buffer group `bgid` of `submitter`'s ring.
    pub(super) fn register(&self, submitter: &Submitter<'_>, bgid: u16) -> io::Result<()> {
        // SAFETY: the descriptor ring is a page-aligned mapping of
        // `entries` descriptors, and it lives as long as this value, whose
        // owner keeps it until the io_uring is gone or leaks it.
        unsafe {
            submitter.register_buf_ring_with_flags(
                self.descs.ptr.as_ptr() as u64,
                self.entries,
                bgid,
                0,
            )
        }
    }

    /// The first `len` bytes of buffer `bid`, which the kernel filled and
    /// named in a CQE. None if the kernel named a buffer we do not have.
    pub(super) fn filled(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= self.entries {
            return None;
        }
        let start = usize::from(bid) * BUF_LEN;
        // SAFETY: `bid < entries`, so the buffer lies inside the mapping;
        // its CQE arrived, so the kernel has finished writing it and will
        // not touch it again before `give_back(bid)`, which needs `&mut
        // self` and so ends this borrow first.
        Some(unsafe {
            std::slice::from_raw_parts(self.bufs.ptr.as_ptr().add(start), len.min(BUF_LEN))
        })
    }

    /// Puts buffer `bid` back in the ring; the kernel sees it after the
    /// next [`BufRing::publish`]. `bid` must be one the kernel handed out
    /// (or, from `new`, one never handed in).
    pub(super) fn give_back(&mut self, bid: u16) {
        if bid >= self.entries {
            return;
        }
        let slot = usize::from(self.tail & (self.entries - 1));
        let addr = self.bufs.ptr.as_ptr() as u64 + (usize::from(bid) * BUF_LEN) as u64;
        let desc = self.descs.ptr.as_ptr().cast::<BufDesc>();
        // SAFETY: `slot < entries`, so the descriptor is inside the
        // mapping. The kernel does not read descriptors at or past the
        // published tail, and with as many descriptors as buffers, the
        // one at `tail` is never one the kernel still has to read. The
        // writes leave `resv` (the tail, in descriptor 0) alone.
        unsafe {
            let desc = desc.add(slot);
            (&raw mut (*desc).addr).write(addr);
            (&raw mut (*desc).len).write(BUF_LEN as u32);
            (&raw mut (*desc).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Shows the kernel every buffer given back so far.
    pub(super) fn publish(&mut self) {
        if self.tail == self.published {
            return;
        }
        let desc = self.descs.ptr.as_ptr().cast::<BufDesc>();
        // SAFETY: descriptor 0's `resv` field is the ring tail: inside the
        // mapping, 2-aligned, and accessed by the kernel only atomically
        // (smp_load_acquire). The release store orders the descriptor
        // writes above before it.
        unsafe {
            AtomicU16::from_ptr(&raw mut (*desc).resv).store(self.tail, Ordering::Release);
        }
        self.published = self.tail;
    }
}
