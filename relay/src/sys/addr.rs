//! Socket addresses as the kernel reads and writes them (`sockaddr_in`,
//! `sockaddr_in6`), to and from [`SocketAddr`]: the one conversion every
//! batched send and receive uses (both relay backends, the spoofer, the
//! load tool). It is plain byte work, so it needs no `unsafe`: the kernel
//! is handed [`RawAddr::as_ptr`] and fills or reads the bytes itself.
//!
//! Layout (Linux, `<netinet/in.h>`): the family in native byte order, the
//! port in network order, then the IPv4 address (4 bytes, 8 of zero
//! padding), or the IPv6 flow label (native order, as std and socket2
//! write it), address (16 bytes) and scope id (native order).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Bytes of the largest address kept: a `sockaddr_in6`.
const CAPACITY: usize = size_of::<libc::sockaddr_in6>();
/// Bytes of a `sockaddr_in`.
const V4_LEN: usize = size_of::<libc::sockaddr_in>();

const _: () = assert!(CAPACITY == 28 && V4_LEN == 16);

/// A socket address in the kernel's layout, and how many of its bytes the
/// address uses: room for an IPv4 or IPv6 one.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(4))]
pub struct RawAddr {
    /// The `sockaddr_in` or `sockaddr_in6`; first, so that a pointer to
    /// the value is a pointer to it.
    name: [u8; CAPACITY],
    /// Bytes of `name` in use.
    len: libc::socklen_t,
}

impl Default for RawAddr {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl RawAddr {
    /// Room for the kernel to write any address into (`msg_namelen`).
    pub const CAPACITY: libc::socklen_t = CAPACITY as libc::socklen_t;

    /// No address (family 0, length 0).
    pub const fn zeroed() -> Self {
        Self {
            name: [0; CAPACITY],
            len: 0,
        }
    }

    /// `addr` as a socket of the family `ipv6` says sends to it: see
    /// [`RawAddr::set`].
    pub fn new(addr: SocketAddr, ipv6: bool) -> Self {
        let mut raw = Self::zeroed();
        raw.set(addr, ipv6);
        raw
    }

    /// Writes `addr` as a socket of the family `ipv6` says wants it (an
    /// IPv4 address v4-mapped on an IPv6 socket; a v4-mapped one plain on
    /// an IPv4 socket) and returns its length.
    pub fn set(&mut self, addr: SocketAddr, ipv6: bool) -> libc::socklen_t {
        let n = &mut self.name;
        match for_family(addr, ipv6) {
            SocketAddr::V4(a) => {
                n[..2].copy_from_slice(&(libc::AF_INET as libc::sa_family_t).to_ne_bytes());
                n[2..4].copy_from_slice(&a.port().to_be_bytes());
                n[4..8].copy_from_slice(&a.ip().octets());
                n[8..V4_LEN].fill(0);
                self.len = V4_LEN as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                n[..2].copy_from_slice(&(libc::AF_INET6 as libc::sa_family_t).to_ne_bytes());
                n[2..4].copy_from_slice(&a.port().to_be_bytes());
                n[4..8].copy_from_slice(&a.flowinfo().to_ne_bytes());
                n[8..24].copy_from_slice(&a.ip().octets());
                n[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
                self.len = CAPACITY as libc::socklen_t;
            }
        }
        self.len
    }

    /// Bytes the address set last uses (its `msg_namelen`).
    pub fn len(&self) -> libc::socklen_t {
        self.len
    }

    /// Whether no address was set.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address the kernel wrote, `len` bytes of it (`msg_namelen`
    /// after the call), if it is IPv4 or IPv6.
    pub fn decode(&self, len: libc::socklen_t) -> Option<SocketAddr> {
        parse(self.name.get(..len as usize)?)
    }

    /// The address, for the kernel to read (`msg_name`, `sendto`).
    pub fn as_ptr(&self) -> *const libc::c_void {
        self.name.as_ptr().cast()
    }

    /// The address, for the kernel to write [`RawAddr::CAPACITY`] bytes
    /// into (`msg_name` of a receive).
    pub fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.name.as_mut_ptr().cast()
    }
}

/// The address a `sockaddr_in` / `sockaddr_in6` in `name` holds, as the
/// kernel wrote it (IPv4 peers of a dual-stack socket stay v4-mapped);
/// None when `name` is short or of another family.
pub fn parse(name: &[u8]) -> Option<SocketAddr> {
    let family = libc::sa_family_t::from_ne_bytes(name.get(..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match i32::from(family) {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddrV4::new(Ipv4Addr::from(ip), port).into())
        }
        libc::AF_INET6 => {
            let flowinfo = u32::from_ne_bytes(name.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope_id = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
            Some(SocketAddrV6::new(Ipv6Addr::from(ip), port, flowinfo, scope_id).into())
        }
        _ => None,
    }
}

/// `addr` in the family of a socket that is IPv6 when `ipv6`: IPv4 peers
/// of a dual-stack socket as v4-mapped IPv6, and v4-mapped ones plain on
/// an IPv4 socket.
fn for_family(addr: SocketAddr, ipv6: bool) -> SocketAddr {
    match (addr, ipv6) {
        (SocketAddr::V4(a), true) => {
            SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0).into()
        }
        (SocketAddr::V6(a), false) => a
            .ip()
            .to_ipv4_mapped()
            .map_or(addr, |ip| SocketAddrV4::new(ip, a.port()).into()),
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_survive_encoding() {
        let mut raw = RawAddr::zeroed();
        for (addr, ipv6) in [
            ("10.1.2.3:4567", false),
            ("[2001:db8::7]:80", true),
            ("[fe80::1%3]:80", true),
        ] {
            let addr: SocketAddr = addr.parse().expect("address");
            let len = raw.set(addr, ipv6);
            assert_eq!(raw.decode(len), Some(addr));
        }
        let v4: SocketAddr = "10.1.2.3:4567".parse().expect("address");
        let len = raw.set(v4, true);
        let mapped = raw.decode(len).expect("decodes");
        assert_eq!(mapped.ip().to_canonical(), v4.ip());
        let len = raw.set(mapped, false);
        assert_eq!(raw.decode(len), Some(v4));
        assert_eq!(raw.decode(3), None, "short");
    }

    #[test]
    fn the_layout_is_the_kernels() {
        let v4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 4242);
        let raw = RawAddr::new(v4.into(), false);
        // SAFETY: a sockaddr_in is 16 bytes of integers, and `raw` holds
        // at least that many initialised bytes at its start (repr(C),
        // `name` first, aligned to 4 as sockaddr_in wants).
        let sin = unsafe { &*raw.as_ptr().cast::<libc::sockaddr_in>() };
        assert_eq!(i32::from(sin.sin_family), libc::AF_INET);
        assert_eq!(u16::from_be(sin.sin_port), 4242);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [10, 0, 0, 1]);
        let v6 = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 80, 7, 3);
        let raw = RawAddr::new(v6.into(), true);
        // SAFETY: as above, for the 28 bytes of a sockaddr_in6.
        let sin6 = unsafe { &*raw.as_ptr().cast::<libc::sockaddr_in6>() };
        assert_eq!(i32::from(sin6.sin6_family), libc::AF_INET6);
        assert_eq!(u16::from_be(sin6.sin6_port), 80);
        assert_eq!(sin6.sin6_addr.s6_addr, Ipv6Addr::LOCALHOST.octets());
        assert_eq!((sin6.sin6_flowinfo, sin6.sin6_scope_id), (7, 3));
    }

    #[test]
    fn socket2_writes_the_same_bytes() {
        for addr in ["10.0.0.1:4242", "[fe80::1%3]:80"] {
            let addr: SocketAddr = addr.parse().expect("address");
            let raw = RawAddr::new(addr, addr.is_ipv6());
            let theirs = socket2::SockAddr::from(addr);
            assert_eq!(theirs.len(), raw.len());
            // SAFETY: `theirs` holds a sockaddr_storage, of which its
            // first `len()` bytes are the address.
            let bytes = unsafe {
                std::slice::from_raw_parts(theirs.as_ptr().cast::<u8>(), theirs.len() as usize)
            };
            assert_eq!(bytes, &raw.name[..raw.len() as usize], "{addr}");
        }
    }

    #[test]
    fn source_addresses_never_panic() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[2, 0]), None);
        let mut v4 = [0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&4242u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(parse(&v4), Some(SocketAddr::from(([10, 0, 0, 1], 4242))));
        assert_eq!(parse(&v4[..7]), None);
        let mut v6 = [0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&4242u16.to_be_bytes());
        v6[8..24].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        assert_eq!(
            parse(&v6),
            Some(SocketAddr::from((Ipv6Addr::LOCALHOST, 4242)))
        );
        assert_eq!(parse(&v6[..20]), None);
    }
}
