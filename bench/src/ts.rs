//! The source's MPEG-TS for HTTP readers: synthetic, any bitrate, and
//! stamped, so that a reader can tell how late each frame reaches it.
//!
//! The relay's web face serves a stream to HTTP readers from a keyframe
//! on, with its PAT and PMT first (relay/src/web/feed.rs), so the opaque
//! bytes the source sends UDP viewers will not do: nothing there is a
//! keyframe after the first chunk. This stream has a PAT and a PMT (one
//! H.264 stream on [`VIDEO_PID`]) every half second and a random access
//! point once a second, so the publisher's chunker starts a keyframe
//! chunk there. The first packet of every frame carries, in its payload,
//! the run-clock time the frame was made ([`stamp`]); the rest is filler.
//! It is not decodable video.

use shoal_proto::ts::{Header, STREAM_TYPE_H264, TS_PACKET_LEN, pat_packet, pmt_packet};

/// The video stream's PID.
pub const VIDEO_PID: u16 = 0x100;
const PMT_PID: u16 = 0x1000;
const PROGRAM: u16 = 1;
/// A frame's first packet: the header, a one-byte adaptation field
/// (its length, then its flags), then the stamp.
const STAMP_AT: usize = Header::LEN + 2;
/// Bytes of a packet a reader must see to find its stamp.
pub const STAMP_END: usize = STAMP_AT + 8;
/// The adaptation field flag of a random access point.
const RANDOM_ACCESS: u8 = 0x40;
const FILLER: u8 = 0xA5;
const PACKET: i64 = TS_PACKET_LEN as i64;

/// Makes the stream, a frame at a time.
#[derive(Debug)]
pub struct StampedTs {
    fps: u64,
    frame: u64,
    /// Bytes the frames so far were given and not yet spent on packets
    /// (negative when the tables took more than a frame's share).
    credit: i64,
    cc_tables: u8,
    cc_video: u8,
}

impl StampedTs {
    /// A stream of `fps` frames a second.
    pub fn new(fps: u32) -> Self {
        Self {
            fps: u64::from(fps.max(1)),
            frame: 0,
            credit: 0,
            cc_tables: 0,
            cc_video: 0,
        }
    }

    /// Appends the next frame to `out`: whole packets worth `bytes` (the
    /// remainder is carried to the next frame, so the rate is exact over
    /// time), its first video packet stamped with `stamp`.
    pub fn frame(&mut self, bytes: usize, stamp: u64, out: &mut Vec<u8>) {
        let f = self.frame;
        self.frame += 1;
        self.credit += i64::try_from(bytes).unwrap_or(i64::MAX / 2);
        if f.is_multiple_of((self.fps / 2).max(1)) {
            let cc = self.cc_tables;
            self.cc_tables = cc.wrapping_add(1);
            let video = [(STREAM_TYPE_H264, VIDEO_PID)];
            let tables = pat_packet(cc, 1, &[(PROGRAM, PMT_PID)])
                .zip(pmt_packet(PMT_PID, cc, PROGRAM, VIDEO_PID, &video));
            if let Some((pat, pmt)) = tables {
                out.extend_from_slice(&pat);
                out.extend_from_slice(&pmt);
                self.credit -= 2 * PACKET;
            }
        }
        let mut first = true;
        while self.credit >= PACKET {
            self.credit -= PACKET;
            let cc = self.cc_video;
            self.cc_video = cc.wrapping_add(1);
            let header = Header {
                payload_unit_start: first,
                pid: VIDEO_PID,
                adaptation_field: first,
                continuity_counter: cc,
            };
            let mut p = [FILLER; TS_PACKET_LEN];
            p[..Header::LEN].copy_from_slice(&header.to_bytes());
            if first {
                let keyframe = f.is_multiple_of(self.fps);
                p[Header::LEN] = 1;
                p[Header::LEN + 1] = if keyframe { RANDOM_ACCESS } else { 0 };
                p[STAMP_AT..STAMP_END].copy_from_slice(&stamp.to_le_bytes());
                first = false;
            }
            out.extend_from_slice(&p);
        }
    }
}

/// The stamp of a frame's first packet, from the packet's first
/// [`STAMP_END`] bytes; `None` for any other packet.
pub fn stamp(head: &[u8]) -> Option<u64> {
    let head = head.get(..STAMP_END)?;
    let pid = u16::from_be_bytes([head[1] & 0x1F, head[2]]);
    let starts = head[1] & 0x40 != 0;
    let adaptation = head[3] & 0x20 != 0 && head[Header::LEN] == 1;
    if head[0] != 0x47 || pid != VIDEO_PID || !starts || !adaptation {
        return None;
    }
    let bytes: [u8; 8] = head[STAMP_AT..STAMP_END].try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::ts::{Chunker, Mode};

    #[test]
    fn a_second_is_the_bitrate_in_whole_packets_with_one_keyframe() {
        let mut ts = StampedTs::new(30);
        let mut out = Vec::new();
        for f in 0..30u64 {
            ts.frame(12_500, 1_000 + f, &mut out);
        }
        // 375 000 bytes a second, less what is carried: under a packet.
        assert!(375_000 - out.len() < TS_PACKET_LEN, "{}", out.len());
        assert_eq!(out.len() % TS_PACKET_LEN, 0);
        let stamps: Vec<u64> = out.chunks(TS_PACKET_LEN).filter_map(stamp).collect();
        assert_eq!(stamps, (1_000..1_030).collect::<Vec<_>>());

        // Frame 30 starts the second second: a keyframe again.
        ts.frame(12_500, 2_000, &mut out);
        let mut chunker = Chunker::new(Mode::MpegTs, 1316).expect("valid");
        chunker.handle_input(&out);
        chunker.finish();
        let mut keyframes = 0;
        while let Some(chunk) = chunker.poll_chunk() {
            keyframes += usize::from(chunk.keyframe);
        }
        assert_eq!(
            keyframes, 3,
            "the first chunk (the tables), frames 0 and 30"
        );
    }

    #[test]
    fn only_a_frames_first_packet_has_a_stamp() {
        let mut ts = StampedTs::new(10);
        let mut out = Vec::new();
        ts.frame(10 * TS_PACKET_LEN, 7, &mut out);
        let packets: Vec<&[u8]> = out.chunks(TS_PACKET_LEN).collect();
        assert_eq!(packets.len(), 10, "PAT, PMT and 8 video packets");
        assert_eq!(stamp(packets[0]), None, "the PAT");
        assert_eq!(stamp(packets[2]), Some(7));
        assert!(packets[3..].iter().all(|p| stamp(p).is_none()));
        assert_eq!(stamp(&packets[2][..STAMP_END - 1]), None, "too short");
    }
}
