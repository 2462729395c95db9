//! Sockets and wake-ups shared by both backends.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

use crate::sys::socket::{Buffer, set_buffer, set_int};

/// Socket buffer size asked for; the kernel caps it at `net.core.*mem_max`
/// unless the process may force it (root), which it then tries.
const SOCKET_BUFFER: usize = 8 << 20;

/// A non-blocking UDP socket bound to `addr` in an SO_REUSEPORT group, so
/// that every worker can bind the same address and the kernel spreads
/// senders over them by a hash of the 4-tuple (one sender, one worker).
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    grow_buffers(&socket);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Asks for large buffers: a burst to a thousand subscribers is megabytes.
fn grow_buffers(socket: &Socket) {
    for which in [Buffer::Send, Buffer::Receive] {
        let _ = set_buffer(socket, which, SOCKET_BUFFER);
    }
}

/// Whether the kernel takes UDP_SEGMENT (GSO) on this socket.
pub fn gso_supported(socket: &UdpSocket) -> bool {
    // Setting a segment size of 0 is a no-op that fails where GSO is absent.
    set_int(socket.as_raw_fd(), libc::SOL_UDP, libc::UDP_SEGMENT, 0).is_ok()
}

/// Wakes a worker blocked in its backend's `turn`: an eventfd that the
/// backend watches beside its socket.
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// A new eventfd.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new
        // descriptor that we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: `fd` was just returned by eventfd and is owned by no
            // one else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Makes the watching backend's `turn` return soon.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own. A
        // full counter (EAGAIN) already means "woken", so the result is
        // not needed.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    /// Resets the counter after a wake-up was seen.
    pub fn reset(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from an eventfd we own;
        // EAGAIN (not woken) is fine.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut v).cast(), 8) };
    }

    /// The eventfd, for the backend to watch.
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
