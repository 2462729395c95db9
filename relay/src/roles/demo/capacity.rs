//! Before the demo starts: can this machine carry the load asked for?
//!
//! The whole demo (relay, publisher, every viewer) shares this machine's
//! cores, and past what they carry viewers fall behind and lose chunks,
//! whatever the protocol does. So the demo measures, in about 150 ms at
//! start:
//!
//! 1. the protocol work one viewer does for one second of the stream:
//!    its window ingesting a second's blocks (a signature per block, a hash
//!    per chunk and parity symbol, FEC rebuilds at the loss asked for),
//!    in CPU time;
//! 2. the CPU time of one datagram through loopback UDP (a send and a
//!    receive), which every datagram of every viewer costs the relay and
//!    the viewer between them;
//! 3. how many cores this process can have right now: a busy thread per
//!    core for 100 ms, and the CPU time they got (another program's
//!    work shows here).
//!
//! A viewer costs (1) plus (2) times its datagrams a second; the demo's
//! own loops (poll, timers, NACK, the relay's bookkeeping) cost more
//! again, a factor [`OVERHEAD`] measured once. Over [`HEADROOM`] of (3)
//! the demo warns, before it starts, and says how many viewers fit. Measured at start
//! rather than a constant because the machines this runs on differ
//! (BENCHMARKS.md saw an Intel Xeon and an AMD EPYC of one kind of
//! machine) and share their cores with other work.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use shoal_proto::Time;
use shoal_proto::integrity::{PublisherKey, StreamKey};
use shoal_proto::publisher::{Publisher, PublisherConfig};
use shoal_proto::rng::Rng;
use shoal_proto::window::{Window, WindowConfig};
use shoal_proto::wire::{Codec, MessageType, peek_type};

use crate::sys::cpu::thread_cpu_time;

/// Blocks a measurement ingests: about a second of the default stream.
const BLOCKS: usize = 20;
/// Datagrams sent and received to time one.
const DATAGRAMS: usize = 1000;
/// Each of the two is measured this many times and the least kept: CPU
/// time does not count the time another program ran, but the first pass
/// pays for cold caches and page faults.
const TRIES: usize = 3;
/// How long the busy threads run.
const SPIN: Duration = Duration::from_millis(100);
/// What the demo costs per viewer beyond the measured work, as a factor:
/// the whole demo's CPU time (`/usr/bin/time`, user + system) grew by
/// 5.2 ms per viewer and second of stream from 20 to 140 viewers at 5%
/// loss, where the estimate was 3.0 ms (BENCHMARKS.md, "FEC codecs").
const OVERHEAD: f64 = 1.7;
/// Share of the cores the demo may need before it warns. Latency is in
/// the blocks' bursts: every viewer's share of a block arrives at once,
/// so a crowd thread busy on average 70% of the time is already late on
/// some of them.
const HEADROOM: f64 = 0.7;

/// What was measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// CPU time one viewer's protocol work takes per second of stream.
    viewer_work: Duration,
    /// CPU time of one datagram sent and received on loopback.
    datagram: Duration,
    /// Datagrams one viewer gets per second of stream.
    datagrams_per_sec: f64,
    /// Cores this process could have while measuring.
    cores: f64,
}

impl Measured {
    /// Cores `viewers` viewers need.
    fn need(&self, viewers: usize) -> f64 {
        let per_viewer =
            self.viewer_work.as_secs_f64() + self.datagram.as_secs_f64() * self.datagrams_per_sec;
        per_viewer * OVERHEAD * viewers as f64
    }

    /// Most viewers that fit.
    fn fit(&self) -> usize {
        let one = self.need(1);
        if one <= 0.0 {
            return usize::MAX;
        }
        (self.cores * HEADROOM / one) as usize
    }
}

/// Prints a warning when `viewers` viewers at `loss` (0 to 1) are more
/// than this machine can carry now; says nothing otherwise, or if the
/// measurement cannot be made.
pub fn warn_if_beyond(viewers: usize, loss: f64) {
    match measure(loss) {
        Ok(m) => {
            tracing::debug!(?m, need = m.need(viewers), fit = m.fit(), "demo capacity");
            if let Some(warning) = verdict(&m, viewers, loss) {
                eprintln!("{warning}");
            }
        }
        Err(e) => tracing::debug!(error = %e, "demo capacity not measured"),
    }
}

/// The warning for `viewers` at `loss`, if they do not fit.
fn verdict(m: &Measured, viewers: usize, loss: f64) -> Option<String> {
    let need = m.need(viewers);
    if need <= m.cores * HEADROOM {
        return None;
    }
    let fit = m.fit();
    let advice = if fit == 0 {
        "the machine is too busy for a demo now; try again later".to_owned()
    } else {
        format!("try --viewers {fit} or fewer")
    };
    Some(format!(
        "shoal demo: warning: {viewers} viewers at {:.0}% loss need about {need:.1} cores and \
         {:.1} are free now (measured: {:.0} µs of work per viewer a second, {:.1} µs per \
         datagram); viewers will fall behind and lose chunks: {advice}",
        loss * 100.0,
        m.cores,
        m.viewer_work.as_secs_f64() * 1e6,
        m.datagram.as_secs_f64() * 1e6,
    ))
}

fn measure(loss: f64) -> anyhow::Result<Measured> {
    let config = PublisherConfig {
        // The demo's stream, as bytes: ingest does not look inside.
        codec: Codec::Opaque,
        ..PublisherConfig::default()
    };
    let (k, m) = (usize::from(config.k), usize::from(config.m));
    let blocks_per_sec = config.bitrate_bps as f64 / 8.0 / f64::from(config.chunk_size) / k as f64;
    let mut block = Duration::MAX;
    let mut datagram = Duration::MAX;
    for _ in 0..TRIES {
        block = block.min(block_work(config, loss)?);
        datagram = datagram.min(one_datagram()?);
    }
    Ok(Measured {
        viewer_work: block.mul_f64(blocks_per_sec),
        datagram,
        // Chunks, parity and a manifest per block.
        datagrams_per_sec: blocks_per_sec * (k + m + 1) as f64,
        cores: free_cores(),
    })
}

/// CPU time a viewer's window takes per block of `config`'s stream, the
/// loss applied to its chunks and parity.
fn block_work(config: PublisherConfig, loss: f64) -> anyhow::Result<Duration> {
    let start = Time::from_micros(1_000_000);
    let k = usize::from(config.k);
    let chunk = usize::from(config.chunk_size);
    let key = PublisherKey::from_seed([0x5e; 32]);
    // A destination that is never a socket: the datagrams are taken from
    // the publisher's queue.
    let relay = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
    let mut publisher = Publisher::new(key, config, vec![relay], start)
        .map_err(|e| anyhow::anyhow!("no publisher to measure with: {e}"))?;
    let stream = StreamKey::new(publisher.stream_id())
        .map_err(|e| anyhow::anyhow!("no stream key to measure with: {e:?}"))?;
    let mut rng = Rng::new(0x0de3_0ca9);
    let mut input = vec![0u8; k * chunk];
    let mut blocks = Vec::with_capacity(BLOCKS);
    let mut now = start;
    for _ in 0..BLOCKS {
        for b in &mut input {
            *b = rng.next_u64() as u8;
        }
        now += Duration::from_millis(50);
        publisher.handle_input(now, &input);
        let mut datagrams = Vec::new();
        while let Some(t) = publisher.poll_transmit() {
            let keep = match peek_type(t.payload) {
                Ok(MessageType::Data | MessageType::Parity) => !rng.chance(loss),
                Ok(_) => true,
                Err(_) => false,
            };
            if keep {
                datagrams.push(t.payload.to_vec());
            }
        }
        blocks.push((now, datagrams));
    }

    let mut window = Window::new(stream, WindowConfig::default());
    let before = thread_cpu_time();
    for (now, datagrams) in &blocks {
        for d in datagrams {
            // A datagram refused costs its check like one taken.
            let _ = window.ingest(*now, d);
        }
        while window.poll_ready().is_some() {}
    }
    Ok((thread_cpu_time() - before) / BLOCKS as u32)
}

/// CPU time of one full-size datagram sent and received on loopback.
fn one_datagram() -> anyhow::Result<Duration> {
    let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    rx.set_read_timeout(Some(Duration::from_millis(100)))?;
    let to = rx.local_addr()?;
    let payload = [0x47u8; 1381];
    let mut buf = [0u8; 2048];
    let before = thread_cpu_time();
    // In rounds smaller than the socket's receive buffer.
    for _ in 0..DATAGRAMS / 50 {
        for _ in 0..50 {
            tx.send_to(&payload, to)?;
        }
        for _ in 0..50 {
            rx.recv_from(&mut buf)?;
        }
    }
    Ok((thread_cpu_time() - before) / DATAGRAMS as u32)
}

/// Cores this process gets now: a busy thread per core for [`SPIN`], and
/// the CPU time they had over the time they ran.
fn free_cores() -> f64 {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let spinners: Vec<_> = (0..cores)
        .map(|_| {
            thread::spawn(|| {
                let before = thread_cpu_time();
                let start = Instant::now();
                while start.elapsed() < SPIN {
                    std::hint::spin_loop();
                }
                (thread_cpu_time() - before).as_secs_f64() / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    spinners.into_iter().map(|s| s.join().unwrap_or(0.0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(cores: f64) -> Measured {
        Measured {
            viewer_work: Duration::from_micros(1500),
            datagram: Duration::from_micros(4),
            datagrams_per_sec: 375.0,
            cores,
        }
    }

    #[test]
    fn a_load_within_the_free_cores_is_not_warned() {
        // 3 ms a viewer a second, 5.1 with the overhead: 2 cores at 70%
        // carry 274.
        let m = measured(2.0);
        assert_eq!(m.fit(), 274);
        assert_eq!(verdict(&m, 274, 0.05), None);
    }

    #[test]
    fn a_load_beyond_says_how_many_fit() {
        let warning = verdict(&measured(2.0), 275, 0.05).expect("warned");
        assert!(warning.contains("275 viewers at 5% loss"), "{warning}");
        assert!(warning.contains("try --viewers 274"), "{warning}");
        let busy = verdict(&measured(0.001), 1, 0.0).expect("warned");
        assert!(busy.contains("too busy"), "{busy}");
    }

    #[test]
    fn the_measurement_is_made_and_plausible() -> anyhow::Result<()> {
        let m = measure(0.05)?;
        // A viewer's second of stream takes more than nothing and less
        // than a second, whatever the machine.
        assert!(m.viewer_work > Duration::ZERO, "{m:?}");
        assert!(m.viewer_work < Duration::from_secs(1), "{m:?}");
        assert!(m.datagram > Duration::ZERO, "{m:?}");
        assert!(m.cores > 0.0, "{m:?}");
        Ok(())
    }
}
