//! Wire format v1: every datagram shoal sends. `proto/SPEC.md` is the
//! normative text; this module is its implementation.
//!
//! Each message type has a representation (`Repr`-style struct) with `parse`
//! and `emit`. The hot-path types (DATA, PARITY, MANIFEST) also have checked
//! views ([`DataView`], [`ParityView`], [`ManifestView`]): after
//! `new_checked` succeeds no accessor can panic, and nothing is copied.
//!
//! Every datagram starts with the same two bytes:
//!
//! ```text
//!  0       1
//! +-------+-------+
//! |version| type  |  ...
//! +-------+-------+
//! ```
//!
//! Integers are big-endian. Reserved fields and flag bits are sent as zero
//! and a datagram with a non-zero reserved field is refused.

mod about;
mod control;
pub(crate) mod cursor;
mod data;
mod descriptor;
mod handshake;
mod manifest;
mod parity;
mod stream;
mod swarm;

pub use about::{About, PAGE_MAX_LEN, QUERY_LEN, Query, is_valid_page};
pub use control::{
    Keepalive, Leave, LeaveReason, MAX_NACK_ENTRIES, MAX_PEERS, Nack, NackEntry, NackKind,
    PeerAddr, Peers,
};
pub use cursor::BufferTooSmall;
pub(crate) use data::StoredData;
pub use data::{DATA_HEADER_LEN, Data, DataFlags, DataView};
pub use descriptor::{Codec, DESCRIPTOR_LEN, Descriptor, MAX_CLUBS};
pub use handshake::{
    Accept, CHALLENGE_LEN, Challenge, Cookie, HELLO_MIN_LEN, Hello, REJECT_LEN, Reject,
    RejectReason, Subscribe, TOKEN_MAX_LEN,
};
pub use manifest::{HASH_LEN, MANIFEST_HEADER_LEN, Manifest, ManifestView, SIGNATURE_LEN};
pub use parity::{PARITY_HEADER_LEN, Parity, ParityView};
pub use stream::StreamHeader;
pub use swarm::{HAVE_LEN, Have, INTRODUCE_LEN, Introduce, MEMBER_LEN, Member, PUNCH_LEN, Punch};

use cursor::Reader;

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;

/// Bitmask of supported versions as sent in HELLO and REJECT: bit `v - 1`
/// is set when version `v` is supported.
pub const SUPPORTED_VERSIONS: u32 = 1 << (VERSION - 1);

/// Largest datagram a v1 node sends: fits one IPv6 packet on a 1500-byte
/// MTU path (1500 - 40 IPv6 - 8 UDP).
pub const MAX_DATAGRAM_LEN: usize = 1452;

/// Largest chunk payload: the PARITY datagram of a block of such chunks is
/// 1445 bytes, within [`MAX_DATAGRAM_LEN`].
pub const MAX_CHUNK_SIZE: usize = 1380;

/// Default chunk payload: 7 MPEG-TS packets. A DATA datagram is then 1377
/// bytes, within 1472 (IPv4) and 1452 (IPv6).
pub const DEFAULT_CHUNK_SIZE: usize = 1316;

/// The datagram types of v1, from byte 1 of every datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// A chunk of the stream.
    Data = 0x01,
    /// A Reed-Solomon repair symbol for one block.
    Parity = 0x02,
    /// The signed list of a block's chunk hashes.
    Manifest = 0x03,
    /// The signed stream parameters.
    Descriptor = 0x04,
    /// A client opens a handshake.
    Hello = 0x10,
    /// The server's stateless cookie.
    Challenge = 0x11,
    /// A client asks for a stream.
    Subscribe = 0x12,
    /// The server accepts a subscription.
    Accept = 0x13,
    /// The server refuses a request, with a reason.
    Reject = 0x14,
    /// A subscriber is alive, with its receiver report.
    Keepalive = 0x15,
    /// A subscriber asks for lost chunks or manifests.
    Nack = 0x16,
    /// Either side ends a subscription.
    Leave = 0x17,
    /// Peer exchange for one club.
    Peers = 0x18,
    /// Chunks a subscriber already holds.
    Have = 0x19,
    /// A peer's club membership.
    Member = 0x1a,
    /// Hole-punching introduction.
    Introduce = 0x1b,
    /// Opens a NAT mapping.
    Punch = 0x1c,
    /// What does this server offer?
    Query = 0x1d,
    /// The server's answer to a QUERY.
    About = 0x1e,
}

impl MessageType {
    /// The type for a type byte, if v1 defines one.
    pub const fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => Self::Data,
            0x02 => Self::Parity,
            0x03 => Self::Manifest,
            0x04 => Self::Descriptor,
            0x10 => Self::Hello,
            0x11 => Self::Challenge,
            0x12 => Self::Subscribe,
            0x13 => Self::Accept,
            0x14 => Self::Reject,
            0x15 => Self::Keepalive,
            0x16 => Self::Nack,
            0x17 => Self::Leave,
            0x18 => Self::Peers,
            0x19 => Self::Have,
            0x1a => Self::Member,
            0x1b => Self::Introduce,
            0x1c => Self::Punch,
            0x1d => Self::Query,
            0x1e => Self::About,
            _ => return None,
        })
    }
}

/// Why a datagram could not be decoded. Each is counted by the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its fields require.
    #[error("datagram truncated")]
    Truncated,
    /// Longer than its fields account for.
    #[error("datagram has trailing bytes")]
    TrailingBytes,
    /// Longer than any v1 datagram may be.
    #[error("datagram longer than {MAX_DATAGRAM_LEN} bytes")]
    Oversized,
    /// The version byte names a version this node does not speak.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The type byte names no v1 datagram.
    #[error("unknown datagram type {0:#04x}")]
    UnknownType(u8),
    /// A reserved field or flag bit is not zero.
    #[error("reserved field is not zero")]
    Reserved,
    /// A field is outside its allowed range; the name says which.
    #[error("field `{0}` out of range")]
    Field(&'static str),
}

/// Reads and checks the common header: version and type. Returns the type.
pub fn peek_type(bytes: &[u8]) -> Result<MessageType, DecodeError> {
    if bytes.len() > MAX_DATAGRAM_LEN {
        return Err(DecodeError::Oversized);
    }
    let (&version, rest) = bytes.split_first().ok_or(DecodeError::Truncated)?;
    let &ty = rest.first().ok_or(DecodeError::Truncated)?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    MessageType::from_byte(ty).ok_or(DecodeError::UnknownType(ty))
}

/// Any v1 datagram, parsed. Payloads borrow from the input.
///
/// NACK and PEERS carry fixed-capacity arrays so that parsing never
/// allocates; the enum is large for that reason and lives on the stack.
#[expect(
    clippy::large_enum_variant,
    reason = "no allocation per parsed datagram"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// DATA.
    Data(Data<'a>),
    /// PARITY.
    Parity(Parity<'a>),
    /// MANIFEST.
    Manifest(Manifest<'a>),
    /// DESCRIPTOR.
    Descriptor(Descriptor),
    /// HELLO.
    Hello(Hello),
    /// CHALLENGE.
    Challenge(Challenge),
    /// SUBSCRIBE.
    Subscribe(Subscribe<'a>),
    /// ACCEPT.
    Accept(Accept),
    /// REJECT.
    Reject(Reject),
    /// KEEPALIVE.
    Keepalive(Keepalive),
    /// NACK.
    Nack(Nack),
    /// LEAVE.
    Leave(Leave),
    /// PEERS.
    Peers(Peers),
    /// HAVE.
    Have(Have),
    /// MEMBER.
    Member(Member),
    /// INTRODUCE.
    Introduce(Introduce),
    /// PUNCH.
    Punch(Punch),
    /// QUERY.
    Query(Query),
    /// ABOUT.
    About(About<'a>),
}

impl<'a> Message<'a> {
    /// Parses any v1 datagram.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(match peek_type(bytes)? {
            MessageType::Data => Self::Data(Data::parse(bytes)?),
            MessageType::Parity => Self::Parity(Parity::parse(bytes)?),
            MessageType::Manifest => Self::Manifest(Manifest::parse(bytes)?),
            MessageType::Descriptor => Self::Descriptor(Descriptor::parse(bytes)?),
            MessageType::Hello => Self::Hello(Hello::parse(bytes)?),
            MessageType::Challenge => Self::Challenge(Challenge::parse(bytes)?),
            MessageType::Subscribe => Self::Subscribe(Subscribe::parse(bytes)?),
            MessageType::Accept => Self::Accept(Accept::parse(bytes)?),
            MessageType::Reject => Self::Reject(Reject::parse(bytes)?),
            MessageType::Keepalive => Self::Keepalive(Keepalive::parse(bytes)?),
            MessageType::Nack => Self::Nack(Nack::parse(bytes)?),
            MessageType::Leave => Self::Leave(Leave::parse(bytes)?),
            MessageType::Peers => Self::Peers(Peers::parse(bytes)?),
            MessageType::Have => Self::Have(Have::parse(bytes)?),
            MessageType::Member => Self::Member(Member::parse(bytes)?),
            MessageType::Introduce => Self::Introduce(Introduce::parse(bytes)?),
            MessageType::Punch => Self::Punch(Punch::parse(bytes)?),
            MessageType::Query => Self::Query(Query::parse(bytes)?),
            MessageType::About => Self::About(About::parse(bytes)?),
        })
    }

    /// Bytes [`Message::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::Data(m) => m.buffer_len(),
            Self::Parity(m) => m.buffer_len(),
            Self::Manifest(m) => m.buffer_len(),
            Self::Descriptor(_) => DESCRIPTOR_LEN,
            Self::Hello(m) => m.buffer_len(),
            Self::Challenge(_) => CHALLENGE_LEN,
            Self::Subscribe(m) => m.buffer_len(),
            Self::Accept(m) => m.buffer_len(),
            Self::Reject(_) => REJECT_LEN,
            Self::Keepalive(m) => m.buffer_len(),
            Self::Nack(m) => m.buffer_len(),
            Self::Leave(m) => m.buffer_len(),
            Self::Peers(m) => m.buffer_len(),
            Self::Have(m) => m.buffer_len(),
            Self::Member(m) => m.buffer_len(),
            Self::Introduce(m) => m.buffer_len(),
            Self::Punch(m) => m.buffer_len(),
            Self::Query(m) => m.buffer_len(),
            Self::About(m) => m.buffer_len(),
        }
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        match self {
            Self::Data(m) => m.emit(out),
            Self::Parity(m) => m.emit(out),
            Self::Manifest(m) => m.emit(out),
            Self::Descriptor(m) => m.emit(out),
            Self::Hello(m) => m.emit(out),
            Self::Challenge(m) => m.emit(out),
            Self::Subscribe(m) => m.emit(out),
            Self::Accept(m) => m.emit(out),
            Self::Reject(m) => m.emit(out),
            Self::Keepalive(m) => m.emit(out),
            Self::Nack(m) => m.emit(out),
            Self::Leave(m) => m.emit(out),
            Self::Peers(m) => m.emit(out),
            Self::Have(m) => m.emit(out),
            Self::Member(m) => m.emit(out),
            Self::Introduce(m) => m.emit(out),
            Self::Punch(m) => m.emit(out),
            Self::Query(m) => m.emit(out),
            Self::About(m) => m.emit(out),
        }
    }
}

/// Checks the two header bytes for an expected type and returns a reader
/// positioned after them.
pub(crate) fn header(bytes: &[u8], expected: MessageType) -> Result<Reader<'_>, DecodeError> {
    let ty = peek_type(bytes)?;
    if ty != expected {
        return Err(DecodeError::UnknownType(ty as u8));
    }
    let mut r = Reader::new(bytes);
    r.take(2)?;
    Ok(r)
}

/// Writes the two header bytes.
pub(crate) fn put_header(w: &mut cursor::Writer<'_>, ty: MessageType) {
    w.u8(VERSION);
    w.u8(ty as u8);
}

#[cfg(test)]
mod swarm_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod vector_tests;
