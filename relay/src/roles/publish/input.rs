//! Where `shoal publish` reads its stream: stdin, a file, or UDP.
//!
//! Each source runs on its own thread and hands byte batches to the main
//! loop over a bounded channel, so the main loop is free to run the
//! publisher's timers while a read blocks, and a slow network holds the
//! reader back instead of growing a queue.

use std::fs::File;
use std::io::{Read, Seek};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use shoal_proto::ts::{PROBE_LEN, SYNC_BYTE, TS_PACKET_LEN, looks_like_ts};

use super::pacing::{FALLBACK_BPS, Pacer};
use super::udp::{Drops, RateCap, UdpUrl};

/// The one-line complaint about input that is not a transport stream.
pub const NOT_TS: &str =
    "input is not MPEG-TS (no 0x47 sync every 188 bytes); use ffmpeg -f mpegts";

/// Batches in flight between a reader and the main loop.
const CHANNEL_DEPTH: usize = 64;

/// Read size: 348 TS packets, a few milliseconds of a typical stream.
const READ_LEN: usize = 348 * TS_PACKET_LEN;

/// Receive buffer asked for on UDP input: about 10 s of a 3 Mbit/s stream.
const UDP_RECV_BUFFER: usize = 4 << 20;

/// The largest UDP datagram.
const MAX_DATAGRAM: usize = 65_536;

/// A file without a PCR in this many bytes gets the fallback-rate warning.
const PCR_GRACE_BYTES: u64 = 256 * 1024;

/// What `--input` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input, fed as it arrives.
    Stdin,
    /// A recorded file, paced at its PCR rate.
    File(PathBuf),
    /// Datagrams arriving on an address (`ffmpeg -f mpegts udp://...`),
    /// from the senders and within the rate its URL allows.
    Udp(UdpUrl),
}

impl Source {
    /// Parses `-`, `udp://HOST:PORT[?QUERY]` or a path.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        if text == "-" {
            return Ok(Self::Stdin);
        }
        if let Some(rest) = text.strip_prefix("udp://") {
            return UdpUrl::parse(rest, text).map(Self::Udp);
        }
        Ok(Self::File(PathBuf::from(text)))
    }

    /// Whether the stream ends only when the sender goes quiet.
    pub fn is_udp(&self) -> bool {
        matches!(self, Self::Udp(_))
    }
}

/// What a reader hands the main loop.
#[derive(Debug)]
pub enum Input {
    /// Stream bytes, in order.
    Bytes(Vec<u8>),
    /// The source ended cleanly.
    End,
    /// The source failed; the message says how.
    Failed(String),
}

/// Opens `source` and starts its reader thread; `drops` counts what the
/// UDP input's filters turn away.
///
/// A file is checked for MPEG-TS here, before anything is sent; stdin and
/// UDP are checked by the caller as their first bytes arrive.
pub fn start(source: &Source, drops: &Arc<Drops>) -> anyhow::Result<Receiver<Input>> {
    let (tx, rx) = crossbeam_channel::bounded(CHANNEL_DEPTH);
    match source {
        Source::Stdin => {
            spawn("stdin", move || read_stream(std::io::stdin().lock(), &tx))?;
        }
        Source::File(path) => {
            let mut file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let mut prefix = Vec::with_capacity(PROBE_LEN);
            (&mut file)
                .take(PROBE_LEN as u64)
                .read_to_end(&mut prefix)
                .and_then(|_| file.rewind())
                .with_context(|| format!("cannot read {}", path.display()))?;
            if !looks_like_ts(&prefix) {
                anyhow::bail!("{NOT_TS}");
            }
            let name = path.display().to_string();
            spawn("file", move || read_paced(file, &name, &tx))?;
        }
        Source::Udp(url) => {
            let addr = url.listen;
            let socket = UdpSocket::bind(addr)
                .with_context(|| format!("--input udp://{addr}: cannot listen"))?;
            // The sender does not wait for us: room for bursts (a keyframe,
            // a stalled thread) keeps them from being dropped. The kernel may
            // grant less (net.core.rmem_max); that only costs headroom.
            let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(UDP_RECV_BUFFER);
            let url = url.clone();
            let drops = Arc::clone(drops);
            spawn("udp", move || read_udp(&socket, &url, &drops, &tx))?;
        }
    }
    Ok(rx)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> anyhow::Result<()> {
    thread::Builder::new()
        .name(format!("shoal-input-{name}"))
        .spawn(f)
        .context("cannot start the input thread")?;
    Ok(())
}

/// Feeds a pipe as it arrives.
fn read_stream(mut reader: impl Read, tx: &Sender<Input>) {
    loop {
        let mut buf = vec![0; READ_LEN];
        match reader.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Input::End);
                return;
            }
            Ok(n) => {
                buf.truncate(n);
                if tx.send(Input::Bytes(buf)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Input::Failed(format!("cannot read stdin: {e}")));
                return;
            }
        }
    }
}

/// Feeds a file at its own bitrate (see [`Pacer`]).
fn read_paced(mut file: File, name: &str, tx: &Sender<Input>) {
    let start = Instant::now();
    let mut pacer = Pacer::default();
    let mut warned = false;
    let mut read_total = 0u64;
    // Bytes read but not yet sent; a packet may straddle two reads.
    let mut pending = Vec::with_capacity(2 * READ_LEN);
    let mut buf = vec![0; READ_LEN];
    loop {
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.send(Input::Failed(format!("cannot read {name}: {e}")));
                return;
            }
        };
        let eof = n == 0;
        pending.extend_from_slice(&buf[..n]);
        read_total += n as u64;
        if !warned && !pacer.has_pcr() && (eof || read_total >= PCR_GRACE_BYTES) {
            warned = true;
            eprintln!(
                "shoal: warning: {name} has no PCR; sending it at {} kbit/s",
                FALLBACK_BPS / 1000
            );
        }
        let mut batch = Vec::with_capacity(pending.len());
        let mut at = 0;
        while at < pending.len() {
            let len = next_unit(&pending[at..], eof);
            if len == 0 {
                break;
            }
            let unit = &pending[at..at + len];
            let due = pacer.due(unit);
            if let Some(wait) = due.checked_sub(start.elapsed())
                && !wait.is_zero()
            {
                if !batch.is_empty() && tx.send(Input::Bytes(std::mem::take(&mut batch))).is_err() {
                    return;
                }
                thread::sleep(wait);
            }
            batch.extend_from_slice(unit);
            at += len;
        }
        pending.drain(..at);
        if !batch.is_empty() && tx.send(Input::Bytes(batch)).is_err() {
            return;
        }
        if eof {
            let _ = tx.send(Input::End);
            return;
        }
    }
}

/// Length of the next unit to pace: a whole TS packet, or the stray bytes
/// before the next sync byte; 0 when more bytes are needed to tell.
fn next_unit(bytes: &[u8], eof: bool) -> usize {
    if bytes.first() == Some(&SYNC_BYTE) {
        if bytes.len() >= TS_PACKET_LEN {
            TS_PACKET_LEN
        } else if eof {
            bytes.len()
        } else {
            0
        }
    } else {
        bytes[1..]
            .iter()
            .position(|&b| b == SYNC_BYTE)
            .map_or(if eof { bytes.len() } else { 0 }, |i| i + 1)
    }
}

/// Feeds datagrams as they arrive, those the URL's filters take; the main
/// loop decides when UDP input has ended.
fn read_udp(socket: &UdpSocket, url: &UdpUrl, drops: &Drops, tx: &Sender<Input>) {
    let mut buf = vec![0; MAX_DATAGRAM];
    let mut cap = url.max_rate.map(|rate| RateCap::new(rate, Instant::now()));
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                if !url.allows(from) {
                    drops.other_source.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if let Some(cap) = &mut cap
                    && !cap.admit(Instant::now(), n)
                {
                    drops.over_rate.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if tx.send(Input::Bytes(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Input::Failed(format!("cannot receive input: {e}")));
                return;
            }
        }
    }
}

/// How long UDP input may be silent before the stream is taken as over.
pub const UDP_IDLE_END: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(Source::parse("-").ok(), Some(Source::Stdin));
        assert!(matches!(
            Source::parse("udp://127.0.0.1:5000"),
            Ok(Source::Udp(url)) if url.listen == std::net::SocketAddr::from(([127, 0, 0, 1], 5000))
        ));
        assert_eq!(
            Source::parse("in.ts").ok(),
            Some(Source::File(PathBuf::from("in.ts")))
        );
        assert!(Source::parse("udp://nowhere").is_err());
    }

    #[test]
    fn units_are_packets_or_stray_bytes() {
        let mut bytes = vec![1, 2, 3, SYNC_BYTE];
        bytes.resize(4 + TS_PACKET_LEN, 0);
        assert_eq!(next_unit(&bytes, false), 3);
        assert_eq!(next_unit(&bytes[3..], false), TS_PACKET_LEN);
        assert_eq!(next_unit(&bytes[3..10], false), 0);
        assert_eq!(next_unit(&bytes[3..10], true), 7);
        assert_eq!(next_unit(&[1, 2], false), 0);
        assert_eq!(next_unit(&[1, 2], true), 2);
    }
}
