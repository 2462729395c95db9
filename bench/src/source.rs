//! The source: a real [`Publisher`] fed a frame's worth of bytes at a time,
//! `fps` times a second, as an encoder does: opaque bytes, or with HTTP
//! readers a synthetic MPEG-TS ([`crate::ts`]) that the relay's web face
//! can start them on. Every datagram it makes goes to the relay over one
//! UDP socket; each DATA seq's send time goes into the shared ring first.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shoal_relay::os;

use anyhow::Context;
use shoal_proto::StreamId;
use shoal_proto::integrity::PublisherKey;
use shoal_proto::publisher::{Publisher, PublisherConfig};
use shoal_proto::wire::{Codec, DataView, MessageType, peek_type};

use crate::shared::{Phase, Shared};
use crate::sys;
use crate::ts::StampedTs;

/// The key is fixed: a benchmark needs no secret, and a fixed stream id
/// makes runs comparable.
const KEY_SEED: [u8; 32] = *b"shoal-bench source key, not real";

/// Longest sleep between looks at the phase.
const MAX_SLEEP: Duration = Duration::from_millis(5);

/// What the source sends.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Where to send.
    pub relay: SocketAddr,
    /// Stream bitrate (payload), bits per second.
    pub bitrate_bps: u64,
    /// Frames per second.
    pub fps: u32,
    /// Chunk payload bytes.
    pub chunk: u16,
    /// FEC block: data chunks and parity symbols.
    pub fec: (u8, u8),
    /// CPUs to run on; empty to leave the thread unpinned.
    pub cpus: Vec<usize>,
    /// Send the stamped MPEG-TS of [`crate::ts`] instead of opaque bytes
    /// (`chunk` must then be a multiple of 188).
    pub stamped_ts: bool,
}

/// What the source did.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceReport {
    /// Datagrams sent, of every type.
    pub datagrams: u64,
    /// DATA chunks sent.
    pub chunks: u64,
    /// Datagrams sent during the measurement.
    pub measured_datagrams: u64,
    /// Sends that failed.
    pub send_errors: u64,
    /// Times the source fell more than a second behind its frame clock and
    /// skipped ahead (the generator CPU was overloaded).
    pub stalls: u64,
}

/// The stream the source publishes.
pub fn stream_id() -> StreamId {
    PublisherKey::from_seed(KEY_SEED).stream_id()
}

/// Starts the source thread. It runs until the phase reaches
/// [`Phase::Drain`], then records the end of the sequence range.
pub fn spawn(
    config: SourceConfig,
    shared: Arc<Shared>,
) -> anyhow::Result<JoinHandle<anyhow::Result<SourceReport>>> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("cannot bind the source's socket")?;
    if let Ok(addr) = socket.local_addr() {
        shared
            .source_port
            .store(u64::from(addr.port()), std::sync::atomic::Ordering::Release);
    }
    // Bursts of a whole frame: let the kernel queue them rather than block.
    let _ = sys::set_buffer(&socket, sys::Buffer::Send, 8 << 20);
    std::thread::Builder::new()
        .name("bench-source".into())
        .spawn(move || run(&config, &socket, &shared))
        .context("cannot start the source thread")
}

fn run(config: &SourceConfig, socket: &UdpSocket, shared: &Shared) -> anyhow::Result<SourceReport> {
    if !config.cpus.is_empty() {
        let _ = sys::pin_to(&config.cpus);
    }
    let publisher_config = PublisherConfig {
        codec: if config.stamped_ts {
            Codec::MpegTs
        } else {
            Codec::Opaque
        },
        chunk_size: config.chunk,
        bitrate_bps: config.bitrate_bps,
        k: config.fec.0,
        m: config.fec.1,
        wall_clock: os::wall_clock(),
        ..PublisherConfig::default()
    };
    let mut publisher = Publisher::new(
        PublisherKey::from_seed(KEY_SEED),
        publisher_config,
        vec![config.relay],
        os::now(),
    )
    .context("cannot make the publisher")?;
    shared
        .epoch
        .store(publisher.epoch(), std::sync::atomic::Ordering::Release);
    let mut frames = FrameClock::new(config.bitrate_bps, config.fps, Instant::now());
    let mut frame = Vec::new();
    let mut stamped = config.stamped_ts.then(|| StampedTs::new(config.fps));
    let mut report = SourceReport::default();
    let mut end_seq = 0;
    let mut measuring = false;
    loop {
        match shared.phase() {
            Phase::Warmup => {}
            Phase::Measure => {
                measuring = true;
                if shared.first_seq() == crate::shared::UNSET {
                    // The queue was drained last turn: every seq from here
                    // on is sent after this store.
                    shared.set_first_seq(publisher.next_seq());
                }
            }
            Phase::Drain | Phase::Baseline | Phase::Stop => break,
        }
        let now = Instant::now();
        if let Some(bytes) = frames.due(now) {
            frame.clear();
            match &mut stamped {
                Some(ts) => ts.frame(bytes, shared.clock.now(), &mut frame),
                None => frame.resize(bytes, (frames.index % 251) as u8),
            }
            publisher.handle_input(os::now(), &frame);
        }
        if frames.take_stalled() {
            report.stalls += 1;
        }
        let now = os::now();
        if publisher.poll_timeout().is_some_and(|t| t <= now) {
            publisher.handle_timeout(now);
        }
        while let Some(tx) = publisher.poll_transmit() {
            if peek_type(tx.payload) == Ok(MessageType::Data)
                && let Ok(data) = DataView::new_checked(tx.payload)
            {
                let seq = data.fields().seq;
                shared.sent.record(seq, shared.clock.now());
                shared
                    .newest_seq
                    .store(seq, std::sync::atomic::Ordering::Relaxed);
                end_seq = end_seq.max(seq + 1);
                report.chunks += 1;
            }
            match socket.send_to(tx.payload, tx.dst) {
                Ok(_) => {
                    report.datagrams += 1;
                    report.measured_datagrams += u64::from(measuring);
                }
                Err(_) => report.send_errors += 1,
            }
        }
        let wake = frames.next_at();
        let timer = publisher
            .poll_timeout()
            .map(|t| Duration::from_micros(t.as_micros().saturating_sub(os::now().as_micros())));
        let sleep = wake
            .saturating_duration_since(Instant::now())
            .min(timer.unwrap_or(MAX_SLEEP))
            .min(MAX_SLEEP);
        if !sleep.is_zero() {
            std::thread::sleep(sleep);
        }
    }
    shared.set_end_seq(end_seq);
    Ok(report)
}

/// When each frame is due and how many bytes it carries: frame `i` ends at
/// byte `bitrate * (i + 1) / 8 / fps`, so the rate is exact over any span
/// even when a frame is not a whole number of bytes.
#[derive(Debug)]
struct FrameClock {
    bitrate_bps: u64,
    fps: u32,
    start: Instant,
    /// The next frame to send.
    index: u64,
    stalled: bool,
}

impl FrameClock {
    fn new(bitrate_bps: u64, fps: u32, start: Instant) -> Self {
        Self {
            bitrate_bps,
            fps,
            start,
            index: 0,
            stalled: false,
        }
    }

    fn at(&self, index: u64) -> Instant {
        self.start + Duration::from_secs(1).mul_f64(index as f64 / f64::from(self.fps))
    }

    fn next_at(&self) -> Instant {
        self.at(self.index)
    }

    fn bytes_before(&self, index: u64) -> u64 {
        (u128::from(self.bitrate_bps) * u128::from(index) / (8 * u128::from(self.fps))) as u64
    }

    /// The byte count of the frame due by `now`, if one is. A clock more
    /// than a second behind skips ahead instead of bursting to catch up.
    fn due(&mut self, now: Instant) -> Option<usize> {
        if now < self.next_at() {
            return None;
        }
        if now.saturating_duration_since(self.next_at()) > Duration::from_secs(1) {
            let behind = now.saturating_duration_since(self.start).as_secs_f64();
            self.index = (behind * f64::from(self.fps)) as u64;
            self.stalled = true;
        }
        let bytes = self.bytes_before(self.index + 1) - self.bytes_before(self.index);
        self.index += 1;
        Some(bytes as usize)
    }

    /// Whether the clock skipped since the last call.
    fn take_stalled(&mut self) -> bool {
        std::mem::take(&mut self.stalled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_add_up_to_the_bitrate() {
        let start = Instant::now();
        let mut clock = FrameClock::new(3_000_000, 30, start);
        let mut bytes = 0;
        let mut frames = 0;
        let mut now = start;
        while now < start + Duration::from_secs(1) {
            while let Some(b) = clock.due(now) {
                bytes += b;
                frames += 1;
            }
            now += Duration::from_millis(1);
        }
        assert_eq!(frames, 30);
        assert_eq!(bytes, 3_000_000 / 8);
        assert!(!clock.take_stalled());
    }

    #[test]
    fn a_stalled_clock_skips_ahead() {
        let start = Instant::now();
        let mut clock = FrameClock::new(8_000, 10, start);
        assert_eq!(clock.due(start), Some(100));
        let late = start + Duration::from_secs(5);
        assert!(clock.due(late).is_some());
        assert!(clock.take_stalled());
        assert!(clock.due(late).is_none(), "one frame, not fifty");
    }
}
