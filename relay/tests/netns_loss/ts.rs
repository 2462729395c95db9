//! A synthetic MPEG-TS file: a PAT and a PMT (one H.264 stream) every
//! [`PSI_EVERY`] packets, and video packets with a PCR every
//! [`PCR_EVERY`] packets (so `shoal publish` paces the file in real time)
//! and the random_access_indicator at the start of each [`GOP`].

/// Bytes in a transport packet.
pub use shoal_proto::ts::TS_PACKET_LEN as PACKET_LEN;
use shoal_proto::ts::{
    Header, STREAM_TYPE_H264, SYNC_BYTE, crc32_mpeg2, pat_packet, pcr_field, pmt_packet,
};

/// Packets from one keyframe to the next: about 0.53 s at [`BITRATE`].
pub const GOP: usize = 700;
/// Packets from one PAT to the next (the PMT follows each PAT).
const PSI_EVERY: usize = 100;
/// Packets from one PCR to the next; a multiple of neither table slot.
const PCR_EVERY: usize = 20;
/// Where in each [`PSI_EVERY`] (and [`GOP`]) run the keyframe and PCRs sit:
/// just after the PAT and PMT.
const FIRST_VIDEO: usize = 2;
/// The rate the PCRs say the file was recorded at.
const BITRATE: u64 = 2_000_000;
/// 27 MHz PCR ticks one packet takes at [`BITRATE`] (exactly 20304).
const TICKS_PER_PACKET: u64 = PACKET_LEN as u64 * 8 * 27_000_000 / BITRATE;
const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
const PROGRAM: u16 = 1;

/// `packets` transport packets, deterministic, with no sync byte outside
/// the packet headers' first byte and the PCR fields.
pub fn stream(packets: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(packets * PACKET_LEN);
    let mut video_cc = 0u8;
    for i in 0..packets {
        // The header keeps the continuity counter's low four bits.
        let tables_cc = (i / PSI_EVERY) as u8;
        let packet = match i % PSI_EVERY {
            0 => pat_packet(tables_cc, PROGRAM, &[(PROGRAM, PMT_PID)]).expect("one program"),
            // The PCR on the video PID, one stream.
            1 => pmt_packet(
                PMT_PID,
                tables_cc,
                PROGRAM,
                VIDEO_PID,
                &[(STREAM_TYPE_H264, VIDEO_PID)],
            )
            .expect("one stream"),
            _ => video_packet(i, &mut video_cc),
        };
        out.extend_from_slice(&packet);
    }
    out
}

/// Whether `packet` carries the random_access_indicator.
pub fn is_random_access(packet: &[u8]) -> bool {
    packet.len() >= 6 && packet[3] & 0x20 != 0 && packet[4] > 0 && packet[5] & 0x40 != 0
}

/// A stretch of output that is a stretch of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Its first packet's index in the input.
    pub first: usize,
    /// Packets in it.
    pub packets: usize,
    /// Its first byte's offset in the output.
    pub out_at: usize,
}

impl Run {
    /// One past its last packet's index in the input.
    pub fn end(&self) -> usize {
        self.first + self.packets
    }
}

/// Splits `output` into runs of consecutive `input` packets, in order:
/// the proof that every output packet is whole, valid and the input's,
/// with nothing reordered or repeated, only left out between runs. `Err`
/// names the first output packet that is not.
pub fn runs(input: &[u8], output: &[u8]) -> Result<Vec<Run>, String> {
    if !output.len().is_multiple_of(PACKET_LEN) {
        return Err(format!(
            "the output ({} bytes) is not whole packets",
            output.len()
        ));
    }
    let input: Vec<&[u8]> = input.chunks(PACKET_LEN).collect();
    let mut runs: Vec<Run> = Vec::new();
    // The input packet the next output packet should be, if nothing was
    // left out.
    let mut next = 0;
    for (i, packet) in output.chunks(PACKET_LEN).enumerate() {
        if packet[0] != SYNC_BYTE {
            return Err(format!("output packet {i} has no sync byte"));
        }
        // The earliest match keeps every later packet matchable: PAT and
        // PMT packets repeat, video packets are unique.
        let Some(at) = (next..input.len()).find(|&j| input[j] == packet) else {
            return Err(format!(
                "output packet {i} is not an input packet at or after input packet {next}"
            ));
        };
        match runs.last_mut() {
            Some(run) if run.end() == at => run.packets += 1,
            _ => runs.push(Run {
                first: at,
                packets: 1,
                out_at: i * PACKET_LEN,
            }),
        }
        next = at + 1;
    }
    Ok(runs)
}

/// Seconds of stream `packets` packets take at the file's bitrate.
pub fn seconds(packets: usize) -> f64 {
    (packets * PACKET_LEN * 8) as f64 / BITRATE as f64
}

fn video_packet(index: usize, cc: &mut u8) -> [u8; PACKET_LEN] {
    let keyframe = index % GOP == FIRST_VIDEO;
    let with_pcr = index % PCR_EVERY == FIRST_VIDEO;
    let header = Header {
        // A keyframe starts a PES packet.
        payload_unit_start: keyframe,
        pid: VIDEO_PID,
        adaptation_field: with_pcr,
        continuity_counter: *cc,
    };
    let mut bytes = [0u8; PACKET_LEN];
    bytes[..Header::LEN].copy_from_slice(&header.to_bytes());
    let mut at = Header::LEN;
    if with_pcr {
        bytes[4] = 7;
        bytes[5] = 0x10 | if keyframe { 0x40 } else { 0 };
        let ticks = index as u64 * TICKS_PER_PACKET;
        bytes[6..12].copy_from_slice(&pcr_field(ticks / 300, (ticks % 300) as u16));
        at = 12;
    }
    *cc = cc.wrapping_add(1);
    for (j, byte) in bytes.iter_mut().enumerate().skip(at) {
        // Below the sync byte, and different in every packet.
        *byte = ((index * 31 + j * 7) % usize::from(SYNC_BYTE)) as u8;
    }
    bytes
}

#[test]
fn runs_find_what_was_left_out() {
    let ts = stream(300);
    let packet = |i: usize| &ts[i * PACKET_LEN..(i + 1) * PACKET_LEN];
    let mut out = Vec::new();
    for i in (10..20).chain(150..160) {
        out.extend_from_slice(packet(i));
    }
    let found = runs(&ts, &out).expect("in order");
    assert_eq!(found.len(), 2);
    assert_eq!(
        (found[0].first, found[0].packets, found[0].out_at),
        (10, 10, 0)
    );
    assert_eq!((found[1].first, found[1].end()), (150, 160));
    out.extend_from_slice(packet(155));
    assert!(runs(&ts, &out).is_err(), "a repeat is caught");
    let mut corrupt = packet(200).to_vec();
    corrupt[100] ^= 1;
    assert!(runs(&ts, &corrupt).is_err(), "a bit flip is caught");
}

#[test]
fn tables_check_and_keyframes_are_marked() {
    let ts = stream(GOP * 2);
    assert_eq!(ts.len(), GOP * 2 * PACKET_LEN);
    // A section run through the CRC with its CRC gives zero.
    // Header 3 + id, version, numbers 5 + body + CRC 4.
    let pat = &ts[5..5 + 3 + 5 + 4 + 4];
    assert_eq!(crc32_mpeg2(pat), 0);
    let pmt = &ts[PACKET_LEN + 5..PACKET_LEN + 5 + 3 + 5 + 9 + 4];
    assert_eq!(crc32_mpeg2(pmt), 0);
    let keyframes: Vec<usize> = ts
        .chunks(PACKET_LEN)
        .enumerate()
        .filter(|(_, p)| is_random_access(p))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keyframes, [FIRST_VIDEO, GOP + FIRST_VIDEO]);
    assert!(ts.chunks(PACKET_LEN).all(|p| p[0] == SYNC_BYTE));
}
