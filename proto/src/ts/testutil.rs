//! Synthetic transport packets for the tests.

use super::packet::{Header, TS_PACKET_LEN};
use super::tables::{pat_packet, pmt_packet};

/// A packet on `pid` with continuity counter `cc`; with `random_access` it
/// carries a one-byte adaptation field with the random_access_indicator. The
/// payload never contains a sync byte, nor does the header if `pid` avoids
/// 0x0700..0x0800 and a low byte of 0x47.
pub(super) fn packet(pid: u16, cc: u8, random_access: bool) -> [u8; TS_PACKET_LEN] {
    let header = Header {
        payload_unit_start: true,
        pid,
        adaptation_field: random_access,
        continuity_counter: cc,
    };
    let mut bytes = [0u8; TS_PACKET_LEN];
    bytes[..Header::LEN].copy_from_slice(&header.to_bytes());
    let mut at = Header::LEN;
    if random_access {
        bytes[4] = 1;
        bytes[5] = 0x40;
        at = 6;
    }
    let pid_lo = pid.to_be_bytes()[1];
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
    pat_packet(0, 1, programs).expect("a short test table")
}

/// A PMT for `program` on `pmt_pid` listing `(stream_type, pid)` streams.
pub(super) fn pmt(pmt_pid: u16, program: u16, streams: &[(u8, u16)]) -> [u8; TS_PACKET_LEN] {
    let pcr_pid = streams.first().map_or(0x1FFF, |&(_, pid)| pid);
    pmt_packet(pmt_pid, 0, program, pcr_pid, streams).expect("a short test table")
}
