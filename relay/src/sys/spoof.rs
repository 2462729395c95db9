//! UDP datagrams in someone else's name: a raw IPv4 socket that writes
//! the IP and UDP headers itself, so the receiver sees them come from any
//! address. For the spoofing tests (`relay/tests/spoofed.rs`) and the load
//! tool's `--flood-spoof-source`; never used by a relay. Needs root
//! (CAP_NET_RAW); its users send to loopback only.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::addr::RawAddr;

/// IPv4 header (no options) and UDP header.
const HEADERS: usize = 20 + 8;

/// A raw socket and a buffer to build packets in.
#[derive(Debug)]
pub struct Spoofer {
    fd: OwnedFd,
    packet: Vec<u8>,
}

impl Spoofer {
    /// Opens the raw socket; fails without CAP_NET_RAW.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain socket(2); a non-negative result is a new fd that
        // nothing else owns.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            fd,
            packet: Vec::new(),
        })
    }

    /// Sends `payload` as one UDP datagram from `src` to `dst`.
    pub fn send(&mut self, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> io::Result<()> {
        let udp_len = u16::try_from(8 + payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "datagram too long"))?;
        let total = u16::try_from(HEADERS + payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "datagram too long"))?;
        let p = &mut self.packet;
        p.clear();
        // Version 4, IHL 5; length; DF; TTL 64; UDP. The kernel fills in
        // the id and the header checksum for IPPROTO_RAW.
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
        p.extend_from_slice(&src.ip().octets());
        p.extend_from_slice(&dst.ip().octets());
        p.extend_from_slice(&src.port().to_be_bytes());
        p.extend_from_slice(&dst.port().to_be_bytes());
        p.extend_from_slice(&udp_len.to_be_bytes());
        // No UDP checksum: allowed over IPv4.
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        let addr = RawAddr::new(SocketAddrV4::new(*dst.ip(), 0).into(), false);
        // SAFETY: `p` and `addr` are live for the call and the lengths
        // passed are theirs.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                p.as_ptr().cast(),
                p.len(),
                0,
                addr.as_ptr().cast(),
                addr.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
