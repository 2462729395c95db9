//! A synthetic MPEG-TS test stream: deterministic bytes, real packet
//! framing, a random access point at the start of every group of pictures.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PACKET: usize = 188;

/// A whole test stream, cut into frames that arrive at a fixed rate.
#[derive(Debug, Clone)]
pub struct TestStream {
    /// Every byte of the stream.
    pub bytes: Vec<u8>,
    /// Byte offset where each frame starts; frame i arrives at i / fps.
    pub frames: Vec<usize>,
    /// Byte offsets of the keyframe packets.
    pub keyframes: Vec<usize>,
    /// Time between frames.
    pub frame_interval: Duration,
}

impl TestStream {
    /// `seconds` of stream at about `bitrate_bps`, `fps` frames per second,
    /// a keyframe every `gop` frames.
    pub fn new(seed: u64, seconds: f64, bitrate_bps: u64, fps: u32, gop: u32) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let frame_count = (seconds * f64::from(fps)).round() as usize;
        let bytes_per_frame = (bitrate_bps / 8 / u64::from(fps)) as usize;
        let mut bytes = Vec::with_capacity(frame_count * bytes_per_frame + PACKET);
        let mut frames = Vec::with_capacity(frame_count);
        let mut keyframes = Vec::new();
        let mut cc = 0u8;
        for f in 0..frame_count {
            frames.push(bytes.len());
            let keyframe = f % gop as usize == 0;
            // Keyframes are larger, as in real video.
            let scale = if keyframe { 3 } else { 1 };
            let packets = (bytes_per_frame * scale / PACKET / 2).max(1);
            for p in 0..packets {
                let start = bytes.len();
                if keyframe && p == 0 {
                    keyframes.push(start);
                }
                bytes.push(0x47);
                bytes.push(if p == 0 { 0x41 } else { 0x01 }); // PUSI on the first packet, PID 0x100
                bytes.push(0x00);
                if keyframe && p == 0 {
                    // Adaptation field with random_access_indicator, then payload.
                    bytes.push(0x30 | (cc & 0x0f));
                    bytes.push(1);
                    bytes.push(0x40);
                } else {
                    bytes.push(0x10 | (cc & 0x0f));
                }
                cc = cc.wrapping_add(1);
                while bytes.len() < start + PACKET {
                    bytes.push(rng.random());
                }
            }
        }
        Self {
            bytes,
            frames,
            keyframes,
            frame_interval: Duration::from_secs(1) / fps,
        }
    }

    /// What the stream carries, bits per second, over its whole length:
    /// about half the `bitrate_bps` it was made with (non-key frames carry
    /// half a frame's share, keyframes one and a half). Upload capacities
    /// are set against this, not the nominal rate.
    pub fn bitrate_bps(&self) -> u64 {
        let secs = self.duration().as_secs_f64().max(1e-9);
        (self.bytes.len() as f64 * 8.0 / secs) as u64
    }

    /// The bytes of frame `i`.
    pub fn frame(&self, i: usize) -> &[u8] {
        let start = self.frames.get(i).copied().unwrap_or(self.bytes.len());
        let end = self.frames.get(i + 1).copied().unwrap_or(self.bytes.len());
        self.bytes.get(start..end).unwrap_or_default()
    }

    /// Duration of the stream.
    pub fn duration(&self) -> Duration {
        self.frame_interval * self.frames.len() as u32
    }
}
