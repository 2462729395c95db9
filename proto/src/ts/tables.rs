//! Writing a synthetic stream's program tables: a PAT or a PMT as one
//! section in one packet (ISO/IEC 13818-1, 2.4.4), the shape `psi.rs`
//! reads back.
//!
//! For test fixtures and fuzz seeds, which each used to carry their own
//! copy. Written in place in the packet: a section that does not fit one
//! packet is refused, not split.

use super::packet::{Header, TS_PACKET_LEN};
use super::psi::{
    CRC_LEN, CURRENT_NEXT, PAT_PID, PAT_TABLE_ID, PMT_TABLE_ID, SECTION_SYNTAX, crc32_mpeg2,
};

/// section_syntax_indicator, the zero bit and two reserved bits, above the
/// section_length.
const SECTION_FLAGS: u16 = SECTION_SYNTAX | 0x3000;
/// Bytes from a section's start to the end of its section_length.
const LENGTH_END: usize = 3;
/// The reserved bits above a PID or a descriptor loop length.
const RESERVED_PID: u16 = 0xE000;
const RESERVED_LENGTH: u16 = 0xF000;
/// Two reserved bits, version 0, current.
const VERSION_0_CURRENT: u8 = 0xC0 | CURRENT_NEXT;
/// What fills a packet after its section.
const STUFFING: u8 = 0xFF;

/// A packet on [`PAT_PID`] carrying a PAT: the transport stream
/// `transport_stream_id` holds `programs`, each `(program_number,
/// pmt_pid)`. `None` if they do not fit one packet (over 42).
pub fn pat_packet(
    continuity_counter: u8,
    transport_stream_id: u16,
    programs: &[(u16, u16)],
) -> Option<[u8; TS_PACKET_LEN]> {
    let mut packet = SectionPacket::start(
        PAT_PID,
        continuity_counter,
        PAT_TABLE_ID,
        transport_stream_id,
    );
    for &(number, pmt_pid) in programs {
        packet.put(&number.to_be_bytes())?;
        packet.put(&(RESERVED_PID | pmt_pid).to_be_bytes())?;
    }
    packet.finish()
}

/// A packet on `pid` carrying a PMT: program `program` has its PCR on
/// `pcr_pid` and `streams`, each `(stream_type, elementary_pid)`, none with
/// descriptors. `None` if they do not fit one packet (over 33).
pub fn pmt_packet(
    pid: u16,
    continuity_counter: u8,
    program: u16,
    pcr_pid: u16,
    streams: &[(u8, u16)],
) -> Option<[u8; TS_PACKET_LEN]> {
    let mut packet = SectionPacket::start(pid, continuity_counter, PMT_TABLE_ID, program);
    packet.put(&(RESERVED_PID | pcr_pid).to_be_bytes())?;
    packet.put(&RESERVED_LENGTH.to_be_bytes())?;
    for &(stream_type, pid) in streams {
        packet.put(&[stream_type])?;
        packet.put(&(RESERVED_PID | pid).to_be_bytes())?;
        packet.put(&RESERVED_LENGTH.to_be_bytes())?;
    }
    packet.finish()
}

/// A packet being filled with one long-form section: version 0, current,
/// the only section of its table.
struct SectionPacket {
    bytes: [u8; TS_PACKET_LEN],
    /// Bytes written.
    len: usize,
}

impl SectionPacket {
    /// Where the section starts: after the header and a zero
    /// pointer_field.
    const SECTION_AT: usize = Header::LEN + 1;

    fn start(pid: u16, continuity_counter: u8, table_id: u8, id: u16) -> Self {
        let header = Header {
            payload_unit_start: true,
            pid,
            adaptation_field: false,
            continuity_counter,
        };
        let mut bytes = [STUFFING; TS_PACKET_LEN];
        bytes[..Header::LEN].copy_from_slice(&header.to_bytes());
        bytes[Header::LEN] = 0;
        let at = Self::SECTION_AT;
        bytes[at] = table_id;
        // The section_length is written by `finish`.
        bytes[at + 1..at + LENGTH_END].copy_from_slice(&SECTION_FLAGS.to_be_bytes());
        bytes[at + LENGTH_END..at + LENGTH_END + 2].copy_from_slice(&id.to_be_bytes());
        // Section 0 of 0.
        bytes[at + LENGTH_END + 2..at + LENGTH_END + 5].copy_from_slice(&[VERSION_0_CURRENT, 0, 0]);
        Self {
            bytes,
            len: at + LENGTH_END + 5,
        }
    }

    /// Appends `data` to the section; `None` if the packet is full.
    fn put(&mut self, data: &[u8]) -> Option<()> {
        self.bytes
            .get_mut(self.len..self.len + data.len())?
            .copy_from_slice(data);
        self.len += data.len();
        Some(())
    }

    /// Writes the section_length and appends the CRC.
    fn finish(mut self) -> Option<[u8; TS_PACKET_LEN]> {
        let at = Self::SECTION_AT;
        // Below a packet's length, so it fits the 12-bit field.
        let length = (self.len + CRC_LEN - at - LENGTH_END) as u16;
        self.bytes[at + 1..at + LENGTH_END]
            .copy_from_slice(&(SECTION_FLAGS | length).to_be_bytes());
        let crc = crc32_mpeg2(&self.bytes[at..self.len]);
        self.put(&crc.to_be_bytes())?;
        Some(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::Packet;
    use super::super::psi::{STREAM_TYPE_AAC as AAC, STREAM_TYPE_H264 as H264};
    use super::*;

    /// The section in a written packet, CRC included.
    fn section(bytes: &[u8]) -> &[u8] {
        let at = SectionPacket::SECTION_AT;
        let length = u16::from_be_bytes([bytes[at + 1], bytes[at + 2]]) & 0x0FFF;
        &bytes[at..at + LENGTH_END + usize::from(length)]
    }

    #[test]
    fn pmt_layout() {
        let bytes =
            pmt_packet(0x1000, 3, 7, 0x100, &[(H264, 0x100), (AAC, 0x101)]).expect("a short table");
        let packet = Packet::new_checked(&bytes).expect("a written packet");
        assert_eq!(packet.pid(), 0x1000);
        assert_eq!(packet.continuity_counter(), 3);
        assert!(packet.payload_unit_start());
        let section = section(&bytes);
        assert_eq!(crc32_mpeg2(section), 0);
        assert_eq!(
            section[..section.len() - CRC_LEN],
            [
                0x02, 0xB0, 0x17, 0, 7, 0xC1, 0, 0, // header
                0xE1, 0x00, 0xF0, 0x00, // PCR PID, program info length
                0x1B, 0xE1, 0x00, 0xF0, 0x00, // H.264 on 0x100
                0x0F, 0xE1, 0x01, 0xF0, 0x00, // AAC on 0x101
            ]
        );
        assert!(bytes[5 + section.len()..].iter().all(|&b| b == STUFFING));
    }

    #[test]
    fn pat_layout() {
        let bytes = pat_packet(15, 1, &[(1, 0x1000)]).expect("a short table");
        assert_eq!(bytes[..5], [0x47, 0x40, 0x00, 0x1F, 0]);
        let section = section(&bytes);
        assert_eq!(crc32_mpeg2(section), 0);
        assert_eq!(
            section[..section.len() - CRC_LEN],
            [0x00, 0xB0, 0x0D, 0, 1, 0xC1, 0, 0, 0, 1, 0xF0, 0x00]
        );
    }

    #[test]
    fn tables_too_long_for_a_packet_are_refused() {
        let programs: Vec<(u16, u16)> = (1..=43).map(|n| (n, 0x1000 + n)).collect();
        assert!(pat_packet(0, 1, &programs[..42]).is_some());
        assert_eq!(pat_packet(0, 1, &programs), None);
        let streams: Vec<(u8, u16)> = (0..34).map(|n| (H264, 0x100 + n)).collect();
        assert!(pmt_packet(0x1000, 0, 1, 0x100, &streams[..33]).is_some());
        assert_eq!(pmt_packet(0x1000, 0, 1, 0x100, &streams), None);
    }
}
