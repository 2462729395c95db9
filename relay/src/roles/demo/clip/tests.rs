use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use shoal_proto::ts::{Chunker, DEFAULT_CHUNK_SIZE, Mode};

use super::*;

const REQUIRED: &str = "ffmpeg and ffprobe are required (apt-get install ffmpeg)";

fn clip() -> &'static Clip {
    Clip::builtin().expect("the built-in clip")
}

/// `frames` frames from frame `from` on.
fn play(from: u64, frames: u64) -> Vec<u8> {
    let mut player = Player::new(clip());
    player.seek(from);
    let mut out = Vec::new();
    for _ in 0..frames {
        player.next_frame(&mut out);
    }
    out
}

/// What a stream's clocks and counters did, per PID, packet by packet.
#[derive(Debug, Default)]
struct Walk {
    /// Last continuity counter.
    cc: HashMap<u16, u8>,
    /// Last PCR base, and every step between PCRs.
    pcr: Option<u64>,
    pcr_steps: Vec<u64>,
    /// Last PTS per PID, and every step between them.
    pts: HashMap<u16, u64>,
    pts_steps: HashMap<u16, Vec<u64>>,
    /// Times a clock went round (a step measured modulo 2^33 whose plain
    /// difference is negative).
    wraps: usize,
}

impl Walk {
    fn of(bytes: &[u8]) -> Self {
        let mut walk = Self::default();
        for (i, bytes) in bytes.chunks_exact(TS_PACKET_LEN).enumerate() {
            let p = Packet::new_checked(bytes).expect("a packet");
            let pid = p.pid();
            let cc = p.continuity_counter();
            if let Some(last) = walk.cc.insert(pid, cc) {
                let expected = (last + u8::from(p.payload().is_some())) & 0x0F;
                assert_eq!(cc, expected, "packet {i}, PID {pid:#x}: continuity");
            }
            if let Some(pcr) = p.pcr() {
                let base = pcr / 300;
                if let Some(last) = walk.pcr.replace(base) {
                    let step = walk.step(last, base);
                    walk.pcr_steps.push(step);
                }
            }
            let header = p
                .payload()
                .filter(|_| p.payload_unit_start())
                .and_then(PesHeader::parse);
            if let Some(pts) = header.and_then(|h| h.pts)
                && let Some(last) = walk.pts.insert(pid, pts)
            {
                let step = walk.step(last, pts);
                walk.pts_steps.entry(pid).or_default().push(step);
            }
        }
        walk
    }

    /// From `a` to `b` modulo 2^33.
    fn step(&mut self, a: u64, b: u64) -> u64 {
        if b < a {
            self.wraps += 1;
        }
        (b + TIMESTAMP_WRAP - a) % TIMESTAMP_WRAP
    }

    /// Every clock moved forward at every step, by less than a second.
    fn assert_forward(&self) {
        let steps = self
            .pcr_steps
            .iter()
            .chain(self.pts_steps.values().flatten());
        for &step in steps {
            assert!((1..90_000).contains(&step), "a clock stepped {step} ticks");
        }
        assert!(!self.pcr_steps.is_empty());
    }

    fn video_pid(bytes: &[u8]) -> u16 {
        bytes
            .chunks_exact(TS_PACKET_LEN)
            .filter_map(|b| Packet::new_checked(b).ok())
            .find(|p| {
                p.payload_unit_start()
                    && p.payload()
                        .and_then(PesHeader::parse)
                        .is_some_and(|h| h.is_video())
            })
            .map(|p| p.pid())
            .expect("a video packet")
    }
}

#[test]
fn the_clip_is_four_seconds_of_whole_frames() {
    let clip = clip();
    assert_eq!(clip.frames(), 4 * FPS);
    assert_eq!(clip.ticks(), 4 * 90_000);
    assert!(ASSET.len() < 1 << 20, "the clip is {} bytes", ASSET.len());
    // The first pass is the clip itself.
    assert_eq!(play(0, clip.frames()), ASSET);
    // Every video frame starts a burst.
    for i in 1..clip.frames() as usize {
        let frame = clip.frame(i);
        let first = Packet::new_checked(&frame[..TS_PACKET_LEN]).expect("a packet");
        let header = first.payload().and_then(PesHeader::parse).expect("a PES");
        assert!(first.payload_unit_start() && header.is_video(), "frame {i}");
    }
}

#[test]
fn clocks_and_counters_continue_across_passes() {
    let clip = clip();
    let bytes = play(0, clip.frames() * 5 / 2);
    let walk = Walk::of(&bytes);
    walk.assert_forward();
    assert_eq!(walk.wraps, 0);
    // Video: one frame after another, exactly, across both joins.
    let video = Walk::video_pid(&bytes);
    let steps = &walk.pts_steps[&video];
    assert_eq!(steps.len() as u64, clip.frames() * 5 / 2 - 1);
    assert!(steps.iter().all(|&s| s == TICKS_PER_FRAME), "{steps:?}");
    // Audio (and any other stream with timestamps) too, if less evenly.
    assert!(walk.pts_steps.len() >= 2, "{:?}", walk.pts_steps.keys());
    // Packets of every PID were checked against their counters.
    assert!(walk.cc.len() >= 4, "{:?}", walk.cc);
}

#[test]
fn clocks_wrap_at_33_bits_and_go_on() {
    let clip = clip();
    let first_pts = Walk::of(clip.frame(0)).pts.values().copied().min();
    let first_pts = first_pts.expect("the first frame has a PTS");
    // The pass in which the video's PTS goes round, and the PCR soon after.
    let pass = (TIMESTAMP_WRAP - first_pts) / clip.ticks();
    let from = (pass - 1) * clip.frames() + clip.frames() / 2;
    let bytes = play(from, 2 * clip.frames());
    let walk = Walk::of(&bytes);
    walk.assert_forward();
    // The PCR and each stream's PTS wrapped once.
    assert!(walk.wraps >= 3, "{walk:?}");
    let video = Walk::video_pid(&bytes);
    assert!(walk.pts_steps[&video].iter().all(|&s| s == TICKS_PER_FRAME));
    // And a player takes the wrap too.
    let path = scratch("wrap");
    std::fs::write(&path, &bytes).expect("write the stream");
    let errors = ffmpeg_errors(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(errors, "", "ffmpeg decoding across the wrap");
}

#[test]
fn keyframe_chunks_once_a_second() {
    let clip = clip();
    let mut chunker = Chunker::new(Mode::MpegTs, DEFAULT_CHUNK_SIZE).expect("a chunker");
    let mut player = Player::new(clip);
    let mut frame = Vec::new();
    let mut keyframes = Vec::new();
    let passes = 2;
    for _ in 0..passes * clip.frames() {
        frame.clear();
        player.next_frame(&mut frame);
        chunker.handle_input(&frame);
        while let Some(chunk) = chunker.poll_chunk() {
            if chunk.keyframe {
                keyframes.push(chunk.payload);
            }
        }
    }
    // The stream's first chunk (the tables before the first IDR frame),
    // then one a second, each starting at the video's random access point.
    let seconds = passes * clip.frames() / FPS;
    assert_eq!(keyframes.len() as u64, 1 + seconds);
    for chunk in &keyframes[1..] {
        let p = Packet::new_checked(&chunk[..TS_PACKET_LEN]).expect("a packet");
        assert!(p.random_access_indicator());
        let header = p.payload().and_then(PesHeader::parse).expect("a PES");
        assert!(header.is_video());
    }
}

#[test]
fn two_and_a_half_passes_decode_cleanly_with_timestamps_in_step() {
    let clip = clip();
    let path = scratch("passes");
    std::fs::write(&path, play(0, clip.frames() * 5 / 2)).expect("write the stream");
    let errors = ffmpeg_errors(&path);
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=stream_index,pts"])
        .args(["-of", "csv=p=0"])
        .arg(&path)
        .output()
        .expect(REQUIRED);
    let _ = std::fs::remove_file(&path);
    assert_eq!(errors, "", "ffmpeg decoding two joins");
    assert!(probe.status.success(), "ffprobe {}", probe.status);
    // Each stream's packets step by one constant frame length throughout,
    // across the joins as inside a pass.
    let mut pts: HashMap<String, Vec<i64>> = HashMap::new();
    // Lines of "stream_index,pts," (side data adds a blank line).
    for line in String::from_utf8_lossy(&probe.stdout).lines() {
        let mut fields = line.split(',');
        let (Some(stream), Some(ts)) = (fields.next(), fields.next()) else {
            continue;
        };
        let ts = ts.parse().unwrap_or_else(|_| panic!("a pts in {line:?}"));
        pts.entry(stream.to_owned()).or_default().push(ts);
    }
    assert_eq!(pts.len(), 2, "video and audio: {:?}", pts.keys());
    for (stream, pts) in &pts {
        let steps: Vec<i64> = pts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(steps.len() > 100, "stream {stream}: {} packets", pts.len());
        assert!(
            steps.iter().all(|&s| s > 0 && s == steps[0]),
            "stream {stream}: steps {steps:?}"
        );
    }
}

/// A file name of its own in the temporary directory.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("shoal-demo-clip-{}-{name}.ts", std::process::id()))
}

/// What `ffmpeg -v error` says decoding `path`: empty when clean.
fn ffmpeg_errors(path: &std::path::Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect(REQUIRED);
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        text.push_str(&format!("(ffmpeg {})", out.status));
    }
    text
}
