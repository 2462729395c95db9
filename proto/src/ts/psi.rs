//! Which PIDs carry video, learned from the PAT and PMTs (ISO/IEC 13818-1,
//! 2.4.4).
//!
//! Muxers set the random_access_indicator on more than video keyframes:
//! FFmpeg, for one, sets it at every audio PES start, since every audio frame
//! decodes on its own. Starting a chunk at each of those would shrink chunks
//! and flag chunks where a joining viewer still cannot decode the picture. So
//! a random access point only counts on a video PID, once the program tables
//! say which those are; until then, or when no program lists video, every
//! random access point counts.
//!
//! Only what a live stream needs is read: the first section starting in a
//! packet, when it fits in that packet and its CRC holds. Anything else is
//! ignored and what was learned before stays.
//!
//! [`super::tables`] writes the same tables.

use super::packet::Packet;

pub(super) const PAT_TABLE_ID: u8 = 0x00;
pub(super) const PMT_TABLE_ID: u8 = 0x02;
/// table_id, flags and section_length (2), table_id_extension (2), version
/// and current_next_indicator, section_number, last_section_number.
const SECTION_HEADER_LEN: usize = 8;
pub(super) const CRC_LEN: usize = 4;
pub(super) const SECTION_SYNTAX: u16 = 0x8000;
const LENGTH_MASK: u16 = 0x0FFF;
const PID_MASK: u16 = 0x1FFF;
pub(super) const CURRENT_NEXT: u8 = 0x01;
/// A PAT entry: program_number, then the PMT PID.
const PAT_ENTRY_LEN: usize = 4;
/// program_number 0 in the PAT points at the network information table.
const NETWORK_PROGRAM: u16 = 0;
/// A PMT elementary stream entry before its descriptors: stream_type,
/// elementary_PID, ES_info_length.
const ES_ENTRY_LEN: usize = 5;

/// Video stream types: MPEG-1 and MPEG-2 video, MPEG-4 part 2, H.264, H.265,
/// H.266, AVS, Dirac, VC-1. Sub-bitstreams (SVC, MVC, HEVC temporal layers)
/// are left out: their random access points are also their base layer's.
const VIDEO_STREAM_TYPES: [u8; 9] = [0x01, 0x02, 0x10, 0x1B, 0x24, 0x33, 0x42, 0xD1, 0xEA];

/// The PID that carries the program association table.
pub const PAT_PID: u16 = 0;
/// The stream_type of H.264 video in a PMT.
pub const STREAM_TYPE_H264: u8 = 0x1B;
/// The stream_type of AAC audio (ADTS) in a PMT.
pub const STREAM_TYPE_AAC: u8 = 0x0F;

/// The video PIDs of the stream's programs.
#[derive(Debug, Default)]
pub(super) struct VideoPids {
    programs: Vec<Program>,
    /// Reused while reading a PMT, so that an unchanged table allocates
    /// nothing.
    scratch: Vec<u16>,
}

#[derive(Debug)]
struct Program {
    number: u16,
    pmt_pid: u16,
    video: Vec<u16>,
}

impl VideoPids {
    /// Learns from `packet` if it starts a PAT or PMT section.
    pub(super) fn handle_packet(&mut self, packet: Packet<'_>) {
        let pid = packet.pid();
        if pid == PAT_PID {
            if let Some(section) = first_section(packet)
                && section.table_id == PAT_TABLE_ID
                && section.number == 0
                && section.last_number == 0
            {
                self.handle_pat(section.body);
            }
        } else if self.programs.iter().any(|p| p.pmt_pid == pid)
            && let Some(section) = first_section(packet)
            && section.table_id == PMT_TABLE_ID
        {
            self.handle_pmt(pid, section.id, section.body);
        }
    }

    /// Whether a random access point on `pid` is a keyframe of the stream.
    pub(super) fn is_keyframe_pid(&self, pid: u16) -> bool {
        let mut video_known = false;
        for program in &self.programs {
            if program.video.contains(&pid) {
                return true;
            }
            video_known |= !program.video.is_empty();
        }
        !video_known
    }

    fn handle_pat(&mut self, body: &[u8]) {
        if !body.len().is_multiple_of(PAT_ENTRY_LEN) {
            return;
        }
        let entries = || {
            body.chunks_exact(PAT_ENTRY_LEN)
                .filter_map(|entry| Some((be16(entry, 0)?, be16(entry, 2)? & PID_MASK)))
                .filter(|&(number, _)| number != NETWORK_PROGRAM)
        };
        if self
            .programs
            .iter()
            .map(|p| (p.number, p.pmt_pid))
            .eq(entries())
        {
            return;
        }
        let mut old = std::mem::take(&mut self.programs);
        self.programs = entries()
            .map(|(number, pmt_pid)| {
                let video = old
                    .iter_mut()
                    .find(|p| p.number == number && p.pmt_pid == pmt_pid)
                    .map(|p| std::mem::take(&mut p.video))
                    .unwrap_or_default();
                Program {
                    number,
                    pmt_pid,
                    video,
                }
            })
            .collect();
    }

    fn handle_pmt(&mut self, pmt_pid: u16, number: u16, body: &[u8]) {
        let Some(program) = self
            .programs
            .iter_mut()
            .find(|p| p.number == number && p.pmt_pid == pmt_pid)
        else {
            return;
        };
        if read_video_pids(body, &mut self.scratch).is_some() && program.video != self.scratch {
            program.video.clone_from(&self.scratch);
        }
    }
}

/// Collects the video PIDs a PMT body lists into `out`; `None` if the body
/// is malformed.
fn read_video_pids(body: &[u8], out: &mut Vec<u16>) -> Option<()> {
    out.clear();
    // PCR_PID (2), then program_info_length and the program descriptors.
    let program_info_len = usize::from(be16(body, 2)? & LENGTH_MASK);
    let mut entries = body.get(4 + program_info_len..)?;
    while !entries.is_empty() {
        let stream_type = *entries.first()?;
        let pid = be16(entries, 1)? & PID_MASK;
        let es_info_len = usize::from(be16(entries, 3)? & LENGTH_MASK);
        if VIDEO_STREAM_TYPES.contains(&stream_type) {
            out.push(pid);
        }
        entries = entries.get(ES_ENTRY_LEN + es_info_len..)?;
    }
    Some(())
}

/// A long-form PSI section, CRC checked.
struct Section<'a> {
    table_id: u8,
    /// table_id_extension: the transport stream id in a PAT, the program
    /// number in a PMT.
    id: u16,
    number: u8,
    last_number: u8,
    /// Between the header and the CRC.
    body: &'a [u8],
}

/// The first section starting in `packet`, if it is current, fits in the
/// packet and its CRC holds.
fn first_section(packet: Packet<'_>) -> Option<Section<'_>> {
    if packet.transport_error() || !packet.payload_unit_start() {
        return None;
    }
    let (&pointer, rest) = packet.payload()?.split_first()?;
    let section = rest.get(usize::from(pointer)..)?;
    let length = be16(section, 1)?;
    if length & SECTION_SYNTAX == 0 {
        return None;
    }
    let total = 3 + usize::from(length & LENGTH_MASK);
    let section = section.get(..total)?;
    if total < SECTION_HEADER_LEN + CRC_LEN || crc32_mpeg2(section) != 0 {
        return None;
    }
    if section.get(5)? & CURRENT_NEXT == 0 {
        return None;
    }
    Some(Section {
        table_id: *section.first()?,
        id: be16(section, 3)?,
        number: *section.get(6)?,
        last_number: *section.get(7)?,
        body: section.get(SECTION_HEADER_LEN..total - CRC_LEN)?,
    })
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, not reflected, no final xor). Run
/// over a whole section, CRC included, it gives zero.
pub fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    const POLY: u32 = 0x04C1_1DB7;
    bytes.iter().fold(u32::MAX, |crc, &byte| {
        (0..8).fold(crc ^ (u32::from(byte) << 24), |crc, _| {
            if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ POLY
            } else {
                crc << 1
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{packet, pat, pmt};
    use super::*;

    use super::{STREAM_TYPE_AAC as AAC, STREAM_TYPE_H264 as H264};

    fn learn(tables: &mut VideoPids, bytes: &[u8]) {
        tables.handle_packet(Packet::new_checked(bytes).expect("a built packet"));
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn everything_counts_until_video_is_known() {
        let mut tables = VideoPids::default();
        assert!(tables.is_keyframe_pid(0x101));
        // A PMT before its PAT teaches nothing.
        learn(&mut tables, &pmt(0x1000, 1, &[(H264, 0x100), (AAC, 0x101)]));
        assert!(tables.is_keyframe_pid(0x101));
        learn(&mut tables, &pat(&[(1, 0x1000)]));
        assert!(tables.is_keyframe_pid(0x101));
        learn(&mut tables, &pmt(0x1000, 1, &[(H264, 0x100), (AAC, 0x101)]));
        assert!(tables.is_keyframe_pid(0x100));
        assert!(!tables.is_keyframe_pid(0x101));
        assert!(!tables.is_keyframe_pid(0x1000));
    }

    #[test]
    fn audio_only_programs_keep_every_random_access_point() {
        let mut tables = VideoPids::default();
        learn(&mut tables, &pat(&[(1, 0x1000)]));
        learn(&mut tables, &pmt(0x1000, 1, &[(AAC, 0x101)]));
        assert!(tables.is_keyframe_pid(0x101));
    }

    #[test]
    fn corrupt_or_foreign_sections_are_ignored() {
        let mut tables = VideoPids::default();
        learn(&mut tables, &pat(&[(1, 0x1000)]));

        let mut bad_crc = pmt(0x1000, 1, &[(H264, 0x100), (AAC, 0x101)]);
        bad_crc[20] ^= 1;
        learn(&mut tables, &bad_crc);
        assert!(tables.is_keyframe_pid(0x101));

        // Another program's PMT on the same PID.
        learn(&mut tables, &pmt(0x1000, 2, &[(H264, 0x100)]));
        assert!(tables.is_keyframe_pid(0x101));

        // Not a section start.
        let mut continuation = pmt(0x1000, 1, &[(H264, 0x100)]);
        continuation[1] &= !0x40;
        learn(&mut tables, &continuation);
        assert!(tables.is_keyframe_pid(0x101));

        // An ordinary packet on the PMT PID.
        learn(&mut tables, &packet(0x1000, 0, false));
        assert!(tables.is_keyframe_pid(0x101));

        learn(&mut tables, &pmt(0x1000, 1, &[(H264, 0x100)]));
        assert!(!tables.is_keyframe_pid(0x101));
    }

    #[test]
    fn tables_follow_changes() {
        let mut tables = VideoPids::default();
        learn(&mut tables, &pat(&[(1, 0x1000)]));
        learn(&mut tables, &pmt(0x1000, 1, &[(H264, 0x100), (AAC, 0x101)]));
        // Repeating the PAT keeps what its PMTs taught.
        learn(&mut tables, &pat(&[(1, 0x1000)]));
        assert!(!tables.is_keyframe_pid(0x101));
        // A new PMT version moves the video.
        learn(&mut tables, &pmt(0x1000, 1, &[(AAC, 0x100), (H264, 0x101)]));
        assert!(tables.is_keyframe_pid(0x101));
        assert!(!tables.is_keyframe_pid(0x100));
        // A new PAT drops the program; nothing is known any more.
        learn(&mut tables, &pat(&[(2, 0x1001)]));
        assert!(tables.is_keyframe_pid(0x100));
    }

    #[test]
    fn malformed_pmt_bodies_are_refused() {
        let mut out = vec![7];
        assert_eq!(read_video_pids(&[], &mut out), None);
        // program_info_length past the end.
        assert_eq!(read_video_pids(&[0xE1, 0x00, 0xF0, 0x10], &mut out), None);
        // ES_info_length past the end.
        let body = [0xE1, 0x00, 0xF0, 0x00, H264, 0xE1, 0x00, 0xF0, 0x05];
        assert_eq!(read_video_pids(&body, &mut out), None);
        // Truncated entry.
        assert_eq!(read_video_pids(&body[..7], &mut out), None);
        let body = [0xE1, 0x00, 0xF0, 0x00, H264, 0xE1, 0x00, 0xF0, 0x00];
        assert_eq!(read_video_pids(&body, &mut out), Some(()));
        assert_eq!(out, [0x100]);
    }
}
