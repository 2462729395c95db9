//! Session messages: KEEPALIVE, NACK, LEAVE, PEERS.
//!
//! Every one carries the subscription's session id (from ACCEPT) at
//! offset 36, right after the stream id: it binds the message to the
//! handshake, so that a spoofer who knows only the addresses cannot end,
//! keep or steer a session (SPEC §11.4, §14).
//!
//! ```text
//! KEEPALIVE (68 bytes)                   NACK (44 + 11 x count bytes)
//!  0 version  1 0x15  2 reserved u16      0 version  1 0x16  2 count  3 rsvd
//!  4 stream id (32)                       4 stream id (32)
//! 36 session u64                         36 session u64
//! 44 highest_seq u64                     44 count x { kind u8, start u64, len u16 }
//! 52 lost u32
//! 56 fec_repaired u32                    LEAVE (44 bytes)
//! 60 nack_repaired u32                    0 version  1 0x17  2 reason  3 rsvd
//! 64 latency_us u32                       4 stream id (32)
//!                                        36 session u64
//! PEERS (44 + 19 x count bytes)
//!  0 version  1 0x18  2 club  3 count (0 = a request)
//!  4 stream id (32)
//! 36 session u64
//! 44 count x { family u8 (4 or 6), address 16 bytes (IPv4 in the first 4), port u16 }
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::cursor::{BufferTooSmall, Reader, Writer};
use super::{DecodeError, MessageType, header, put_header};
use crate::StreamId;

const KEEPALIVE_LEN: usize = 68;
const NACK_FIXED_LEN: usize = 44;
const NACK_ENTRY_LEN: usize = 11;
const LEAVE_LEN: usize = 44;
const PEERS_FIXED_LEN: usize = 44;
const PEER_ENTRY_LEN: usize = 19;

/// A subscriber's keepalive with its receiver report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// The stream.
    pub stream: StreamId,
    /// The subscription's session id, from ACCEPT.
    pub session: u64,
    /// Highest sequence number received.
    pub highest_seq: u64,
    /// Chunks given up as lost (played out as a gap).
    pub lost: u32,
    /// Chunks rebuilt from parity.
    pub fec_repaired: u32,
    /// Chunks recovered by NACK.
    pub nack_repaired: u32,
    /// Recent median one-way latency in microseconds.
    pub latency_us: u32,
}

impl Keepalive {
    /// A KEEPALIVE for `stream` in session `session` with an empty report:
    /// nothing received, lost or repaired yet.
    pub const fn empty(stream: StreamId, session: u64) -> Self {
        Self {
            stream,
            session,
            highest_seq: 0,
            lost: 0,
            fec_repaired: 0,
            nack_repaired: 0,
            latency_us: 0,
        }
    }

    /// Parses a KEEPALIVE.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Keepalive)?;
        r.reserved(2)?;
        let out = Self {
            stream: StreamId(r.array()?),
            session: r.u64()?,
            highest_seq: r.u64()?,
            lost: r.u32()?,
            fec_repaired: r.u32()?,
            nack_repaired: r.u32()?,
            latency_us: r.u32()?,
        };
        r.finish()?;
        Ok(out)
    }

    /// Bytes [`Keepalive::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        KEEPALIVE_LEN
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, KEEPALIVE_LEN)?;
        put_header(&mut w, MessageType::Keepalive);
        w.zeros(2);
        w.put(self.stream.as_bytes());
        w.u64(self.session);
        w.u64(self.highest_seq);
        w.u32(self.lost);
        w.u32(self.fec_repaired);
        w.u32(self.nack_repaired);
        w.u32(self.latency_us);
        Ok(w.finish())
    }
}

/// What a NACK entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NackKind {
    /// DATA chunks `start .. start + len` by sequence number.
    Chunks = 0,
    /// MANIFESTs of blocks `start .. start + len` by block id.
    Manifests = 1,
}

/// One range in a NACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NackEntry {
    /// Chunks or manifests.
    pub kind: NackKind,
    /// First sequence number (chunks) or block id (manifests).
    pub start: u64,
    /// How many, at least 1.
    pub len: u16,
}

/// Largest number of ranges in one NACK.
pub const MAX_NACK_ENTRIES: usize = 32;

/// A subscriber asks for what it lost. Fixed capacity: no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack {
    /// The stream.
    pub stream: StreamId,
    /// The subscription's session id, from ACCEPT.
    pub session: u64,
    entries: [NackEntry; MAX_NACK_ENTRIES],
    count: u8,
}

impl Nack {
    /// An empty NACK for `stream` in session `session`.
    pub fn new(stream: StreamId, session: u64) -> Self {
        Self {
            stream,
            session,
            entries: [NackEntry {
                kind: NackKind::Chunks,
                start: 0,
                len: 1,
            }; MAX_NACK_ENTRIES],
            count: 0,
        }
    }

    /// Adds a range; false when the NACK is full or `len` is zero.
    pub fn push(&mut self, entry: NackEntry) -> bool {
        if entry.len == 0 {
            return false;
        }
        match self.entries.get_mut(usize::from(self.count)) {
            Some(slot) => {
                *slot = entry;
                self.count += 1;
                true
            }
            None => false,
        }
    }

    /// The ranges.
    pub fn entries(&self) -> &[NackEntry] {
        self.entries
            .get(..usize::from(self.count))
            .unwrap_or_default()
    }

    /// Parses a NACK.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Nack)?;
        let count = usize::from(r.u8()?);
        r.reserved(1)?;
        if count == 0 || count > MAX_NACK_ENTRIES {
            return Err(DecodeError::Field("count"));
        }
        let stream = StreamId(r.array()?);
        let mut nack = Self::new(stream, r.u64()?);
        for _ in 0..count {
            let kind = match r.u8()? {
                0 => NackKind::Chunks,
                1 => NackKind::Manifests,
                _ => return Err(DecodeError::Field("kind")),
            };
            let start = r.u64()?;
            let len = r.u16()?;
            if len == 0 {
                return Err(DecodeError::Field("len"));
            }
            nack.push(NackEntry { kind, start, len });
        }
        r.finish()?;
        Ok(nack)
    }

    /// Bytes [`Nack::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        NACK_FIXED_LEN + NACK_ENTRY_LEN * self.entries().len()
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, self.buffer_len())?;
        put_header(&mut w, MessageType::Nack);
        w.u8(self.count);
        w.zeros(1);
        w.put(self.stream.as_bytes());
        w.u64(self.session);
        for e in self.entries() {
            w.u8(e.kind as u8);
            w.u64(e.start);
            w.u16(e.len);
        }
        Ok(w.finish())
    }
}

/// Why a subscription ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LeaveReason {
    /// The subscriber is done.
    Done = 0,
    /// The server is shutting down: subscribe elsewhere.
    ShuttingDown = 1,
    /// The server stopped hearing keepalives.
    Expired = 2,
    /// The stream ended.
    EndOfStream = 3,
}

/// Either side ends a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leave {
    /// Why.
    pub reason: LeaveReason,
    /// The stream.
    pub stream: StreamId,
    /// The subscription's session id, from ACCEPT.
    pub session: u64,
}

impl Leave {
    /// Parses a LEAVE.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Leave)?;
        let reason = match r.u8()? {
            0 => LeaveReason::Done,
            1 => LeaveReason::ShuttingDown,
            2 => LeaveReason::Expired,
            3 => LeaveReason::EndOfStream,
            _ => return Err(DecodeError::Field("reason")),
        };
        r.reserved(1)?;
        let stream = StreamId(r.array()?);
        let session = r.u64()?;
        r.finish()?;
        Ok(Self {
            reason,
            stream,
            session,
        })
    }

    /// Bytes [`Leave::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        LEAVE_LEN
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, LEAVE_LEN)?;
        put_header(&mut w, MessageType::Leave);
        w.u8(self.reason as u8);
        w.zeros(1);
        w.put(self.stream.as_bytes());
        w.u64(self.session);
        Ok(w.finish())
    }
}

/// Largest number of addresses in one PEERS.
pub const MAX_PEERS: usize = 32;

/// One peer's address in PEERS.
pub type PeerAddr = SocketAddr;

/// Peer exchange for one club: a request (no addresses) or a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peers {
    /// The club.
    pub club: u8,
    /// The stream.
    pub stream: StreamId,
    /// The subscription's session id, from ACCEPT (the asker's in a
    /// request, the receiver's in an answer).
    pub session: u64,
    addrs: [PeerAddr; MAX_PEERS],
    count: u8,
}

impl Peers {
    /// An empty PEERS (a request) for `club` of `stream` in session
    /// `session`.
    pub fn new(stream: StreamId, session: u64, club: u8) -> Self {
        Self {
            club,
            stream,
            session,
            addrs: [SocketAddr::from(([0, 0, 0, 0], 0)); MAX_PEERS],
            count: 0,
        }
    }

    /// Adds an address; false when full.
    pub fn push(&mut self, addr: PeerAddr) -> bool {
        match self.addrs.get_mut(usize::from(self.count)) {
            Some(slot) => {
                *slot = addr;
                self.count += 1;
                true
            }
            None => false,
        }
    }

    /// The addresses; empty for a request.
    pub fn addrs(&self) -> &[PeerAddr] {
        self.addrs
            .get(..usize::from(self.count))
            .unwrap_or_default()
    }

    /// Parses a PEERS.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = header(bytes, MessageType::Peers)?;
        let club = r.u8()?;
        let count = usize::from(r.u8()?);
        if count > MAX_PEERS {
            return Err(DecodeError::Field("count"));
        }
        let stream = StreamId(r.array()?);
        let mut peers = Self::new(stream, r.u64()?, club);
        for _ in 0..count {
            peers.push(read_addr(&mut r)?);
        }
        r.finish()?;
        Ok(peers)
    }

    /// Bytes [`Peers::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        PEERS_FIXED_LEN + PEER_ENTRY_LEN * self.addrs().len()
    }

    /// Writes the datagram into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, self.buffer_len())?;
        put_header(&mut w, MessageType::Peers);
        w.u8(self.club);
        w.u8(self.count);
        w.put(self.stream.as_bytes());
        w.u64(self.session);
        for &addr in self.addrs() {
            write_addr(&mut w, addr);
        }
        Ok(w.finish())
    }
}

/// Writes one 19-byte address entry (family, address, port).
pub(super) fn write_addr(w: &mut Writer<'_>, addr: PeerAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            w.u8(4);
            w.put(&ip.octets());
            w.zeros(12);
        }
        IpAddr::V6(ip) => {
            w.u8(6);
            w.put(&ip.octets());
        }
    }
    w.u16(addr.port());
}

pub(super) fn read_addr(r: &mut Reader<'_>) -> Result<PeerAddr, DecodeError> {
    let family = r.u8()?;
    let raw: [u8; 16] = r.array()?;
    let port = r.u16()?;
    let ip = match family {
        4 => {
            let (v4, zero) = raw.split_at(4);
            if zero.iter().any(|&b| b != 0) {
                return Err(DecodeError::Reserved);
            }
            IpAddr::V4(Ipv4Addr::new(v4[0], v4[1], v4[2], v4[3]))
        }
        6 => IpAddr::V6(Ipv6Addr::from(raw)),
        _ => return Err(DecodeError::Field("family")),
    };
    Ok(SocketAddr::new(ip, port))
}
