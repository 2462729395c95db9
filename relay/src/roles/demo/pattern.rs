//! The demo's built-in stream: a synthetic MPEG-TS test pattern (not
//! decodable video).
//!
//! A PAT and a PMT (one H.264 video stream, 0x1B, on PID 0x100) every
//! 500 ms, and about 3 Mbit/s of video packets in 30 fps frames. Each frame
//! starts with a PES header and a PCR; the first frame of every second
//! carries the random_access_indicator, so the chunker marks it a keyframe
//! and viewers may start there. The payload bytes are a deterministic
//! pattern, so a second [`Pattern`] made the same way yields the same bytes:
//! that is how the demo checks viewers' output byte for byte.

use shoal_proto::ts::{Header, STREAM_TYPE_H264, TS_PACKET_LEN, pat_packet, pcr_field, pmt_packet};
use std::time::Duration;

/// What the output and docs call this stream.
pub const LABEL: &str = "synthetic MPEG-TS test pattern (not decodable video)";

/// Frames per second; the stream is generated in one burst per frame.
pub const FPS: u64 = 30;
/// Time between frames.
pub const FRAME_TIME: Duration = Duration::from_nanos(1_000_000_000 / FPS);
/// Nominal bitrate of the video packets.
pub const BITRATE_BPS: u64 = 3_000_000;

const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
const PROGRAM: u16 = 1;
/// Frames between PAT/PMT repeats: 500 ms.
const TABLES_EVERY: u64 = FPS / 2;
/// Frames between random access points: 1 s.
const KEYFRAME_EVERY: u64 = FPS;
/// 90 kHz clock ticks per frame.
const TICKS_PER_FRAME: u64 = 90_000 / FPS;
/// Video bits per frame.
const BITS_PER_FRAME: u64 = BITRATE_BPS / FPS;
const PACKET_BITS: u64 = TS_PACKET_LEN as u64 * 8;

/// The generator. Deterministic: its n-th frame is always the same bytes.
#[derive(Debug, Default)]
pub struct Pattern {
    frame: u64,
    /// Continuity counters, the header keeping their low four bits; the
    /// PAT and PMT go together, so they share one.
    cc_tables: u8,
    cc_video: u8,
}

impl Pattern {
    /// Frames made so far.
    pub fn frames(&self) -> u64 {
        self.frame
    }

    /// Appends the next frame's packets to `out`.
    pub fn next_frame(&mut self, out: &mut Vec<u8>) {
        let f = self.frame;
        if f.is_multiple_of(TABLES_EVERY) {
            out.extend_from_slice(&pat(self.cc_tables));
            out.extend_from_slice(&pmt(self.cc_tables));
            self.cc_tables = self.cc_tables.wrapping_add(1);
        }
        // Whole packets whose bits add up to the bitrate over time.
        let packets = ((f + 1) * BITS_PER_FRAME / PACKET_BITS) - (f * BITS_PER_FRAME / PACKET_BITS);
        for i in 0..packets {
            let mut p = [0u8; TS_PACKET_LEN];
            let cc = self.cc_video;
            self.cc_video = cc.wrapping_add(1);
            // The frame's first packet: payload unit start, adaptation
            // field with PCR (and the random access indicator once a
            // second), then a PES header.
            let header = Header {
                payload_unit_start: i == 0,
                pid: VIDEO_PID,
                adaptation_field: i == 0,
                continuity_counter: cc,
            };
            p[..Header::LEN].copy_from_slice(&header.to_bytes());
            let mut at = Header::LEN;
            if i == 0 {
                let random_access = f.is_multiple_of(KEYFRAME_EVERY);
                p[4] = 7;
                p[5] = 0x10 | if random_access { 0x40 } else { 0 };
                p[6..12].copy_from_slice(&pcr_field(f * TICKS_PER_FRAME, 0));
                at = 12;
                let pes = pes_header(f * TICKS_PER_FRAME + 9_000);
                p[at..at + pes.len()].copy_from_slice(&pes);
                at += pes.len();
            }
            for (j, byte) in p.iter_mut().enumerate().skip(at) {
                // 0x80..=0xBF: never a sync byte, never a start code.
                *byte = 0x80 | ((f as u8) ^ (i as u8) ^ (j as u8)) & 0x3F;
            }
            out.extend_from_slice(&p);
        }
        self.frame += 1;
    }
}

/// A video PES header with a PTS and an unbounded length.
fn pes_header(pts: u64) -> [u8; 14] {
    let pts = pts & ((1 << 33) - 1);
    [
        0,
        0,
        1,
        0xE0,
        0,
        0,
        0x80,
        0x80,
        5,
        0x21 | ((pts >> 29) & 0x0E) as u8,
        (pts >> 22) as u8,
        0x01 | ((pts >> 14) & 0xFE) as u8,
        (pts >> 7) as u8,
        0x01 | ((pts << 1) & 0xFE) as u8,
    ]
}

/// The PAT: one program.
fn pat(cc: u8) -> [u8; TS_PACKET_LEN] {
    pat_packet(cc, 1, &[(PROGRAM, PMT_PID)]).expect("one program fits a packet")
}

/// The PMT: one video stream, carrying the PCR.
fn pmt(cc: u8) -> [u8; TS_PACKET_LEN] {
    let video = [(STREAM_TYPE_H264, VIDEO_PID)];
    pmt_packet(PMT_PID, cc, PROGRAM, VIDEO_PID, &video).expect("one stream fits a packet")
}

/// FNV-1a, 64 bits: a running digest of a byte stream, the same however
/// the stream is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    /// Adds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The digest of the last `len` bytes of the first `frames` frames, or
/// `None` if those frames hold fewer bytes.
pub fn suffix_digest(frames: u64, len: u64) -> Option<Digest> {
    let mut pattern = Pattern::default();
    let mut buf = Vec::new();
    let mut total = 0u64;
    for _ in 0..frames {
        buf.clear();
        pattern.next_frame(&mut buf);
        total += buf.len() as u64;
    }
    let mut skip = total.checked_sub(len)?;
    let mut pattern = Pattern::default();
    let mut digest = Digest::default();
    for _ in 0..frames {
        buf.clear();
        pattern.next_frame(&mut buf);
        let n = buf.len() as u64;
        if skip >= n {
            skip -= n;
            continue;
        }
        digest.write(buf.get(skip as usize..).unwrap_or_default());
        skip = 0;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::ts::{PAT_PID, SYNC_BYTE, crc32_mpeg2};

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
        // Over a whole section, CRC included, it is zero. A section starts
        // after the header and pointer field (5 bytes): header 3 + id,
        // version, numbers 5 + body + CRC 4.
        assert_eq!(crc32_mpeg2(&pat(0)[5..5 + 3 + 5 + 4 + 4]), 0);
        assert_eq!(crc32_mpeg2(&pmt(0)[5..5 + 3 + 5 + 9 + 4]), 0);
    }

    #[test]
    fn one_second_is_three_megabits_of_whole_packets() {
        let mut pattern = Pattern::default();
        let mut out = Vec::new();
        for _ in 0..FPS {
            pattern.next_frame(&mut out);
        }
        assert_eq!(out.len() % TS_PACKET_LEN, 0);
        let bits = out.len() as u64 * 8;
        assert!((2_990_000..3_010_000).contains(&bits), "{bits}");
        assert!(out.chunks(TS_PACKET_LEN).all(|p| p[0] == SYNC_BYTE));
    }

    #[test]
    fn keyframes_once_a_second_after_tables() {
        let mut pattern = Pattern::default();
        let mut out = Vec::new();
        for _ in 0..2 * FPS {
            pattern.next_frame(&mut out);
        }
        let pid = |p: &[u8]| u16::from_be_bytes([p[1] & 0x1F, p[2]]);
        let random_access: Vec<usize> = out
            .chunks(TS_PACKET_LEN)
            .enumerate()
            .filter(|(_, p)| p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x40 != 0)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(random_access.len(), 2);
        let packets: Vec<&[u8]> = out.chunks(TS_PACKET_LEN).collect();
        for &i in &random_access {
            assert_eq!(pid(packets[i]), VIDEO_PID);
            assert_eq!(pid(packets[i - 1]), PMT_PID);
            assert_eq!(pid(packets[i - 2]), PAT_PID);
        }
    }

    #[test]
    fn the_chunker_finds_the_keyframes() {
        use shoal_proto::ts::{Chunker, DEFAULT_CHUNK_SIZE, Mode};

        let mut chunker = Chunker::new(Mode::MpegTs, DEFAULT_CHUNK_SIZE).expect("a chunker");
        let mut pattern = Pattern::default();
        let mut frame = Vec::new();
        let mut keyframes = Vec::new();
        let mut bytes = 0;
        for _ in 0..3 * FPS {
            frame.clear();
            pattern.next_frame(&mut frame);
            chunker.handle_input(&frame);
            while let Some(chunk) = chunker.poll_chunk() {
                if chunk.keyframe {
                    keyframes.push(chunk.payload.clone());
                }
                bytes += chunk.payload.len();
            }
        }
        // The stream's first chunk (the tables before the first random
        // access point), then one a second, each starting at a video random
        // access point.
        assert_eq!(keyframes.len(), 4);
        for chunk in &keyframes[1..] {
            let pid = u16::from_be_bytes([chunk[1] & 0x1F, chunk[2]]);
            assert_eq!(pid, VIDEO_PID);
            assert_ne!(chunk[5] & 0x40, 0);
        }
        assert!(bytes > 1_000_000);
    }

    #[test]
    fn deterministic_and_suffix_digest_matches() {
        let mut pattern = Pattern::default();
        let mut out = Vec::new();
        for _ in 0..10 {
            pattern.next_frame(&mut out);
        }
        let tail = 3000;
        let mut digest = Digest::default();
        let (head, rest) = out.split_at(out.len() - tail);
        let (a, b) = rest.split_at(1000);
        digest.write(a);
        digest.write(b);
        assert!(!head.is_empty());
        assert_eq!(suffix_digest(10, tail as u64), Some(digest));
        assert_eq!(suffix_digest(10, out.len() as u64 + 1), None);
    }
}
