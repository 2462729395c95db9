//! One stream's live MPEG-TS for HTTP readers: what a local viewer plays,
//! fanned out through a bounded ring, with a clean start for whoever joins.
//!
//! A reader that joins gets the stream's latest PAT and PMT packets, then
//! every chunk since the newest keyframe (the backlog), then the live
//! chunks. Each reader has its own place in a ring of [`RING`] chunks
//! (tokio's broadcast channel): a reader that falls that far behind loses
//! its place and jumps to the next keyframe, PAT and PMT again first, and
//! the jump is counted; the viewer, the data plane and the other readers
//! never wait for it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::broadcast;

/// Chunks a reader may fall behind before it jumps: about 3 s at 3 Mbit/s
/// (1316-byte chunks).
pub const RING: usize = 1024;
/// Most chunks kept since the newest keyframe for a reader that joins
/// (a long group of pictures is cut there).
const BACKLOG: usize = 2048;
const PACKET: usize = 188;
const PAT_PID: u16 = 0;

/// A played chunk.
#[derive(Debug, Clone)]
pub struct Piece {
    /// Its bytes: whole TS packets.
    pub bytes: Bytes,
    /// It starts with a keyframe.
    pub keyframe: bool,
}

impl Piece {
    /// The piece that ends a feed.
    pub fn is_end(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// One stream's feed. Shared by the viewer task that fills it and the
/// readers that drain it.
#[derive(Debug)]
pub struct Feed {
    tx: broadcast::Sender<Piece>,
    state: Mutex<State>,
    /// Readers now.
    pub readers: AtomicU64,
    /// Jumps readers made after falling behind, since start.
    pub jumps: AtomicU64,
    /// The feed's viewer: publisher-to-play latency of its newest chunk in
    /// ms (`u64::MAX` before one), chunks repaired (FEC and NACK), lost.
    pub latency_ms: AtomicU64,
    pub repaired: AtomicU64,
    pub lost: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// From the newest keyframe on.
    backlog: VecDeque<Piece>,
    /// The latest PAT packet, and the PMT PIDs it names.
    pat: Option<[u8; PACKET]>,
    pmt_pids: Vec<u16>,
    /// The latest packet of each PMT.
    pmts: Vec<(u16, [u8; PACKET])>,
    ended: bool,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(RING).0,
            state: Mutex::new(State::default()),
            readers: AtomicU64::new(0),
            jumps: AtomicU64::new(0),
            latency_ms: AtomicU64::new(u64::MAX),
            repaired: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }
}

impl Feed {
    /// A chunk the viewer played, `latency` after the publisher cut it.
    pub fn push(&self, bytes: Vec<u8>, keyframe: bool, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX - 1);
        self.latency_ms.store(ms, Ordering::Relaxed);
        let piece = Piece {
            bytes: Bytes::from(bytes),
            keyframe,
        };
        {
            let mut s = self.lock();
            s.learn_tables(&piece.bytes);
            if keyframe {
                s.backlog.clear();
            }
            if s.backlog.len() < BACKLOG && (keyframe || !s.backlog.is_empty()) {
                s.backlog.push_back(piece.clone());
            }
        }
        // No reader is not an error.
        let _ = self.tx.send(piece);
    }

    /// The stream ended: readers get what is left, then the end (an
    /// empty piece).
    pub fn end(&self) {
        self.lock().ended = true;
        let _ = self.tx.send(Piece {
            bytes: Bytes::new(),
            keyframe: false,
        });
    }

    /// Whether anything has been played into it yet.
    pub fn started(&self) -> bool {
        let s = self.lock();
        s.pat.is_some() || !s.backlog.is_empty()
    }

    /// Whether the stream ended.
    pub fn ended(&self) -> bool {
        self.lock().ended
    }

    /// A new reader: its clean start (tables, then the backlog from the
    /// newest keyframe; empty before the first keyframe, or while the
    /// tables are not all known yet, as when the feed has just started
    /// in the middle of the stream) and its place in the ring, taken at
    /// the same moment so nothing is lost or doubled.
    pub fn join(&self) -> (Vec<Bytes>, broadcast::Receiver<Piece>) {
        let s = self.lock();
        let rx = self.tx.subscribe();
        let mut start = s.tables();
        if !start.is_empty() && !s.backlog.is_empty() {
            start.extend(s.backlog.iter().map(|p| p.bytes.clone()));
        } else {
            start.clear();
        }
        (start, rx)
    }

    /// The tables alone, for a reader that jumps: empty until the PAT and
    /// every PMT it names have been seen.
    pub fn tables(&self) -> Vec<Bytes> {
        self.lock().tables()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a reader's jump.
    pub fn jumped(&self) {
        self.jumps.fetch_add(1, Ordering::Relaxed);
    }
}

impl State {
    /// PAT, then every PMT it names; empty while any is missing.
    fn tables(&self) -> Vec<Bytes> {
        let Some(pat) = self.pat else {
            return Vec::new();
        };
        let known = |pid: &u16| self.pmts.iter().any(|(p, _)| p == pid);
        if !self.pmt_pids.iter().all(known) {
            return Vec::new();
        }
        let mut out = vec![Bytes::copy_from_slice(&pat)];
        out.extend(self.pmts.iter().map(|(_, pmt)| Bytes::copy_from_slice(pmt)));
        out
    }

    /// Keeps the newest PAT, and the newest packet of every PMT it names
    /// that starts a section (tables that fit one packet, as live muxers
    /// write them).
    fn learn_tables(&mut self, bytes: &[u8]) {
        for packet in bytes.chunks_exact(PACKET) {
            let Ok(packet) = <[u8; PACKET]>::try_from(packet) else {
                continue;
            };
            if packet[0] != 0x47 || packet[1] & 0x40 == 0 {
                continue;
            }
            let pid = u16::from_be_bytes([packet[1] & 0x1F, packet[2]]);
            if pid == PAT_PID {
                if let Some(pids) = pat_pmt_pids(&packet) {
                    self.pat = Some(packet);
                    self.pmts.retain(|(p, _)| pids.contains(p));
                    self.pmt_pids = pids;
                }
            } else if self.pmt_pids.contains(&pid) {
                match self.pmts.iter_mut().find(|(p, _)| *p == pid) {
                    Some((_, kept)) => *kept = packet,
                    None => self.pmts.push((pid, packet)),
                }
            }
        }
    }
}

/// The PMT PIDs a PAT packet names, if it holds a whole PAT section.
fn pat_pmt_pids(packet: &[u8; PACKET]) -> Option<Vec<u16>> {
    // Header 4 bytes; an adaptation field, then the pointer field.
    let mut at = 4;
    if packet[3] & 0x20 != 0 {
        at += 1 + usize::from(*packet.get(4)?);
    }
    let pointer = usize::from(*packet.get(at)?);
    let section = packet.get(at + 1 + pointer..)?;
    if *section.first()? != 0x00 {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([*section.get(1)?, *section.get(2)?]) & 0x0FFF);
    // After section_length: 5 bytes of header, the entries, a 4-byte CRC.
    let entries = section.get(8..3 + length.checked_sub(4)?)?;
    Some(
        entries
            .chunks_exact(4)
            .filter(|e| u16::from_be_bytes([e[0], e[1]]) != 0)
            .map(|e| u16::from_be_bytes([e[2] & 0x1F, e[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::ts::{STREAM_TYPE_H264, pat_packet, pmt_packet};

    /// A PAT naming one program with its PMT on PID 0x1000, and that PMT.
    fn testutil_tables() -> ([u8; PACKET], [u8; PACKET]) {
        let pat = pat_packet(0, 1, &[(1, 0x1000)]).expect("fits");
        let pmt = pmt_packet(0x1000, 0, 1, 0x100, &[(STREAM_TYPE_H264, 0x100)]).expect("fits");
        (pat, pmt)
    }

    #[test]
    fn a_late_reader_starts_with_the_tables_and_the_newest_keyframe() {
        let feed = Feed::default();
        let (pat, pmt) = testutil_tables();
        let mut first = pat.to_vec();
        first.extend_from_slice(&pmt);
        feed.push(first, true, Duration::ZERO);
        feed.push(vec![0x47; PACKET], false, Duration::ZERO);
        feed.push(vec![0x48; PACKET], true, Duration::ZERO);
        feed.push(vec![0x49; PACKET], false, Duration::ZERO);
        let (start, mut rx) = feed.join();
        assert_eq!(
            start.len(),
            4,
            "PAT, PMT, then two chunks from the keyframe"
        );
        assert_eq!(&start[0][..], &pat[..]);
        assert_eq!(&start[1][..], &pmt[..]);
        assert_eq!(start[2][0], 0x48);
        assert_eq!(start[3][0], 0x49);
        feed.push(vec![0x4a; PACKET], false, Duration::ZERO);
        let next = rx.try_recv().expect("the live chunk");
        assert_eq!(next.bytes[0], 0x4a);
    }

    #[test]
    fn before_any_keyframe_a_reader_gets_no_backlog() {
        let feed = Feed::default();
        feed.push(vec![0x47; PACKET], false, Duration::ZERO);
        let (start, _rx) = feed.join();
        assert!(start.is_empty());
    }

    #[test]
    fn a_feed_that_started_mid_stream_gives_no_start_until_it_has_the_tables() {
        let feed = Feed::default();
        let (pat, pmt) = testutil_tables();
        // A keyframe before any PAT: nothing to start from.
        feed.push(vec![0x47; PACKET], true, Duration::ZERO);
        assert!(feed.join().0.is_empty());
        assert!(feed.tables().is_empty());
        // The PAT alone names a PMT not seen yet: still nothing.
        feed.push(pat.to_vec(), false, Duration::ZERO);
        assert!(feed.join().0.is_empty());
        assert!(feed.tables().is_empty());
        // With its PMT the tables are whole; the next keyframe starts.
        feed.push(pmt.to_vec(), false, Duration::ZERO);
        assert_eq!(feed.tables().len(), 2);
        feed.push(vec![0x48; PACKET], true, Duration::ZERO);
        let (start, _rx) = feed.join();
        assert_eq!(start.len(), 3, "PAT, PMT, keyframe");
        assert_eq!(&start[0][..], &pat[..]);
        assert_eq!(start[2][0], 0x48);
    }
}
