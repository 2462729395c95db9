//! `poll(2)` over a caller's set of descriptors.

use std::io;
use std::time::Duration;

pub use libc::pollfd as PollFd;

/// Waits until one of `fds` has one of its `events` or `timeout` passes
/// (whole milliseconds, rounded down), fills each `revents`, and returns
/// how many are ready (0 on timeout).
pub fn poll(fds: &mut [PollFd], timeout: Duration) -> io::Result<usize> {
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is a live, exclusively borrowed slice of initialised
    // pollfds, and its length is what is passed; poll only writes their
    // `revents`.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    usize::try_from(ready).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_readable_socket_is_reported() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut fds = [PollFd {
            fd: rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        assert_eq!(poll(&mut fds, Duration::ZERO).expect("poll"), 0);
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        tx.send_to(b"x", rx.local_addr().expect("addr"))
            .expect("send");
        assert_eq!(poll(&mut fds, Duration::from_secs(5)).expect("poll"), 1);
        assert_ne!(fds[0].revents & libc::POLLIN, 0);
    }
}
