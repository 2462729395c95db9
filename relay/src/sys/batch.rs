//! `recvmmsg` and `sendmmsg` behind safe types, for the load tool: a
//! reusable receive batch with each datagram's kernel receive time
//! (SO_TIMESTAMPNS) where the socket asked for it, and a send batch of
//! messages borrowed for one call, each optionally a GSO train.
//!
//! (The relay's backends keep their own rings in `crate::io`: they hold
//! on to buffers across calls, which a borrow cannot express.)

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};

use super::addr::RawAddr;
use super::cmsg::{self, GsoCmsg};

/// Room for any v1 datagram (at most 1452 bytes) and then some.
const BUF_LEN: usize = 2048;
/// Room for one SCM_TIMESTAMPNS control message.
// SAFETY: CMSG_SPACE is arithmetic on its argument; it touches no memory.
const CTRL_LEN: usize = unsafe { libc::CMSG_SPACE(size_of::<libc::timespec>() as u32) } as usize;

/// One message's control buffer, aligned for the `cmsghdr` the kernel
/// writes at its start.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Control([u8; CTRL_LEN]);

const _: () = assert!(align_of::<Control>() >= align_of::<libc::cmsghdr>());

/// Buffers and headers for one recvmmsg call, built once and reused. The
/// headers point into the boxed buffers, whose heap memory never moves, so
/// the batch may itself be moved; it is not `Send` (raw pointers) and stays
/// on the thread that made it.
pub struct RecvBatch {
    bufs: Box<[[u8; BUF_LEN]]>,
    // Referenced by `hdrs` through raw pointers; kept alive here.
    _iovs: Box<[libc::iovec]>,
    addrs: Box<[RawAddr]>,
    // Referenced by `hdrs` through raw pointers too.
    _ctrl: Box<[Control]>,
    hdrs: Box<[libc::mmsghdr]>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("len", &self.hdrs.len())
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    /// Room for `n` datagrams per call.
    pub fn new(n: usize) -> Self {
        let n = n.max(1);
        let mut bufs = vec![[0u8; BUF_LEN]; n].into_boxed_slice();
        let mut iovs: Box<[libc::iovec]> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: BUF_LEN,
            })
            .collect();
        let mut addrs = vec![RawAddr::zeroed(); n].into_boxed_slice();
        let mut ctrl = vec![Control([0; CTRL_LEN]); n].into_boxed_slice();
        let hdrs = iovs
            .iter_mut()
            .zip(addrs.iter_mut())
            .zip(ctrl.iter_mut())
            .map(|((iov, addr), ctrl)| {
                // SAFETY: mmsghdr is plain data; all-zero is valid (null
                // pointers with zero lengths).
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_name = addr.as_mut_ptr();
                h.msg_hdr.msg_namelen = RawAddr::CAPACITY;
                h.msg_hdr.msg_control = (&raw mut *ctrl).cast();
                h.msg_hdr.msg_controllen = CTRL_LEN as _;
                h
            })
            .collect();
        Self {
            bufs,
            _iovs: iovs,
            addrs,
            _ctrl: ctrl,
            hdrs,
        }
    }

    /// Receives what is waiting on `fd`, without blocking: the number of
    /// datagrams now in the batch (zero when none was waiting).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for h in self.hdrs.iter_mut() {
            h.msg_hdr.msg_namelen = RawAddr::CAPACITY;
            h.msg_hdr.msg_flags = 0;
            h.msg_hdr.msg_controllen = CTRL_LEN as _;
            h.msg_len = 0;
        }
        let vlen = libc::c_uint::try_from(self.hdrs.len()).unwrap_or(libc::c_uint::MAX);
        // SAFETY: every header points at a live iovec over a live buffer of
        // BUF_LEN bytes, at a live RawAddr of RawAddr::CAPACITY bytes and at CTRL_LEN live control
        // bytes, of the lengths given, all owned by `self` and not
        // otherwise borrowed during the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                vlen,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            // An ICMP error queued on the socket (e.g. the relay's port
            // closed): reported once, then the socket reads on.
            io::ErrorKind::ConnectionRefused => Ok(0),
            _ => Err(err),
        }
    }

    /// When datagram `i` of the last call reached the socket, nanoseconds
    /// on CLOCK_REALTIME, if the socket asked for timestamps.
    pub fn received_at(&self, i: usize) -> Option<u64> {
        let h = &self.hdrs[i].msg_hdr;
        if h.msg_controllen == 0 || h.msg_flags & libc::MSG_CTRUNC != 0 {
            return None;
        }
        // SAFETY: `h` is a header the kernel filled in the last call: its
        // control pointer and length describe bytes inside `self._ctrl`
        // (each a `Control`, aligned for cmsghdr),
        // which the CMSG macros walk without leaving; the timestamp is read
        // unaligned from a message whose type says it holds one.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts = libc::CMSG_DATA(c).cast::<libc::timespec>().read_unaligned();
                    let secs = u64::try_from(ts.tv_sec).ok()?;
                    let nanos = u64::try_from(ts.tv_nsec).ok()?;
                    return Some(secs * 1_000_000_000 + nanos);
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        None
    }

    /// Datagram `i` of the last call, and who sent it (the unspecified
    /// address if not IPv4: the batch is for IPv4 sockets).
    pub fn datagram(&self, i: usize) -> (&[u8], SocketAddrV4) {
        let h = &self.hdrs[i];
        let len = (h.msg_len as usize).min(BUF_LEN);
        let from = match self.addrs[i].decode(h.msg_hdr.msg_namelen) {
            Some(SocketAddr::V4(a)) => a,
            _ => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        };
        (&self.bufs[i][..len], from)
    }
}

/// One message of a [`SendBatch`] call.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Where to; None on a connected socket.
    pub to: Option<&'a RawAddr>,
    /// What to send.
    pub payload: &'a [u8],
    /// Cut `payload` into datagrams of this control message's size (UDP
    /// GSO); None: one datagram.
    pub gso: Option<&'a GsoCmsg>,
}

/// The headers of one `sendmmsg` call, kept from call to call so that no
/// call allocates. Each call points them at the messages it is given,
/// which it borrows for its length only.
pub struct SendBatch {
    hdrs: Box<[libc::mmsghdr]>,
    iovs: Box<[libc::iovec]>,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("capacity", &self.hdrs.len())
            .finish_non_exhaustive()
    }
}

// SAFETY: the raw pointers in `hdrs` and `iovs` are only dereferenced (by
// the kernel) during `send`, after `send` has pointed them at what it
// borrows; between calls they are stale and never read. Nothing here is
// tied to a thread.
unsafe impl Send for SendBatch {}

impl SendBatch {
    /// Room for `capacity` messages a call.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let iovs = vec![
            libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            };
            capacity
        ];
        // SAFETY: mmsghdr is integers and raw pointers; all-zero (null
        // pointers, zero lengths) is valid.
        let hdrs = (0..capacity)
            .map(|_| unsafe { std::mem::zeroed() })
            .collect();
        Self {
            hdrs,
            iovs: iovs.into_boxed_slice(),
        }
    }

    /// Most messages a call sends.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Sends the first [`SendBatch::capacity`] of `messages` in one
    /// `sendmmsg` with `flags`; returns how many the kernel took.
    pub fn send<'a>(
        &mut self,
        socket: &impl AsRawFd,
        messages: impl IntoIterator<Item = Outgoing<'a>>,
        flags: libc::c_int,
    ) -> io::Result<usize> {
        let mut n = 0;
        for ((h, iov), m) in self.hdrs.iter_mut().zip(self.iovs.iter_mut()).zip(messages) {
            // The kernel only reads a send's payload and name.
            *iov = libc::iovec {
                iov_base: m.payload.as_ptr().cast_mut().cast(),
                iov_len: m.payload.len(),
            };
            let msg = &mut h.msg_hdr;
            msg.msg_iov = iov;
            msg.msg_iovlen = 1;
            (msg.msg_name, msg.msg_namelen) = match m.to {
                Some(to) => (to.as_ptr().cast_mut(), to.len()),
                None => (std::ptr::null_mut(), 0),
            };
            match m.gso {
                Some(gso) => gso.attach(msg),
                None => cmsg::detach(msg),
            }
            msg.msg_flags = 0;
            h.msg_len = 0;
            n += 1;
        }
        let vlen = libc::c_uint::try_from(n).unwrap_or(libc::c_uint::MAX);
        // SAFETY: headers[..n] were just pointed at `self.iovs` (which
        // stays put during the call), at payloads, names and control
        // messages borrowed for 'a, which outlives the call, each with its
        // own length; the kernel only reads them and writes `msg_len`.
        let rc = unsafe { libc::sendmmsg(socket.as_raw_fd(), self.hdrs.as_mut_ptr(), vlen, flags) };
        usize::try_from(rc).map_err(|_| io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::clock::realtime_nanos;
    use crate::sys::epoll::Epoll;
    use crate::sys::socket::enable_timestamps;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_receives_what_epoll_reports() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_nonblocking(true).expect("nonblocking");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut epoll = Epoll::new(4).expect("epoll");
        epoll.add(rx.as_raw_fd(), 42).expect("add");
        let mut batch = RecvBatch::new(8);
        assert_eq!(batch.recv(rx.as_raw_fd()).expect("recv"), 0);
        for i in 0..3u8 {
            tx.send_to(&[i; 10], rx.local_addr().expect("addr"))
                .expect("send");
        }
        let tokens: Vec<u64> = epoll.wait(1000).expect("wait").collect();
        assert_eq!(tokens, [42]);
        assert_eq!(batch.recv(rx.as_raw_fd()).expect("recv"), 3);
        assert_eq!(batch.received_at(0), None, "no timestamps asked for");
        let (bytes, from) = batch.datagram(2);
        assert_eq!(bytes, [2; 10]);
        assert_eq!(SocketAddr::V4(from), tx.local_addr().expect("addr"));
    }

    #[test]
    fn timestamps_come_with_the_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_nonblocking(true).expect("nonblocking");
        enable_timestamps(rx.as_raw_fd()).expect("SO_TIMESTAMPNS");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let before = realtime_nanos();
        tx.send_to(&[7; 10], rx.local_addr().expect("addr"))
            .expect("send");
        let mut batch = RecvBatch::new(4);
        let mut n = 0;
        for _ in 0..100 {
            n = batch.recv(rx.as_raw_fd()).expect("recv");
            if n > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(n, 1);
        let at = batch.received_at(0).expect("a timestamp");
        assert!(at >= before && at <= realtime_nanos(), "{before} {at}");
    }
}
