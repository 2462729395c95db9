//! Stateless address validation, in the manner of a QUIC Retry.
//!
//! A server answers HELLO with a cookie: the issue time and a keyed BLAKE3
//! tag over the client's address and that time. It keeps no state; a
//! SUBSCRIBE is accepted only with a cookie whose tag matches the address
//! the SUBSCRIBE came from and which is younger than the lifetime. A client
//! that spoofs its address never sees the cookie, so it can never make the
//! server send stream data to the spoofed address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::Time;
use crate::wire::Cookie;

/// How long a cookie stays valid by default.
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(10);

/// Why a cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// The tag does not match this address and time: forged, or issued to
    /// another address.
    #[error("cookie tag does not match the source address")]
    Forged,
    /// Older than the lifetime, or issued in the future.
    #[error("cookie expired")]
    Expired,
}

/// Issues and checks cookies with one secret.
#[derive(Clone)]
pub struct CookieJar {
    key: [u8; 32],
    lifetime: Duration,
}

impl core::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieJar")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    /// A jar with a secret the caller drew from a good random source.
    pub fn new(secret: [u8; 32]) -> Self {
        Self {
            key: secret,
            lifetime: COOKIE_LIFETIME,
        }
    }

    fn tag(&self, addr: SocketAddr, issued_at_us: u64) -> [u8; 16] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        let ip = match addr.ip() {
            IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
            IpAddr::V6(ip) => ip.octets(),
        };
        h.update(&ip);
        h.update(&addr.port().to_be_bytes());
        h.update(&issued_at_us.to_be_bytes());
        let mut out = [0; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        out
    }

    /// A cookie for `addr`, issued now.
    pub fn issue(&self, now: Time, addr: SocketAddr) -> Cookie {
        Cookie {
            issued_at_us: now.as_micros(),
            tag: self.tag(addr, now.as_micros()),
        }
    }

    /// Checks that `cookie` was issued by this jar to `addr` and is fresh.
    pub fn check(&self, now: Time, addr: SocketAddr, cookie: &Cookie) -> Result<(), CookieError> {
        let expected = self.tag(addr, cookie.issued_at_us);
        // Constant-time comparison: no early exit on the first difference.
        let diff = expected
            .iter()
            .zip(cookie.tag.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(CookieError::Forged);
        }
        let issued = Time::from_micros(cookie.issued_at_us);
        if issued > now + Duration::from_secs(1) || now - issued > self.lifetime {
            return Err(CookieError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_binds_address_and_time() {
        let jar = CookieJar::new([3; 32]);
        let a: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:4001".parse().expect("addr");
        let t = Time::from_micros(5_000_000);
        let c = jar.issue(t, a);
        assert_eq!(jar.check(t + Duration::from_secs(2), a, &c), Ok(()));
        assert_eq!(jar.check(t, b, &c), Err(CookieError::Forged));
        assert_eq!(
            jar.check(t + COOKIE_LIFETIME + Duration::from_secs(1), a, &c),
            Err(CookieError::Expired)
        );
        let other = CookieJar::new([4; 32]);
        assert_eq!(other.check(t, a, &c), Err(CookieError::Forged));
        let mut tampered = c;
        tampered.issued_at_us += 1;
        assert_eq!(jar.check(t, a, &tampered), Err(CookieError::Forged));
    }
}
