//! Socket options beyond std and socket2: `int` options, buffer sizes past
//! the sysctl limit, and receive timestamps.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// `setsockopt` with an `int` value (`value` is capped at `c_int::MAX`).
pub fn set_int(fd: RawFd, level: i32, name: i32, value: usize) -> io::Result<()> {
    let v = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    // SAFETY: `v` is a live c_int and the length passed is its size; the
    // kernel only reads it. A bad fd is an error, not undefined behaviour.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const v).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Which socket buffer.
#[derive(Debug, Clone, Copy)]
pub enum Buffer {
    /// SO_RCVBUF.
    Receive,
    /// SO_SNDBUF.
    Send,
}

/// Sets a socket buffer to `bytes`, past `net.core.[rw]mem_max` when this
/// process may (root: SO_*BUFFORCE), else as far as the sysctl allows.
pub fn set_buffer(socket: &impl AsRawFd, which: Buffer, bytes: usize) -> io::Result<()> {
    let (force, plain) = match which {
        Buffer::Receive => (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        Buffer::Send => (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    };
    let fd = socket.as_raw_fd();
    set_int(fd, libc::SOL_SOCKET, force, bytes)
        .or_else(|_| set_int(fd, libc::SOL_SOCKET, plain, bytes))
}

/// Asks the kernel to stamp each datagram `fd` receives with the time it
/// arrived (CLOCK_REALTIME), read back by
/// [`RecvBatch::received_at`](super::batch::RecvBatch::received_at).
pub fn enable_timestamps(fd: RawFd) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}
