//! `shoal publish`: send a live MPEG-TS stream to one or more relays.
//!
//! A reader thread ([`input`]) turns stdin, a file or UDP into byte
//! batches; the main loop owns the [`Publisher`] state machine and one UDP
//! socket. Each turn: feed input or run timers, then send every queued
//! datagram, then wait for input until the publisher's next timer, the next
//! status line or a signal check, whichever is first. End of input (EOF,
//! five quiet seconds on UDP, SIGINT or SIGTERM) flushes the last block
//! with end of stream flagged, sends it, and exits 0 (1 if no relay was
//! taking datagrams by then). A second SIGINT or SIGTERM exits at once.
//!
//! A relay that is down never ends the publish while input flows: its
//! datagrams are dropped and it is retried with backoff ([`links`]), with
//! a line on stderr once a second until it is back.

mod input;
mod links;
mod pacing;
mod pages;
mod status;
mod udp;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::os;

use crossbeam_channel::RecvTimeoutError;
use shoal_proto::Time;
use shoal_proto::fec;
use shoal_proto::publisher::{Publisher, PublisherConfig};
use shoal_proto::ts::{PROBE_LEN, looks_like_ts};
use shoal_proto::wire::MAX_CLUBS;

use self::input::{Input, NOT_TS, Source, UDP_IDLE_END};
use self::status::{Losses, Status};
use super::keygen::load_key;
use crate::dht::record::{RecordContent, RecordKeeper};
use crate::dht::{DhtArgs, DhtOptions};

/// Longest wait between signal checks.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// `shoal publish` flags.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The stream key, from `shoal keygen --out FILE`.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// A relay to send to, as HOST:PORT; repeat for several.
    #[arg(long = "relay", value_name = "ADDR", required = true)]
    pub relays: Vec<String>,
    /// The stream: `-` for stdin, a file (paced at its PCR rate), or
    /// `udp://HOST:PORT` to listen for `ffmpeg -f mpegts udp://...`.
    ///
    /// UDP takes ffmpeg's query syntax: `?sources=IP[,IP...]` (or
    /// `source=`; an IP:PORT names one socket) takes datagrams only from
    /// those senders, and `max_rate=RATE` (such as 20Mbit, or off) caps
    /// the input rate; the default cap is 100Mbit. What either turns away
    /// is dropped and counted on the status line.
    #[arg(long, value_name = "INPUT", default_value = "-")]
    pub input: String,
    /// Forward error correction as K,M: M parity symbols per K chunks.
    ///
    /// The default 16,4 costs 25% extra and repairs any 4 losses among 16
    /// chunks without a round trip: enough for a few percent random loss
    /// with short bursts. At 3 Mbit/s a 16-chunk block fills in about
    /// 56 ms, so FEC adds little delay; larger K spreads the same overhead
    /// over longer bursts but waits longer per block.
    #[arg(long, value_name = "K,M", default_value = "16,4", value_parser = parse_fec)]
    pub fec: Fec,
    /// A partly filled chunk is sent at most this long after its first
    /// byte (e.g. 20ms, 1s, 500us).
    #[arg(long, value_name = "TIME", default_value = "20ms", value_parser = parse_duration)]
    pub chunk_time: Duration,
    /// Clubs: the substreams the swarm carries the stream in, chunk `n` in
    /// club `n % CLUBS`; each uploading peer forwards whole clubs.
    ///
    /// Fewer clubs make each club's tree of peers shallower and a lost
    /// chunk noticed sooner, but a club takes more upload: a peer must
    /// offer at least a quarter more than bitrate / CLUBS to forward one.
    /// In the swarm simulator (1 Mbit/s, 10,000 peers) 6 rather than 8
    /// clubs cut p99 latency by 80-100 ms at the same useful offload
    /// (BENCHMARKS.md, "Issue 20, fourteenth session").
    #[arg(long, value_name = "CLUBS", default_value_t = 8, value_parser = parse_clubs)]
    pub clubs: u8,
    /// No status line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// The publisher keeps a signed record of its relays on the BitTorrent
    /// Mainline DHT, under the stream key, so viewers find them by the
    /// stream id alone.
    #[command(flatten)]
    pub dht: DhtArgs,
}

/// Chunks and parity symbols per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fec {
    /// DATA chunks per block.
    pub k: u8,
    /// Parity symbols per block.
    pub m: u8,
}

/// Runs `shoal publish`.
pub fn run(args: &PublishArgs) -> anyhow::Result<()> {
    let relays = args
        .relays
        .iter()
        .map(|r| resolve_relay(r))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let key = load_key(&args.key)?;
    let source = Source::parse(&args.input)?;
    let config = PublisherConfig {
        k: args.fec.k,
        m: args.fec.m,
        chunk_time: args.chunk_time,
        clubs: args.clubs,
        wall_clock: os::wall_clock(),
        ..PublisherConfig::default()
    };
    let links = links::Links::open(&relays)?;
    let stop = super::stop::StopFlag::install()?.shared();
    let input_drops = Arc::new(udp::Drops::default());
    let inputs = input::start(&source, &input_drops)?;
    let stream = key.stream_id();
    let seed = key.seed();
    let publisher = Publisher::new(key, config, relays.clone(), os::now())
        .map_err(|e| anyhow::anyhow!("--fec / --chunk-time / --clubs: {e}"))?;
    let record = keep_record(&args.dht, seed, &relays, publisher.descriptor(), args.quiet)?;
    if !args.quiet {
        let named: Vec<(String, SocketAddr)> = args
            .relays
            .iter()
            .cloned()
            .zip(relays.iter().copied())
            .collect();
        pages::show(&named, stream);
    }
    let banner = format!(
        "shoal: publishing stream {stream} to {} relay(s)",
        relays.len()
    );
    let mut session = Session {
        publisher,
        links,
        status: Status::new(args.quiet),
        probe: (!matches!(source, Source::File(_))).then(Vec::new),
        banner: (!args.quiet).then_some(banner),
        send_errors: 0,
        input_drops,
    };
    let result = session.run(&inputs, &stop, source.is_udp());
    if let Some(keeper) = record {
        keeper.stop();
    }
    result
}

/// Starts keeping the stream's entry-point record on the DHT, unless
/// `--no-dht`. On the public DHT, loopback relays are left out of it (no
/// one else could reach them), and with only those there is no record.
fn keep_record(
    dht: &DhtArgs,
    seed: [u8; 32],
    relays: &[SocketAddr],
    descriptor: &[u8],
    quiet: bool,
) -> anyhow::Result<Option<RecordKeeper>> {
    let Some(options) = DhtOptions::from_args(dht)? else {
        return Ok(None);
    };
    let entry_points: Vec<SocketAddr> = relays
        .iter()
        .filter(|a| options.is_local() || !a.ip().is_loopback())
        .copied()
        .collect();
    if entry_points.is_empty() {
        if !quiet {
            eprintln!(
                "shoal: no DHT record: every --relay is a loopback address, which no one on \
                 the public DHT can reach (give --dht-bootstrap for a local DHT; --no-dht \
                 silences this)"
            );
        }
        return Ok(None);
    }
    let descriptor_hash = shoal_proto::wire::Descriptor::parse(descriptor)
        .map(|d| shoal_proto::entry::descriptor_hash(&d))
        .unwrap_or([0; 32]);
    let content = RecordContent {
        entry_points,
        descriptor_hash,
    };
    RecordKeeper::start(&options, seed, content, quiet).map(Some)
}

/// One publish, from first input to the last datagram.
struct Session {
    publisher: Publisher,
    links: links::Links,
    status: Status,
    /// The first bytes of stdin or UDP input, held until they show whether
    /// the input is MPEG-TS; `None` once it is known to be.
    probe: Option<Vec<u8>>,
    /// Printed once the input proves good, so a bad input gets one line.
    banner: Option<String>,
    send_errors: u64,
    /// What the UDP input's filters turned away.
    input_drops: Arc<udp::Drops>,
}

impl Session {
    fn run(
        &mut self,
        inputs: &crossbeam_channel::Receiver<Input>,
        stop: &AtomicBool,
        udp: bool,
    ) -> anyhow::Result<()> {
        let mut last_input: Option<Time> = None;
        loop {
            self.send_all();
            if self.publisher.is_finished() {
                break;
            }
            let now = os::now();
            self.report(now);
            if stop.load(Ordering::Relaxed) {
                self.end(now)?;
                continue;
            }
            let idle_end = last_input.filter(|_| udp).map(|t| t + UDP_IDLE_END);
            let deadline = [
                self.publisher.poll_timeout(),
                idle_end,
                Some(self.status.next()),
                Some(now + SIGNAL_POLL),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + SIGNAL_POLL);
            match inputs.recv_timeout(deadline.saturating_since(now)) {
                Ok(Input::Bytes(bytes)) => {
                    let now = os::now();
                    last_input = Some(now);
                    self.feed(now, bytes)?;
                }
                Ok(Input::End) | Err(RecvTimeoutError::Disconnected) => {
                    self.end(os::now())?;
                }
                Ok(Input::Failed(message)) => anyhow::bail!("{message}"),
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = os::now();
            if idle_end.is_some_and(|t| now >= t) {
                self.end(now)?;
            } else if self.publisher.poll_timeout().is_some_and(|t| now >= t) {
                self.publisher.handle_timeout(now);
            }
        }
        self.status
            .print_final(self.publisher.stats(), &self.losses());
        match self.links.refused_at_end(os::now()) {
            Some(why) => anyhow::bail!(why),
            None => Ok(()),
        }
    }

    /// Takes input bytes, holding the first few until they prove to be TS.
    fn feed(&mut self, now: Time, bytes: Vec<u8>) -> anyhow::Result<()> {
        let Some(probe) = &mut self.probe else {
            self.take_input(now, &bytes);
            return Ok(());
        };
        probe.extend_from_slice(&bytes);
        if probe.len() >= PROBE_LEN {
            self.release_probe(now)?;
        }
        Ok(())
    }

    fn release_probe(&mut self, now: Time) -> anyhow::Result<()> {
        if let Some(probe) = self.probe.take() {
            if probe.is_empty() {
                anyhow::bail!("input is empty; nothing to publish");
            }
            if !looks_like_ts(&probe) {
                anyhow::bail!("{NOT_TS}");
            }
            self.take_input(now, &probe);
        }
        Ok(())
    }

    fn take_input(&mut self, now: Time, bytes: &[u8]) {
        if let Some(banner) = self.banner.take() {
            eprintln!("{banner}");
        }
        self.publisher.handle_input(now, bytes);
    }

    /// End of input: the last block goes out with end of stream flagged.
    fn end(&mut self, now: Time) -> anyhow::Result<()> {
        self.release_probe(now)?;
        self.publisher.finish(now);
        Ok(())
    }

    /// Sends every queued datagram; a relay that refuses costs its own
    /// datagrams only (see [`links`]).
    fn send_all(&mut self) {
        let now = os::now();
        while let Some(transmit) = self.publisher.poll_transmit() {
            if self.links.send(now, transmit.dst, transmit.payload) == links::Fate::Failed {
                self.send_errors += 1;
            }
        }
    }

    /// Once a second: the status line, and a line per relay that is down
    /// or has just come back (even with `--quiet`: these are faults).
    fn report(&mut self, now: Time) {
        if !self.status.due(now) {
            return;
        }
        for outage in self.links.outages(now) {
            match outage {
                links::Report::Down(addr, lasted) => eprintln!(
                    "shoal publish: relay {addr} unreachable for {} s; still publishing, retrying",
                    lasted.as_secs()
                ),
                links::Report::Back(addr, lasted) => eprintln!(
                    "shoal publish: relay {addr} is back after {} s unreachable; sending to it again",
                    lasted.as_secs()
                ),
            }
        }
        let losses = self.losses();
        self.status.print(now, self.publisher.stats(), &losses);
    }

    fn losses(&self) -> Losses {
        let (other_source, over_rate) = self.input_drops.read();
        Losses {
            send_errors: self.send_errors,
            relay_unreachable: self.links.dropped(),
            other_source,
            over_rate,
        }
    }
}

fn resolve_relay(text: &str) -> anyhow::Result<SocketAddr> {
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--relay {text:?}: not an address; use HOST:PORT such as 127.0.0.1:7400"
            )
        })
}

fn parse_fec(text: &str) -> Result<Fec, String> {
    let bad = || {
        format!(
            "use K,M with 1 <= K <= {} and M <= {}, such as 16,4",
            fec::MAX_K,
            fec::MAX_M
        )
    };
    let (k, m) = text.split_once(',').ok_or_else(bad)?;
    let k: u8 = k.trim().parse().map_err(|_| bad())?;
    let m: u8 = m.trim().parse().map_err(|_| bad())?;
    if k == 0 || usize::from(k) > fec::MAX_K || usize::from(m) > fec::MAX_M {
        return Err(bad());
    }
    Ok(Fec { k, m })
}

fn parse_clubs(text: &str) -> Result<u8, String> {
    match text.trim().parse::<u8>() {
        Ok(n) if (1..=MAX_CLUBS).contains(&n) => Ok(n),
        _ => Err(format!(
            "use a whole number from 1 to {MAX_CLUBS}, such as 8"
        )),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    match crate::units::duration(text) {
        Ok(d) if d.is_zero() => Err("must be more than zero; use a time such as 20ms".to_owned()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fec_flags_parse() {
        assert_eq!(parse_fec("16,4"), Ok(Fec { k: 16, m: 4 }));
        assert_eq!(parse_fec("1,0"), Ok(Fec { k: 1, m: 0 }));
        for bad in ["", "16", "0,4", "16,x", "300,4", "16;4"] {
            assert!(parse_fec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn club_counts_parse() {
        assert_eq!(parse_clubs("8"), Ok(8));
        assert_eq!(parse_clubs("1"), Ok(1));
        assert_eq!(parse_clubs("64"), Ok(64));
        for bad in ["", "0", "65", "x", "-1", "6.5"] {
            assert!(parse_clubs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        for bad in ["", "20", "0ms", "xms", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relays_resolve_or_say_how() {
        assert_eq!(
            resolve_relay("127.0.0.1:7400").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 7400)))
        );
        let err = resolve_relay("x").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("--relay \"x\": not an address; use HOST:PORT such as 127.0.0.1:7400")
        );
    }
}
