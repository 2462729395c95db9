//! The receive side: a fixed ring of buffers and `recvmmsg` headers
//! built once, drained into the sink a bounded number of calls a turn.

use std::ffi::c_uint;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr;

use super::{MmsgBackend, RX_BATCHES_PER_TURN, RX_BUFFER, zeroed_header};
use crate::io::Sink;
use crate::sys::addr::RawAddr;

impl MmsgBackend {
    /// Hands the datagrams waiting on the socket to `sink`, up to
    /// [`RX_BATCHES_PER_TURN`] calls' worth.
    pub(super) fn receive(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
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
                let Some(from) = self.rx.names[i].decode(header.msg_hdr.msg_namelen) else {
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
}

/// The receive buffers and their `recvmmsg` headers, built once.
pub(super) struct RxRing {
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
    pub(super) fn new(count: usize) -> Self {
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
            header.msg_hdr.msg_namelen = RawAddr::CAPACITY;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
    }
}
