//! Sockets for many viewers: one epoll per viewer thread, and recvmmsg
//! into a reusable batch of buffers, with each datagram's kernel receive
//! time (SO_TIMESTAMPNS) where the socket asked for it.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Room for any v1 datagram (at most 1452 bytes) and then some.
const BUF_LEN: usize = 2048;
/// Room for one SCM_TIMESTAMPNS control message.
// SAFETY: CMSG_SPACE is arithmetic on its argument; it touches no memory.
const CTRL_LEN: usize = unsafe { libc::CMSG_SPACE(size_of::<libc::timespec>() as u32) } as usize;

/// Asks the kernel to stamp each datagram `fd` receives with the time it
/// arrived (CLOCK_REALTIME), read back by [`RecvBatch::received_at`].
pub fn enable_timestamps(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and its size is given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Nanoseconds since the epoch on CLOCK_REALTIME, the clock of the
/// kernel's receive timestamps.
pub fn realtime_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// An epoll instance, level-triggered, one token per registered socket.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    /// A new instance reporting up to `max_events` sockets per wait.
    pub fn new(max_events: usize) -> io::Result<Self> {
        // SAFETY: epoll_create1 has no memory preconditions.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: `fd` was just returned by epoll_create1 and is owned
            // by nothing else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: vec![libc::epoll_event { events: 0, u64: 0 }; max_events.max(1)],
        })
    }

    /// Watches `fd` for readability; its events carry `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both fds are open; `ev` is a valid epoll_event that the
        // kernel only reads.
        let rc =
            unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &raw mut ev) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Waits up to `timeout_ms` for readable sockets and returns their
    /// tokens. An interrupted wait returns none.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<impl Iterator<Item = u64> + '_> {
        let max = libc::c_int::try_from(self.events.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `events` has room for `max` entries, which the kernel
        // fills; the epoll fd is open.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                self.events.as_mut_ptr(),
                max,
                timeout_ms,
            )
        };
        let n = if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
            0
        } else {
            n as usize
        };
        Ok(self.events[..n].iter().map(|ev| ev.u64))
    }
}

/// Buffers and headers for one recvmmsg call, built once and reused. The
/// headers point into the boxed buffers, whose heap memory never moves, so
/// the batch may itself be moved; it is not `Send` (raw pointers) and stays
/// on the thread that made it.
pub struct RecvBatch {
    bufs: Box<[[u8; BUF_LEN]]>,
    // Referenced by `hdrs` through raw pointers; kept alive here.
    _iovs: Box<[libc::iovec]>,
    addrs: Box<[libc::sockaddr_in]>,
    // Referenced by `hdrs` through raw pointers too.
    _ctrl: Box<[u8]>,
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
        // SAFETY: sockaddr_in is plain data; all-zero is valid.
        let mut addrs: Box<[libc::sockaddr_in]> =
            (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut ctrl = vec![0u8; n * CTRL_LEN].into_boxed_slice();
        let hdrs = iovs
            .iter_mut()
            .zip(addrs.iter_mut())
            .zip(ctrl.chunks_mut(CTRL_LEN))
            .map(|((iov, addr), ctrl)| {
                // SAFETY: mmsghdr is plain data; all-zero is valid (null
                // pointers with zero lengths).
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_name = (addr as *mut libc::sockaddr_in).cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
                h.msg_hdr.msg_control = ctrl.as_mut_ptr().cast();
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
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_flags = 0;
            h.msg_hdr.msg_controllen = CTRL_LEN as _;
            h.msg_len = 0;
        }
        let vlen = libc::c_uint::try_from(self.hdrs.len()).unwrap_or(libc::c_uint::MAX);
        // SAFETY: every header points at a live iovec over a live buffer of
        // BUF_LEN bytes, at a live sockaddr_in and at CTRL_LEN live control
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
        // control pointer and length describe bytes inside `self.ctrl`,
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

    /// Datagram `i` of the last call, and who sent it.
    pub fn datagram(&self, i: usize) -> (&[u8], SocketAddrV4) {
        let len = (self.hdrs[i].msg_len as usize).min(BUF_LEN);
        let a = &self.addrs[i];
        let from = SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
            u16::from_be(a.sin_port),
        );
        (&self.bufs[i][..len], from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

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
        assert_eq!(
            std::net::SocketAddr::V4(from),
            tx.local_addr().expect("addr")
        );
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
