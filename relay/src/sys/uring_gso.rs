//! A bare io_uring send loop of UDP GSO trains: the third loop of the load
//! tool's `--baseline`, what the relay's io_uring backend could do at best.
//!
//! One `IORING_OP_SEND` per train, with the destination in the SQE
//! (`addr2`) and the segment size set once on the socket (`UDP_SEGMENT`
//! as a socket option), so there is no msghdr, iovec or cmsg per train;
//! [`QUEUE_DEPTH`] trains in flight, one `io_uring_enter` per refill. The
//! payload is one zero-filled buffer every SQE points at.

use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Instant;

use crate::sys::addr::RawAddr;
use crate::sys::socket::{Buffer, set_buffer};
use anyhow::Context;
use io_uring::{IoUring, opcode, types};

/// Trains in flight at once.
const QUEUE_DEPTH: u32 = 128;

/// Sends trains of `segments` zero-filled datagrams of `datagram_len`
/// bytes round-robin to `dests` until `deadline`; returns datagrams
/// (segments) the kernel took.
pub fn send_loop(
    dests: &[SocketAddrV4],
    datagram_len: usize,
    segments: usize,
    deadline: Instant,
) -> anyhow::Result<u64> {
    if dests.is_empty() {
        return Ok(0);
    }
    let socket = UdpSocket::bind("127.0.0.1:0").context("cannot bind a baseline socket")?;
    let _ = set_buffer(&socket, Buffer::Send, 4 << 20);
    let segment = libc::c_int::try_from(datagram_len).context("segment size")?;
    // SAFETY: setsockopt(2) reads exactly `size_of::<c_int>()` bytes from
    // a live local; the descriptor is the socket's own.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            std::ptr::from_ref(&segment).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("io_uring GSO baseline: UDP_SEGMENT");
    }
    let names: Vec<RawAddr> = dests
        .iter()
        .map(|&d| RawAddr::new(d.into(), false))
        .collect();
    let payload = vec![0u8; datagram_len * segments];
    let len = u32::try_from(payload.len()).context("train size")?;
    let mut ring = IoUring::new(QUEUE_DEPTH * 2).context("io_uring_setup")?;
    let fd = types::Fd(socket.as_raw_fd());
    let mut cursor = 0usize;
    let mut in_flight = 0u32;
    let mut sent = 0u64;
    let mut failures = 0u32;
    let mut error = None;
    while (Instant::now() < deadline && error.is_none()) || in_flight > 0 {
        let refill = Instant::now() < deadline && error.is_none();
        {
            let mut sq = ring.submission();
            while refill && in_flight < QUEUE_DEPTH {
                let to = &names[cursor % names.len()];
                cursor = cursor.wrapping_add(1);
                let sqe = opcode::Send::new(fd, payload.as_ptr(), len)
                    .dest_addr(to.as_ptr().cast())
                    .dest_addr_len(to.len())
                    .build();
                // SAFETY: the SQE points at `payload` and at an entry of
                // `names`, both alive and unmoved until every SQE has
                // completed: the loop runs until nothing is in flight, and
                // the one early return leaks both.
                if unsafe { sq.push(&sqe) }.is_err() {
                    break;
                }
                in_flight += 1;
            }
        }
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // The kernel may still read SQEs in flight: their buffers
                // must outlive this function.
                std::mem::forget(payload);
                std::mem::forget(names);
                return Err(e).context("io_uring_enter");
            }
        }
        for cqe in ring.completion() {
            in_flight -= 1;
            match cqe.result() {
                n if n > 0 => {
                    sent += u64::try_from(n).unwrap_or(0) / datagram_len as u64;
                    failures = 0;
                }
                e if [-libc::ENOBUFS, -libc::EAGAIN, -libc::ECONNREFUSED].contains(&e) => {}
                e => {
                    failures += 1;
                    // Not a passing hiccup: stop sending, and say so once
                    // what is in flight has completed.
                    if sent == 0 || failures > 100 {
                        error.get_or_insert(std::io::Error::from_raw_os_error(-e));
                    }
                }
            }
        }
    }
    match error {
        Some(e) => Err(e).context("io_uring GSO baseline: send"),
        None => Ok(sent),
    }
}
