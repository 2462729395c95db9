//! The flooder's process: paced GSO trains from many ports at one relay.
//!
//! Every [`TICK`] it works out how many datagrams are due since the start
//! (`rate × elapsed`) and sends that many, in `sendmmsg` calls of up to
//! [`TRAINS_PER_CALL`] trains, each train one kind at one length with up
//! to [`MAX_SEGMENTS`] segments (UDP GSO: one send, one skb, split by the
//! kernel). Calls rotate over the sockets, so HELLOs and the rest come
//! from many source ports (and reach every relay worker). What the relay
//! answers (CHALLENGEs, REJECTs) is read back and counted. At the end the
//! [`FloodReport`] goes to stdout as one line of JSON.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::Context;
use shoal_proto::wire::{MessageType, peek_type};
use shoal_relay::sys::batch::{Outgoing, SendBatch};
use shoal_relay::sys::cmsg::GsoCmsg;
use shoal_relay::sys::spoof::Spoofer;

use super::mix::{Crafter, MAX_FLOOD_DATAGRAM, Train};
use super::{FloodArgs, FloodReport};
use crate::sys;

/// How often the pacer looks at the clock.
const TICK: Duration = Duration::from_micros(500);
/// Trains per `sendmmsg`.
const TRAINS_PER_CALL: usize = 8;
/// Segments per GSO train (the kernel takes up to 64).
const MAX_SEGMENTS: usize = 32;
/// Bytes per GSO train (one UDP datagram's worth of payload).
const MAX_TRAIN_BYTES: usize = 65_000;

/// Runs the flood `args` describe and prints its report.
pub fn run(args: &FloodArgs) -> anyhow::Result<()> {
    if !args.target.ip().is_loopback() {
        anyhow::bail!(
            "--target {}: the flood is for loopback only; use 127.0.0.1",
            args.target
        );
    }
    if !args.cpus.is_empty() {
        let _ = sys::pin_to(&args.cpus);
    }
    let sockets = (0..args.ports.max(1))
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").context("cannot bind a flood socket")?;
            s.connect(SocketAddr::V4(args.target))
                .context("cannot connect a flood socket")?;
            s.set_nonblocking(true)?;
            let _ = sys::set_buffer(&s, sys::Buffer::Send, 4 << 20);
            Ok(s)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let gso = !args.no_gso && shoal_relay::io::socket::gso_supported(&sockets[0]);
    let stream = super::parse_stream(&args.stream)?;
    let seed = u64::from(std::process::id()) ^ 0x5eed_f100d;
    let mut crafter = Crafter::new(seed, stream, args.epoch);
    crafter.only(&args.kinds);
    let mut sender = Sender {
        crafter,
        batch: Batch::new(if gso { MAX_SEGMENTS } else { 1 }),
        sent: BTreeMap::new(),
        failures: 0,
        replies: BTreeMap::new(),
    };

    let start = Instant::now();
    let end = start + args.duration;
    let mut total: u64 = 0;
    let mut turn = 0usize;
    let mut reply_buf = [0u8; 2048];
    let mut spoofer = match args.spoof_from {
        Some(_) => Some(Spoofer::new().context(
            "--spoof-from needs a raw socket: run as root (CAP_NET_RAW), or leave it out",
        )?),
        None => None,
    };
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let due = (args.rate as f64 * now.duration_since(start).as_secs_f64()) as u64;
        let socket = &sockets[turn % sockets.len()];
        turn += 1;
        // Bounded work per look at the clock, so the end is kept.
        let mut calls = 0;
        while total < due && calls < 64 {
            total += match (&mut spoofer, args.spoof_from) {
                (Some(spoofer), Some(from)) => {
                    sender.send_spoofed(spoofer, from, args.target, due - total)
                }
                _ => sender.send_call(socket, due - total),
            };
            calls += 1;
        }
        sender.read_replies(&sockets[turn % sockets.len()], &mut reply_buf);
        if total >= due {
            std::thread::sleep(TICK);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Answers still on their way.
    std::thread::sleep(Duration::from_millis(50));
    for s in &sockets {
        sender.read_replies(s, &mut reply_buf);
    }
    let report = FloodReport {
        rate_asked: args.rate,
        duration_s: elapsed,
        sent: total,
        achieved_pps: total as f64 / elapsed.max(1e-9),
        sent_by_kind: sender.sent,
        send_failures: sender.failures,
        replies: sender.replies,
        gso: gso && spoofer.is_none(),
        ports: if spoofer.is_some() { 0 } else { sockets.len() },
        spoofed_from: args.spoof_from.map(|a| a.to_string()),
    };
    println!(
        "{}",
        serde_json::to_string(&report).context("encoding the flood report")?
    );
    Ok(())
}

struct Sender {
    crafter: Crafter,
    batch: Batch,
    sent: BTreeMap<String, u64>,
    failures: u64,
    replies: BTreeMap<String, u64>,
}

impl Sender {
    /// Builds up to [`TRAINS_PER_CALL`] trains holding at most `budget`
    /// datagrams, sends them in one call, and returns how many datagrams
    /// the kernel took.
    fn send_call(&mut self, socket: &UdpSocket, budget: u64) -> u64 {
        let mut budget = budget;
        let mut trains = 0;
        while trains < TRAINS_PER_CALL && budget > 0 {
            let train = self.crafter.plan();
            let per_train = (MAX_TRAIN_BYTES / train.len).clamp(1, self.batch.max_segments);
            let segments = per_train.min(budget as usize);
            self.batch.fill(trains, train, segments, &mut self.crafter);
            budget -= segments as u64;
            trains += 1;
        }
        match self.batch.send(socket, trains) {
            Ok(n) => {
                let mut datagrams = 0;
                for (train, segments) in &self.batch.trains[..n] {
                    *self.sent.entry(train.kind.name().to_owned()).or_default() += *segments as u64;
                    datagrams += *segments as u64;
                }
                self.failures += (trains - n) as u64;
                datagrams
            }
            Err(_) => {
                self.failures += trains as u64;
                0
            }
        }
    }

    /// Sends up to `budget` datagrams (at most 256) one by one through a
    /// raw socket in `from`'s name; returns how many the kernel took.
    fn send_spoofed(
        &mut self,
        spoofer: &mut Spoofer,
        from: std::net::SocketAddrV4,
        to: std::net::SocketAddrV4,
        budget: u64,
    ) -> u64 {
        let mut buf = [0u8; MAX_FLOOD_DATAGRAM];
        let mut sent = 0;
        for _ in 0..budget.min(256) {
            let train = self.crafter.plan();
            self.crafter.write(train, &mut buf);
            match spoofer.send(from, to, &buf[..train.len]) {
                Ok(()) => {
                    *self.sent.entry(train.kind.name().to_owned()).or_default() += 1;
                    sent += 1;
                }
                Err(_) => self.failures += 1,
            }
        }
        sent
    }

    /// Counts what the relay sent back to `socket`.
    fn read_replies(&mut self, socket: &UdpSocket, buf: &mut [u8]) {
        for _ in 0..256 {
            let Ok(n) = socket.recv(buf) else {
                return;
            };
            let what = match peek_type(&buf[..n]) {
                Ok(MessageType::Challenge) => "challenge",
                Ok(MessageType::Reject) => "reject",
                Ok(MessageType::Accept) => "accept",
                _ => "other",
            };
            *self.replies.entry(what.to_owned()).or_default() += 1;
        }
    }
}

/// Train buffers, their GSO control messages and the `sendmmsg` headers,
/// built once.
struct Batch {
    max_segments: usize,
    bufs: Box<[u8]>,
    /// Bytes of train `i`, from `i * per_train` in `bufs`.
    lens: [usize; TRAINS_PER_CALL],
    cmsgs: [GsoCmsg; TRAINS_PER_CALL],
    headers: SendBatch,
    trains: Vec<(Train, usize)>,
}

impl Batch {
    /// Bytes of buffer per train.
    const PER_TRAIN: usize = if MAX_TRAIN_BYTES > MAX_FLOOD_DATAGRAM {
        MAX_TRAIN_BYTES
    } else {
        MAX_FLOOD_DATAGRAM
    };

    fn new(max_segments: usize) -> Self {
        Self {
            max_segments,
            bufs: vec![0u8; Self::PER_TRAIN * TRAINS_PER_CALL].into_boxed_slice(),
            lens: [0; TRAINS_PER_CALL],
            cmsgs: [GsoCmsg::new(0); TRAINS_PER_CALL],
            headers: SendBatch::new(TRAINS_PER_CALL),
            trains: vec![(Train::default(), 0); TRAINS_PER_CALL],
        }
    }

    /// Writes train `i`: `segments` datagrams of `train`.
    fn fill(&mut self, i: usize, train: Train, segments: usize, crafter: &mut Crafter) {
        let buf = &mut self.bufs[i * Self::PER_TRAIN..(i + 1) * Self::PER_TRAIN];
        for s in 0..segments {
            crafter.write(train, &mut buf[s * train.len..]);
        }
        self.lens[i] = segments * train.len;
        self.cmsgs[i].set_size(u16::try_from(train.len).unwrap_or(u16::MAX));
        self.trains[i] = (train, segments);
    }

    /// Sends the first `n` trains on the connected `socket`; returns how
    /// many the kernel took.
    fn send(&mut self, socket: &UdpSocket, n: usize) -> io::Result<usize> {
        let (bufs, lens, cmsgs, trains) = (&self.bufs, &self.lens, &self.cmsgs, &self.trains);
        let messages = (0..n.min(TRAINS_PER_CALL)).map(|i| Outgoing {
            to: None,
            payload: &bufs[i * Self::PER_TRAIN..][..lens[i]],
            gso: (trains[i].1 > 1).then_some(&cmsgs[i]),
        });
        self.headers.send(socket, messages, libc::MSG_DONTWAIT)
    }
}
