//! The handshake: HELLO, CHALLENGE, SUBSCRIBE, ACCEPT, REJECT.
//!
//! ```text
//! HELLO (>= 64 bytes, zero-padded)      CHALLENGE (36 bytes)
//!  0 version  1 0x10  2 reserved u16     0 version  1 0x11  2 reserved u16
//!  4 versions u32 (bit v-1 = speaks v)   4 nonce u64 (echoed from HELLO)
//!  8 nonce u64                          12 cookie: issued_at_us u64, tag 16 bytes
//! 16 zero padding
//!
//! SUBSCRIBE (78 + token bytes)          ACCEPT (71 bytes)
//!  0 version  1 0x12  2 flags  3 rsvd    0 version  1 0x13  2 keepalive_ms u16
//!  4 stream id (32)                      4 stream id (32)
//! 36 clubs u64 (bit c = club c)         36 session u64 (binds the session)
//! 44 start_seq u64 (flag RESUME)        44 start_seq u64
//! 52 cookie (24)                        52 observed: family u8, address (16), port u16
//! 76 token_len u16
//! 78 token                              REJECT (40 bytes)
//!                                        0 version  1 0x14  2 reason  3 rsvd
//!                                        4 versions u32  8 stream id (32, or zero)
//! ```

use std::net::SocketAddr;

use super::control::{read_addr, write_addr};
use super::cursor::{BufferTooSmall, Reader, Writer};
use super::{DecodeError, MessageType, header, put_header};
use crate::StreamId;

/// Smallest HELLO: larger than any reply to it, so a reply never amplifies.
pub const HELLO_MIN_LEN: usize = 64;
/// Length of CHALLENGE.
pub const CHALLENGE_LEN: usize = 36;
/// Length of REJECT.
pub const REJECT_LEN: usize = 40;
/// Length of ACCEPT.
pub const ACCEPT_LEN: usize = 71;
/// Largest access token in a SUBSCRIBE.
pub const TOKEN_MAX_LEN: usize = 512;
const SUBSCRIBE_FIXED_LEN: usize = 78;
const HELLO_FIXED_LEN: usize = 16;

/// The server's stateless proof that a client receives at its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    /// Server clock when issued, in microseconds.
    pub issued_at_us: u64,
    /// Keyed hash over the address and issue time (see [`crate::cookie`]).
    pub tag: [u8; 16],
}

impl Cookie {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            issued_at_us: r.u64()?,
            tag: r.array()?,
        })
    }

    fn write(&self, w: &mut Writer<'_>) {
        w.u64(self.issued_at_us);
        w.put(&self.tag);
    }
}

/// HELLO: a client opens a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Versions the client speaks.
    pub versions: u32,
    /// Client's random value, echoed in CHALLENGE.
    pub nonce: u64,
    /// Total datagram length, at least [`HELLO_MIN_LEN`].
    pub padded_len: u16,
}

impl Hello {
    /// Parses a HELLO; refuses one shorter than [`HELLO_MIN_LEN`].
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Hello)?;
        r.reserved(2)?;
        let versions = r.u32()?;
        let nonce = r.u64()?;
        if bytes.len() < HELLO_MIN_LEN {
            return Err(DecodeError::Field("padding"));
        }
        let padding = r.rest();
        if padding.iter().any(|&b| b != 0) {
            return Err(DecodeError::Reserved);
        }
        Ok(Self {
            versions,
            nonce,
            padded_len: u16::try_from(bytes.len()).map_err(|_| DecodeError::Oversized)?,
        })
    }

    /// Bytes [`Hello::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        usize::from(self.padded_len).max(HELLO_MIN_LEN)
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let len = self.buffer_len();
        let mut w = Writer::new(out, len)?;
        put_header(&mut w, MessageType::Hello);
        w.zeros(2);
        w.u32(self.versions);
        w.u64(self.nonce);
        w.zeros(len - HELLO_FIXED_LEN);
        Ok(w.finish())
    }
}

/// CHALLENGE: the server's stateless cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    /// The HELLO's nonce.
    pub nonce: u64,
    /// The cookie to present in SUBSCRIBE.
    pub cookie: Cookie,
}

impl Challenge {
    /// Parses a CHALLENGE.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Challenge)?;
        r.reserved(2)?;
        let nonce = r.u64()?;
        let cookie = Cookie::read(&mut r)?;
        r.finish()?;
        Ok(Self { nonce, cookie })
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, CHALLENGE_LEN)?;
        put_header(&mut w, MessageType::Challenge);
        w.zeros(2);
        w.u64(self.nonce);
        self.cookie.write(&mut w);
        Ok(w.finish())
    }
}

/// SUBSCRIBE: a client asks for a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// The stream.
    pub stream: StreamId,
    /// Clubs wanted: bit c for club c; `u64::MAX` for all.
    pub clubs: u64,
    /// Resume from this sequence number (a repair of a broken
    /// subscription); `None` starts at the newest keyframe.
    pub start_seq: Option<u64>,
    /// The CHALLENGE's cookie.
    pub cookie: Cookie,
    /// Access token; empty when none.
    pub token: &'a [u8],
}

const RESUME: u8 = 0x01;

impl<'a> Subscribe<'a> {
    /// Parses a SUBSCRIBE.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Subscribe)?;
        let flags = r.u8()?;
        if flags & !RESUME != 0 {
            return Err(DecodeError::Reserved);
        }
        r.reserved(1)?;
        let stream = StreamId(r.array()?);
        let clubs = r.u64()?;
        let start = r.u64()?;
        let cookie = Cookie::read(&mut r)?;
        let token_len = usize::from(r.u16()?);
        if token_len > TOKEN_MAX_LEN {
            return Err(DecodeError::Field("token_len"));
        }
        let token = r.take(token_len)?;
        r.finish()?;
        let start_seq = if flags & RESUME != 0 {
            Some(start)
        } else if start != 0 {
            return Err(DecodeError::Reserved);
        } else {
            None
        };
        Ok(Self {
            stream,
            clubs,
            start_seq,
            cookie,
            token,
        })
    }

    /// Bytes [`Subscribe::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        SUBSCRIBE_FIXED_LEN + self.token.len()
    }

    /// Writes the datagram into `out`, returning its length. A token
    /// longer than [`TOKEN_MAX_LEN`] is the caller's bug and is truncated.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let token = self.token.get(..TOKEN_MAX_LEN).unwrap_or(self.token);
        let mut w = Writer::new(out, SUBSCRIBE_FIXED_LEN + token.len())?;
        put_header(&mut w, MessageType::Subscribe);
        w.u8(if self.start_seq.is_some() { RESUME } else { 0 });
        w.zeros(1);
        w.put(self.stream.as_bytes());
        w.u64(self.clubs);
        w.u64(self.start_seq.unwrap_or(0));
        self.cookie.write(&mut w);
        w.u16(token.len() as u16);
        w.put(token);
        Ok(w.finish())
    }
}

/// ACCEPT: the server takes the subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    /// How often the subscriber must send KEEPALIVE, in milliseconds.
    pub keepalive_ms: u16,
    /// The stream.
    pub stream: StreamId,
    /// The session id the server drew for this subscription: every later
    /// session message either side sends carries it (SPEC §11.4).
    pub session: u64,
    /// The first sequence number the server will send.
    pub start_seq: u64,
    /// The address the server saw the SUBSCRIBE come from: the client's
    /// address as others on the server's side of any NAT see it (its
    /// reflexive address).
    pub observed: SocketAddr,
}

impl Accept {
    /// Parses an ACCEPT.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Accept)?;
        let keepalive_ms = r.u16()?;
        let stream = StreamId(r.array()?);
        let session = r.u64()?;
        let start_seq = r.u64()?;
        let observed = read_addr(&mut r)?;
        r.finish()?;
        if keepalive_ms == 0 {
            return Err(DecodeError::Field("keepalive_ms"));
        }
        Ok(Self {
            keepalive_ms,
            stream,
            session,
            start_seq,
            observed,
        })
    }

    /// Bytes [`Accept::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        ACCEPT_LEN
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, ACCEPT_LEN)?;
        put_header(&mut w, MessageType::Accept);
        w.u16(self.keepalive_ms);
        w.put(self.stream.as_bytes());
        w.u64(self.session);
        w.u64(self.start_seq);
        write_addr(&mut w, self.observed);
        Ok(w.finish())
    }
}

/// Why a server refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectReason {
    /// No common protocol version; `versions` lists the server's.
    UnsupportedVersion = 1,
    /// The server does not carry this stream.
    UnknownStream = 2,
    /// The cookie is forged, expired or for another address: start over
    /// with HELLO.
    BadCookie = 3,
    /// The server has its maximum of subscribers or streams.
    Full = 4,
    /// The server requires an access token and none was given.
    TokenRequired = 5,
    /// The token's signature or scope is wrong.
    TokenInvalid = 6,
    /// The token has expired.
    TokenExpired = 7,
    /// Too many handshakes from this address; retry later.
    RateLimited = 8,
    /// The server is shutting down.
    ShuttingDown = 9,
    /// A KEEPALIVE or NACK came from an address with no subscription:
    /// subscribe again.
    NotSubscribed = 10,
}

impl RejectReason {
    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::UnsupportedVersion,
            2 => Self::UnknownStream,
            3 => Self::BadCookie,
            4 => Self::Full,
            5 => Self::TokenRequired,
            6 => Self::TokenInvalid,
            7 => Self::TokenExpired,
            8 => Self::RateLimited,
            9 => Self::ShuttingDown,
            10 => Self::NotSubscribed,
            _ => return None,
        })
    }
}

/// REJECT: the server refuses, with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// Why.
    pub reason: RejectReason,
    /// Versions the server speaks.
    pub versions: u32,
    /// The stream concerned; all zero when the refusal is not about one.
    pub stream: StreamId,
}

impl Reject {
    /// Parses a REJECT.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Reject)?;
        let reason = RejectReason::from_byte(r.u8()?).ok_or(DecodeError::Field("reason"))?;
        r.reserved(1)?;
        let versions = r.u32()?;
        let stream = StreamId(r.array()?);
        r.finish()?;
        Ok(Self {
            reason,
            versions,
            stream,
        })
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, REJECT_LEN)?;
        put_header(&mut w, MessageType::Reject);
        w.u8(self.reason as u8);
        w.zeros(1);
        w.u32(self.versions);
        w.put(self.stream.as_bytes());
        Ok(w.finish())
    }
}
