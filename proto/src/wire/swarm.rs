//! Swarm messages between ordinary peers and their relay: HAVE, MEMBER,
//! INTRODUCE, PUNCH (SPEC §6.10 to §6.13).
//!
//! HAVE, MEMBER and INTRODUCE run inside a subscription and carry its
//! session id (from ACCEPT) at offset 36, as the messages of `control`
//! do. PUNCH does not: it opens a NAT before any handshake.
//!
//! ```text
//! HAVE (60 bytes)                        MEMBER (56 bytes)
//!  0 version  1 0x19  2 reserved u16      0 version  1 0x1a  2 reserved u16
//!  4 stream id (32)                       4 stream id (32)
//! 36 session u64                         36 session u64
//! 44 base u64                            44 clubs u64 (member of)
//! 52 mask u64 (bit i: holds base + i)    52 upload_kbps u32
//!
//! INTRODUCE (63 bytes)                   PUNCH (55 bytes)
//!  0 version  1 0x1b  2 reserved u16      0 version  1 0x1c  2 reserved u16
//!  4 stream id (32)                       4 stream id (32)
//! 36 session u64                         36 seen as: family u8, address 16, port u16
//! 44 family u8, address 16, port u16
//! ```

use std::net::{IpAddr, Ipv4Addr};

use super::control::{PeerAddr, read_addr, write_addr};
use super::cursor::{BufferTooSmall, Writer};
use super::{DecodeError, MessageType, header, put_header};
use crate::StreamId;

/// Bytes in a HAVE.
pub const HAVE_LEN: usize = 60;
/// Bytes in a MEMBER.
pub const MEMBER_LEN: usize = 56;
/// Bytes in an INTRODUCE.
pub const INTRODUCE_LEN: usize = 63;
/// Bytes in a PUNCH.
pub const PUNCH_LEN: usize = 55;

/// A subscriber tells a server which recent chunks it already holds, so
/// that the server does not push them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Have {
    /// The stream.
    pub stream: StreamId,
    /// The subscription's session id, from ACCEPT.
    pub session: u64,
    /// Sequence number of bit 0.
    pub base: u64,
    /// Bit `i` set: the sender holds chunk `base + i`.
    pub mask: u64,
}

impl Have {
    /// Parses a HAVE.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Have)?;
        r.reserved(2)?;
        let out = Self {
            stream: StreamId(r.array()?),
            session: r.u64()?,
            base: r.u64()?,
            mask: r.u64()?,
        };
        r.finish()?;
        Ok(out)
    }

    /// Whether it says the sender holds `seq`.
    pub fn holds(&self, seq: u64) -> bool {
        seq.checked_sub(self.base)
            .and_then(|i| self.mask.checked_shr(u32::try_from(i).ok()?))
            .is_some_and(|m| m & 1 == 1)
    }

    /// Bytes [`Have::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HAVE_LEN
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, HAVE_LEN)?;
        put_header(&mut w, MessageType::Have);
        w.zeros(2);
        w.put(self.stream.as_bytes());
        w.u64(self.session);
        w.u64(self.base);
        w.u64(self.mask);
        Ok(w.finish())
    }
}

/// An ordinary peer tells its relay which clubs it is a member of and how
/// much it can upload, so that the relay can hand it out in PEERS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The stream.
    pub stream: StreamId,
    /// The subscription's session id, from ACCEPT.
    pub session: u64,
    /// Club mask of the clubs it forwards (0: a pure viewer).
    pub clubs: u64,
    /// Upload capacity offered to the swarm, in kbit/s.
    pub upload_kbps: u32,
}

impl Member {
    /// Parses a MEMBER.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Member)?;
        r.reserved(2)?;
        let out = Self {
            stream: StreamId(r.array()?),
            session: r.u64()?,
            clubs: r.u64()?,
            upload_kbps: r.u32()?,
        };
        r.finish()?;
        Ok(out)
    }

    /// Bytes [`Member::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        MEMBER_LEN
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, MEMBER_LEN)?;
        put_header(&mut w, MessageType::Member);
        w.zeros(2);
        w.put(self.stream.as_bytes());
        w.u64(self.session);
        w.u64(self.clubs);
        w.u32(self.upload_kbps);
        Ok(w.finish())
    }
}

/// Hole punching. From a subscriber to its relay: "introduce me to
/// `addr`". From the relay to the subscriber at `addr`: "this address
/// wants to reach you: send it a PUNCH".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Introduce {
    /// The stream.
    pub stream: StreamId,
    /// The subscription's session id, from ACCEPT.
    pub session: u64,
    /// The other peer.
    pub addr: PeerAddr,
}

impl Introduce {
    /// Parses an INTRODUCE.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Introduce)?;
        r.reserved(2)?;
        let stream = StreamId(r.array()?);
        let session = r.u64()?;
        let addr = read_addr(&mut r)?;
        r.finish()?;
        Ok(Self {
            stream,
            session,
            addr,
        })
    }

    /// Bytes [`Introduce::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        INTRODUCE_LEN
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, INTRODUCE_LEN)?;
        put_header(&mut w, MessageType::Introduce);
        w.zeros(2);
        w.put(self.stream.as_bytes());
        w.u64(self.session);
        write_addr(&mut w, self.addr);
        Ok(w.finish())
    }
}

/// Opens the sender's NAT toward the receiver, and says who sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Punch {
    /// The stream.
    pub stream: StreamId,
    /// The sender's address as its relay sees it (ACCEPT's `observed`):
    /// the address the relay names it by to other peers, so that a PUNCH
    /// arriving from another port (a NAT that maps the sender anew) can
    /// be told apart from another host's behind the same IP.
    /// [`Punch::UNKNOWN`] if the sender does not know it yet.
    pub seen_as: PeerAddr,
}

impl Punch {
    /// [`Punch::seen_as`] of a sender that does not know its address.
    pub const UNKNOWN: PeerAddr = PeerAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

    /// Parses a PUNCH.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Punch)?;
        r.reserved(2)?;
        let stream = StreamId(r.array()?);
        let seen_as = read_addr(&mut r)?;
        r.finish()?;
        Ok(Self { stream, seen_as })
    }

    /// Bytes [`Punch::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        PUNCH_LEN
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, PUNCH_LEN)?;
        put_header(&mut w, MessageType::Punch);
        w.zeros(2);
        w.put(self.stream.as_bytes());
        write_addr(&mut w, self.seen_as);
        Ok(w.finish())
    }
}
