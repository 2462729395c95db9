//! One MPEG-TS packet, read in place (ISO/IEC 13818-1, 2.4.3.2).

/// Length of an MPEG-TS packet.
pub const TS_PACKET_LEN: usize = 188;

/// The byte every MPEG-TS packet starts with.
pub const SYNC_BYTE: u8 = 0x47;

// Header fields: byte 1 and 2 hold the flags and the 13-bit PID, byte 3 the
// adaptation field control and continuity counter.
const TRANSPORT_ERROR: u8 = 0x80;
const PAYLOAD_UNIT_START: u8 = 0x40;
const PID_MASK: u16 = 0x1FFF;
const HAS_ADAPTATION_FIELD: u8 = 0x20;
const HAS_PAYLOAD: u8 = 0x10;
const CONTINUITY_MASK: u8 = 0x0F;
/// Bytes before the adaptation field's length byte.
const HEADER_LEN: usize = 4;
/// The adaptation field's length byte, then the field (flags first).
const ADAPTATION_LEN_AT: usize = HEADER_LEN;
const ADAPTATION_AT: usize = ADAPTATION_LEN_AT + 1;
/// In the adaptation field's flags byte.
const RANDOM_ACCESS: u8 = 0x40;
const HAS_PCR: u8 = 0x10;
/// The PCR follows the flags byte, when the flag says so.
pub(super) const PCR_AT: usize = ADAPTATION_AT + 1;
pub(super) const PCR_LEN: usize = 6;
/// The PCR's base counts 90 kHz ticks, its extension 27 MHz ticks below
/// this.
const PCR_EXTENSION_TICKS: u64 = 300;

/// Why bytes are not a transport packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The slice is not exactly [`TS_PACKET_LEN`] bytes.
    #[error("a transport packet is 188 bytes, got {len}")]
    Length {
        /// The slice's length.
        len: usize,
    },
    /// The first byte is not [`SYNC_BYTE`].
    #[error("a transport packet starts with sync byte 0x47, got {found:#04x}")]
    SyncByte {
        /// The first byte.
        found: u8,
    },
}

/// A transport packet whose length and sync byte have been checked; no
/// accessor can panic, and a malformed adaptation field reads as absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    bytes: &'a [u8; TS_PACKET_LEN],
}

impl<'a> Packet<'a> {
    /// Views `bytes` as a packet.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, PacketError> {
        let bytes: &[u8; TS_PACKET_LEN] = bytes
            .try_into()
            .map_err(|_| PacketError::Length { len: bytes.len() })?;
        match bytes[0] {
            SYNC_BYTE => Ok(Self { bytes }),
            found => Err(PacketError::SyncByte { found }),
        }
    }

    /// The packet's 188 bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The transport_error_indicator: the link below marked the packet
    /// corrupt.
    pub fn transport_error(&self) -> bool {
        self.bytes[1] & TRANSPORT_ERROR != 0
    }

    /// The payload_unit_start_indicator: a PES packet or a PSI section
    /// starts in this packet.
    pub fn payload_unit_start(&self) -> bool {
        self.bytes[1] & PAYLOAD_UNIT_START != 0
    }

    /// The 13-bit packet identifier.
    pub fn pid(&self) -> u16 {
        u16::from_be_bytes([self.bytes[1], self.bytes[2]]) & PID_MASK
    }

    /// The 4-bit continuity counter.
    pub fn continuity_counter(&self) -> u8 {
        self.bytes[3] & CONTINUITY_MASK
    }

    /// The adaptation field after its length byte, flags first; `None` if
    /// the packet has none or its length does not fit the packet (at most
    /// 183 bytes, 182 when a payload follows).
    pub fn adaptation_field(&self) -> Option<&'a [u8]> {
        let control = self.bytes[3];
        if control & HAS_ADAPTATION_FIELD == 0 {
            return None;
        }
        let len = usize::from(self.bytes[ADAPTATION_LEN_AT]);
        let room = TS_PACKET_LEN - ADAPTATION_AT - usize::from(control & HAS_PAYLOAD != 0);
        if len > room {
            return None;
        }
        self.bytes.get(ADAPTATION_AT..ADAPTATION_AT + len)
    }

    /// Whether the adaptation field's random_access_indicator is set: the
    /// next PES packet of this PID starts a point where decoding can begin
    /// (for video, a keyframe).
    pub fn random_access_indicator(&self) -> bool {
        self.adaptation_field()
            .and_then(<[u8]>::first)
            .is_some_and(|flags| flags & RANDOM_ACCESS != 0)
    }

    /// The program clock reference (2.4.3.5) in 27 MHz ticks, base × 300
    /// plus extension; `None` if the adaptation field is absent, malformed,
    /// too short for one, or does not flag one.
    pub fn pcr(&self) -> Option<u64> {
        let field = self.adaptation_field()?;
        if field.first()? & HAS_PCR == 0 {
            return None;
        }
        let (base, extension) = pcr_parts(field.get(1..)?.first_chunk()?);
        Some(base * PCR_EXTENSION_TICKS + extension)
    }

    /// The payload after the header and any adaptation field; `None` if the
    /// packet carries none or its adaptation field is malformed.
    pub fn payload(&self) -> Option<&'a [u8]> {
        let control = self.bytes[3];
        if control & HAS_PAYLOAD == 0 {
            return None;
        }
        let start = if control & HAS_ADAPTATION_FIELD == 0 {
            HEADER_LEN
        } else {
            ADAPTATION_AT + self.adaptation_field()?.len()
        };
        self.bytes.get(start..)
    }
}

/// The four header bytes of a transport packet, for writing one: the
/// counterpart of [`Packet`]'s accessors. Not scrambled, no error or
/// priority flag, and always a payload (after the adaptation field, if
/// any).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// A PES packet or PSI section starts in this packet.
    pub payload_unit_start: bool,
    /// The packet identifier; bits above the 13th are dropped.
    pub pid: u16,
    /// An adaptation field follows the header; the caller writes it.
    pub adaptation_field: bool,
    /// The continuity counter; bits above the 4th are dropped.
    pub continuity_counter: u8,
}

impl Header {
    /// Bytes the header takes.
    pub const LEN: usize = HEADER_LEN;

    /// The header's bytes, sync byte first.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let [pid_hi, pid_lo] = (self.pid & PID_MASK).to_be_bytes();
        let start = if self.payload_unit_start {
            PAYLOAD_UNIT_START
        } else {
            0
        };
        let adaptation = if self.adaptation_field {
            HAS_ADAPTATION_FIELD
        } else {
            0
        };
        let continuity = self.continuity_counter & CONTINUITY_MASK;
        [
            SYNC_BYTE,
            start | pid_hi,
            pid_lo,
            adaptation | HAS_PAYLOAD | continuity,
        ]
    }
}

/// A PCR field as it stands in an adaptation field (2.4.3.5): `base`, in
/// 90 kHz ticks, and `extension`, in 27 MHz ticks below 300, then the six
/// reserved bits; bits above the 33rd of the base and the 9th of the
/// extension are dropped.
pub fn pcr_field(base: u64, extension: u16) -> [u8; 6] {
    let base = base & ((1 << 33) - 1);
    let [ext_hi, ext_lo] = (extension & 0x01FF).to_be_bytes();
    [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base & 1) << 7) as u8 | 0x7E | ext_hi,
        ext_lo,
    ]
}

/// The base (33 bits, 90 kHz) and the extension (9 bits, 27 MHz) of a PCR
/// field; the six reserved bits between them are not read.
pub(super) fn pcr_parts(field: &[u8; PCR_LEN]) -> (u64, u64) {
    let [b0, b1, b2, b3, b4, b5] = field.map(u64::from);
    let base = b0 << 25 | b1 << 17 | b2 << 9 | b3 << 1 | b4 >> 7;
    (base, (b4 & 1) << 8 | b5)
}

/// Whether `packet`, one 188-byte transport packet, has its
/// random_access_indicator set; false for anything that is not a packet.
pub fn random_access_indicator(packet: &[u8]) -> bool {
    Packet::new_checked(packet).is_ok_and(|packet| packet.random_access_indicator())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::packet;
    use super::*;

    #[test]
    fn header_fields() {
        let bytes = packet(0x1ABC, 9, false);
        let p = Packet::new_checked(&bytes).expect("a built packet");
        assert_eq!(p.pid(), 0x1ABC);
        assert_eq!(p.continuity_counter(), 9);
        assert!(!p.transport_error());
        assert!(p.payload_unit_start());
        assert_eq!(p.adaptation_field(), None);
        assert_eq!(p.payload().map(<[u8]>::len), Some(184));
        assert_eq!(p.as_bytes(), &bytes[..]);
    }

    #[test]
    fn written_header_reads_back() {
        let header = Header {
            payload_unit_start: true,
            pid: 0x1ABC,
            adaptation_field: true,
            continuity_counter: 0x1B,
        };
        let mut bytes = [0u8; TS_PACKET_LEN];
        bytes[..Header::LEN].copy_from_slice(&header.to_bytes());
        bytes[4] = 1;
        bytes[5] = RANDOM_ACCESS;
        let p = Packet::new_checked(&bytes).expect("a written header");
        assert_eq!(p.pid(), 0x1ABC);
        assert_eq!(p.continuity_counter(), 0xB);
        assert!(p.payload_unit_start());
        assert!(p.random_access_indicator());
        assert_eq!(p.payload().map(<[u8]>::len), Some(182));

        let plain = Header {
            pid: 0xFFFF,
            ..Header::default()
        };
        let bytes = [&plain.to_bytes()[..], &[0; 184]].concat();
        let p = Packet::new_checked(&bytes).expect("a written header");
        assert_eq!(p.pid(), 0x1FFF);
        assert!(!p.payload_unit_start());
        assert_eq!(p.adaptation_field(), None);
        assert_eq!(p.payload().map(<[u8]>::len), Some(184));
    }

    #[test]
    fn pcr_field_layout() {
        // Base 2^32 + 1, extension 299: the base's low bit tops byte 4.
        assert_eq!(
            pcr_field((1 << 32) | 1, 299),
            [0x80, 0, 0, 0, 0x80 | 0x7E | 1, 0x2B]
        );
        assert_eq!(pcr_field(1 << 33, 512), [0, 0, 0, 0, 0x7E, 0]);
    }

    #[test]
    fn written_pcr_reads_back() {
        let mut bytes = packet(0x100, 0, true);
        assert_eq!(Packet::new_checked(&bytes).expect("built").pcr(), None);
        bytes[4] = 7;
        bytes[5] = RANDOM_ACCESS | HAS_PCR;
        for (base, extension) in [(0, 0), (1, 299), ((1 << 33) - 1, 299), (0x1_2345_6789, 7)] {
            bytes[PCR_AT..PCR_AT + PCR_LEN].copy_from_slice(&pcr_field(base, extension));
            let p = Packet::new_checked(&bytes).expect("built");
            assert_eq!(p.pcr(), Some(base * 300 + u64::from(extension)));
            assert!(p.random_access_indicator());
        }
        // The flag in a field too short to hold a PCR.
        bytes[4] = 6;
        assert_eq!(Packet::new_checked(&bytes).expect("built").pcr(), None);
    }

    #[test]
    fn not_a_packet() {
        let bytes = packet(0x100, 0, true);
        assert_eq!(
            Packet::new_checked(&bytes[..187]),
            Err(PacketError::Length { len: 187 })
        );
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(
            Packet::new_checked(&longer),
            Err(PacketError::Length { len: 189 })
        );
        let mut unsynced = bytes;
        unsynced[0] = 0x48;
        assert_eq!(
            Packet::new_checked(&unsynced),
            Err(PacketError::SyncByte { found: 0x48 })
        );
        assert!(!random_access_indicator(&bytes[..187]));
        assert!(!random_access_indicator(&unsynced));
        assert!(!random_access_indicator(&[]));
    }

    #[test]
    fn random_access_indicator_needs_a_sound_adaptation_field() {
        let key = packet(0x100, 0, true);
        assert!(random_access_indicator(&key));
        let p = Packet::new_checked(&key).expect("a built packet");
        let field = p.adaptation_field().expect("an adaptation field");
        assert_eq!(
            p.payload().map(<[u8]>::len),
            Some(TS_PACKET_LEN - ADAPTATION_AT - field.len())
        );

        assert!(!random_access_indicator(&packet(0x100, 0, false)));

        // Adaptation field only (control 2), 183 bytes of it.
        let mut only = key;
        only[3] = (only[3] & !HAS_PAYLOAD) | HAS_ADAPTATION_FIELD;
        only[4] = 183;
        assert!(random_access_indicator(&only));
        let p = Packet::new_checked(&only).expect("a built packet");
        assert_eq!(p.payload(), None);

        // Length byte zero: no flags byte at all.
        let mut empty = key;
        empty[4] = 0;
        assert!(!random_access_indicator(&empty));

        // Length larger than the packet allows, with and without payload.
        let mut long = key;
        long[4] = 183;
        assert!(!random_access_indicator(&long));
        assert_eq!(Packet::new_checked(&long).expect("synced").payload(), None);
        only[4] = 184;
        assert!(!random_access_indicator(&only));

        // The flag bit without an adaptation field is payload, not a flag.
        let mut no_field = key;
        no_field[3] &= !HAS_ADAPTATION_FIELD;
        assert!(!random_access_indicator(&no_field));

        // Other adaptation flags alone are not random access.
        let mut other = key;
        other[5] = 0x80 | 0x10;
        assert!(!random_access_indicator(&other));
    }
}
