//! Synthetic transport packets for the tests.

use super::packet::{SYNC_BYTE, TS_PACKET_LEN};
use super::psi::crc32_mpeg2;

/// A packet on `pid` with continuity counter `cc`; with `random_access` it
/// carries a one-byte adaptation field with the random_access_indicator. The
/// payload never contains a sync byte, nor does the header if `pid` avoids
/// 0x0700..0x0800 and a low byte of 0x47.
pub(super) fn packet(pid: u16, cc: u8, random_access: bool) -> [u8; TS_PACKET_LEN] {
    let [pid_hi, pid_lo] = pid.to_be_bytes();
    let mut bytes = [0u8; TS_PACKET_LEN];
    bytes[0] = SYNC_BYTE;
    bytes[1] = 0x40 | (pid_hi & 0x1F);
    bytes[2] = pid_lo;
    let mut at = 4;
    if random_access {
        bytes[3] = 0x30 | (cc & 0x0F);
        bytes[4] = 1;
        bytes[5] = 0x40;
        at = 6;
    } else {
        bytes[3] = 0x10 | (cc & 0x0F);
    }
    for (i, byte) in bytes.iter_mut().enumerate().skip(at) {
        // Below 0x47 whatever the inputs.
        *byte = (pid_lo ^ cc ^ i as u8) & 0x3F;
    }
    bytes
}

/// Consecutive packets, `(pid, random_access)` each, numbered by position.
pub(super) fn stream(packets: &[(u16, bool)]) -> Vec<u8> {
    packets
        .iter()
        .enumerate()
        .flat_map(|(i, &(pid, key))| packet(pid, i as u8, key))
        .collect()
}

/// A PAT listing `(program_number, pmt_pid)` entries.
pub(super) fn pat(programs: &[(u16, u16)]) -> [u8; TS_PACKET_LEN] {
    let body: Vec<u8> = programs
        .iter()
        .flat_map(|&(number, pid)| [number.to_be_bytes(), (0xE000 | pid).to_be_bytes()])
        .flatten()
        .collect();
    section_packet(0, 0x00, 1, &body)
}

/// A PMT for `program` on `pmt_pid` listing `(stream_type, pid)` streams.
pub(super) fn pmt(pmt_pid: u16, program: u16, streams: &[(u8, u16)]) -> [u8; TS_PACKET_LEN] {
    let pcr_pid = streams.first().map_or(0x1FFF, |&(_, pid)| pid);
    let mut body = Vec::new();
    body.extend_from_slice(&(0xE000 | pcr_pid).to_be_bytes());
    body.extend_from_slice(&0xF000u16.to_be_bytes());
    for &(stream_type, pid) in streams {
        body.push(stream_type);
        body.extend_from_slice(&(0xE000 | pid).to_be_bytes());
        body.extend_from_slice(&0xF000u16.to_be_bytes());
    }
    section_packet(pmt_pid, 0x02, program, &body)
}

fn section_packet(pid: u16, table_id: u8, id: u16, body: &[u8]) -> [u8; TS_PACKET_LEN] {
    let mut section = vec![table_id];
    let length = u16::try_from(5 + body.len() + 4).expect("a short test section");
    section.extend_from_slice(&(0xB000 | length).to_be_bytes());
    section.extend_from_slice(&id.to_be_bytes());
    section.extend_from_slice(&[0xC1, 0, 0]);
    section.extend_from_slice(body);
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());

    let mut bytes = [0xFF; TS_PACKET_LEN];
    let [pid_hi, pid_lo] = pid.to_be_bytes();
    bytes[..5].copy_from_slice(&[SYNC_BYTE, 0x40 | (pid_hi & 0x1F), pid_lo, 0x10, 0]);
    bytes[5..5 + section.len()].copy_from_slice(&section);
    bytes
}
