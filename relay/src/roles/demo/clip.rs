//! The demo's built-in stream: four seconds of real H.264 video and AAC
//! audio in MPEG-TS, made by ffmpeg (`assets/make-loop.sh`), built into the
//! binary and played in a loop for as long as the demo runs.
//!
//! Every pass after the first is moved forward in time, so that a player
//! sees one continuous stream: its PCR, PTS and DTS by the clip's length
//! once per pass (wrapping at 33 bits, as the clocks do), and each PID's
//! continuity counter by the packets that PID carries per pass. The clip is
//! played one burst per video frame: a burst starts where a video PES
//! packet starts (one per frame; the first burst also takes what comes
//! before it). ffmpeg sets the random_access_indicator on each IDR frame,
//! one a second, where the chunker starts a keyframe chunk.
//!
//! Deterministic: the n-th frame is always the same bytes, so a second
//! [`Player`] yields the same stream; that is how the demo checks viewers'
//! output byte for byte.

use std::sync::OnceLock;
use std::time::Duration;

use shoal_proto::ts::{Packet, PesHeader, TIMESTAMP_WRAP, TS_PACKET_LEN, shift_timestamps};

/// What the output and docs call this stream.
pub const LABEL: &str = "a 4 s loop of H.264 video (640x360, 30 fps) and AAC audio";

/// Frames per second; the clip is played in one burst per frame.
pub const FPS: u64 = 30;
/// Time between frames.
pub const FRAME_TIME: Duration = Duration::from_nanos(1_000_000_000 / FPS);

/// The clip, as `assets/make-loop.sh` made it.
const ASSET: &[u8] = include_bytes!("assets/loop.ts");
/// 90 kHz clock ticks per frame.
const TICKS_PER_FRAME: u64 = 90_000 / FPS;
/// Null packets: no continuity counter to keep.
const NULL_PID: u16 = 0x1FFF;
const CC_MASK: u8 = 0x0F;

/// A clip checked for looping: whole packets, video frames at a steady
/// [`FPS`], continuity counters without a break.
#[derive(Debug)]
pub struct Clip {
    /// Whole transport packets.
    bytes: &'static [u8],
    /// Where each frame's burst starts, in bytes; the first at 0.
    frames: Vec<usize>,
    /// For each PID with a continuity counter: how far one pass advances
    /// it (its packets with a payload, modulo 16).
    cc_steps: Vec<(u16, u8)>,
}

impl Clip {
    /// The built-in clip; an error only if the committed asset is broken
    /// (the tests say so first).
    pub fn builtin() -> anyhow::Result<&'static Self> {
        static CLIP: OnceLock<Result<Clip, String>> = OnceLock::new();
        CLIP.get_or_init(|| Self::parse(ASSET))
            .as_ref()
            .map_err(|why| anyhow::anyhow!("the built-in clip cannot be looped: {why}"))
    }

    /// Checks `bytes` and finds its frames.
    fn parse(bytes: &'static [u8]) -> Result<Self, String> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(TS_PACKET_LEN) {
            return Err(format!("{} bytes are not whole packets", bytes.len()));
        }
        let mut frames = Vec::new();
        let mut last_stamp: Option<u64> = None;
        // Per PID: its last counter and packets with a payload.
        let mut counters: Vec<(u16, u8, u64)> = Vec::new();
        for (i, bytes) in bytes.chunks_exact(TS_PACKET_LEN).enumerate() {
            let packet = Packet::new_checked(bytes).map_err(|e| format!("packet {i}: {e}"))?;
            let pid = packet.pid();
            let cc = packet.continuity_counter();
            let payload = packet.payload();
            if pid != NULL_PID {
                match counters.iter_mut().find(|(p, _, _)| *p == pid) {
                    None => counters.push((pid, cc, u64::from(payload.is_some()))),
                    Some((_, last, count)) => {
                        // Only a packet with a payload advances the counter.
                        let expected = (*last + u8::from(payload.is_some())) & CC_MASK;
                        if cc != expected {
                            return Err(format!(
                                "packet {i}: PID {pid:#x} continuity counter {cc}, not {expected}"
                            ));
                        }
                        *last = cc;
                        *count += u64::from(payload.is_some());
                    }
                }
            }
            let Some(header) = payload
                .filter(|_| packet.payload_unit_start())
                .and_then(PesHeader::parse)
                .filter(PesHeader::is_video)
            else {
                continue;
            };
            let Some(stamp) = header.dts.or(header.pts) else {
                return Err(format!("packet {i}: a video frame without a timestamp"));
            };
            if let Some(last) = last_stamp
                && (last + TICKS_PER_FRAME) % TIMESTAMP_WRAP != stamp
            {
                return Err(format!(
                    "packet {i}: a video frame {} ticks after the last, not {TICKS_PER_FRAME} ({FPS} fps)",
                    stamp.wrapping_sub(last) % TIMESTAMP_WRAP
                ));
            }
            last_stamp = Some(stamp);
            frames.push(if frames.is_empty() {
                0
            } else {
                i * TS_PACKET_LEN
            });
        }
        if frames.is_empty() {
            return Err("no video frames".to_owned());
        }
        let cc_steps = counters
            .into_iter()
            .map(|(pid, _, count)| (pid, (count % 16) as u8))
            .collect();
        Ok(Self {
            bytes,
            frames,
            cc_steps,
        })
    }

    /// Frames in one pass.
    pub fn frames(&self) -> u64 {
        self.frames.len() as u64
    }

    /// One pass, in 90 kHz ticks.
    pub fn ticks(&self) -> u64 {
        self.frames() * TICKS_PER_FRAME
    }

    /// The average bitrate of a pass.
    pub fn bitrate_bps(&self) -> u64 {
        self.bytes.len() as u64 * 8 * 90_000 / self.ticks()
    }

    /// Frame `i`'s bytes, as in the clip.
    fn frame(&self, i: usize) -> &'static [u8] {
        let start = self.frames.get(i).copied().unwrap_or(self.bytes.len());
        let end = self.frames.get(i + 1).copied().unwrap_or(self.bytes.len());
        self.bytes.get(start..end).unwrap_or_default()
    }

    fn cc_step(&self, pid: u16) -> u8 {
        self.cc_steps
            .iter()
            .find_map(|&(p, step)| (p == pid).then_some(step))
            .unwrap_or(0)
    }
}

/// Plays a [`Clip`] in a loop. Deterministic: its n-th frame is always the
/// same bytes.
#[derive(Debug)]
pub struct Player {
    clip: &'static Clip,
    /// Frames made so far, all passes.
    frame: u64,
}

impl Player {
    /// Plays `clip` from its start.
    pub fn new(clip: &'static Clip) -> Self {
        Self { clip, frame: 0 }
    }

    /// Frames made so far.
    pub fn frames(&self) -> u64 {
        self.frame
    }

    /// Appends the next frame's packets to `out`.
    pub fn next_frame(&mut self, out: &mut Vec<u8>) {
        let clip = self.clip;
        let pass = self.frame / clip.frames();
        let i = (self.frame % clip.frames()) as usize;
        self.frame += 1;
        let from = out.len();
        out.extend_from_slice(clip.frame(i));
        if pass == 0 {
            return;
        }
        let ticks =
            (u128::from(pass) * u128::from(clip.ticks()) % u128::from(TIMESTAMP_WRAP)) as u64;
        let cc_turns = (pass % 16) as u8;
        for packet in out
            .get_mut(from..)
            .unwrap_or_default()
            .chunks_exact_mut(TS_PACKET_LEN)
        {
            // Clip::parse checked every packet: neither fails.
            let Ok(pid) = Packet::new_checked(packet).map(|p| p.pid()) else {
                continue;
            };
            let _checked = shift_timestamps(packet, ticks);
            let cc = packet[3] & CC_MASK;
            let moved = cc.wrapping_add(clip.cc_step(pid).wrapping_mul(cc_turns)) & CC_MASK;
            packet[3] = packet[3] & !CC_MASK | moved;
        }
    }

    /// Skips to frame `frame` (of all passes), for the tests.
    #[cfg(test)]
    fn seek(&mut self, frame: u64) {
        self.frame = frame;
    }
}

#[cfg(test)]
mod tests;
