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
use std::ffi::c_uint;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::Context;
use shoal_proto::wire::{MessageType, peek_type};

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
/// Room for one UDP_SEGMENT control message.
// SAFETY: CMSG_SPACE is arithmetic on its argument; it touches no memory.
const GSO_CMSG_SPACE: usize = unsafe { libc::CMSG_SPACE(size_of::<u16>() as c_uint) } as usize;

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
    let gso = !args.no_gso && gso_supported(&sockets[0]);
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
        Some(_) => Some(shoal_relay::spoof::Spoofer::new().context(
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

/// Whether the kernel takes UDP_SEGMENT on this socket.
fn gso_supported(socket: &UdpSocket) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and sized for a c_int.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    rc == 0
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
        spoofer: &mut shoal_relay::spoof::Spoofer,
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

/// Train buffers and their `sendmmsg` headers, built once. The headers
/// point into the boxed buffers, whose heap memory never moves.
struct Batch {
    max_segments: usize,
    bufs: Box<[u8]>,
    iovs: Box<[libc::iovec]>,
    cmsgs: Box<[u8]>,
    hdrs: Box<[libc::mmsghdr]>,
    trains: Vec<(Train, usize)>,
}

impl Batch {
    fn new(max_segments: usize) -> Self {
        let per_train = MAX_TRAIN_BYTES.max(MAX_FLOOD_DATAGRAM);
        let mut bufs = vec![0u8; per_train * TRAINS_PER_CALL].into_boxed_slice();
        let iovs: Box<[libc::iovec]> = bufs
            .chunks_mut(per_train)
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: 0,
            })
            .collect();
        let cmsgs = vec![0u8; GSO_CMSG_SPACE * TRAINS_PER_CALL].into_boxed_slice();
        // SAFETY: mmsghdr is plain data; all-zero is valid (null pointers,
        // zero lengths).
        let hdrs = (0..TRAINS_PER_CALL)
            .map(|_| unsafe { std::mem::zeroed() })
            .collect();
        Self {
            max_segments,
            bufs,
            iovs,
            cmsgs,
            hdrs,
            trains: vec![(Train::default(), 0); TRAINS_PER_CALL],
        }
    }

    /// Writes train `i`: `segments` datagrams of `train`.
    fn fill(&mut self, i: usize, train: Train, segments: usize, crafter: &mut Crafter) {
        let per_train = self.bufs.len() / TRAINS_PER_CALL;
        let buf = &mut self.bufs[i * per_train..(i + 1) * per_train];
        for s in 0..segments {
            crafter.write(train, &mut buf[s * train.len..]);
        }
        self.iovs[i].iov_len = segments * train.len;
        self.trains[i] = (train, segments);
    }

    /// Sends the first `n` trains; returns how many the kernel took.
    fn send(&mut self, socket: &UdpSocket, n: usize) -> io::Result<usize> {
        for i in 0..n {
            let (train, segments) = self.trains[i];
            let h = &mut self.hdrs[i];
            h.msg_len = 0;
            h.msg_hdr.msg_name = std::ptr::null_mut();
            h.msg_hdr.msg_namelen = 0;
            h.msg_hdr.msg_iov = &raw mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            if segments > 1 {
                let cmsg = &mut self.cmsgs[i * GSO_CMSG_SPACE..(i + 1) * GSO_CMSG_SPACE];
                h.msg_hdr.msg_control = cmsg.as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = GSO_CMSG_SPACE as _;
                // SAFETY: msg_control points at GSO_CMSG_SPACE live bytes,
                // room for one cmsghdr carrying a u16, so CMSG_FIRSTHDR is
                // non-null and CMSG_DATA is within the buffer.
                unsafe {
                    let c = libc::CMSG_FIRSTHDR(&raw const h.msg_hdr);
                    (*c).cmsg_level = libc::SOL_UDP;
                    (*c).cmsg_type = libc::UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as c_uint) as _;
                    libc::CMSG_DATA(c)
                        .cast::<u16>()
                        .write_unaligned(train.len as u16);
                }
            } else {
                h.msg_hdr.msg_control = std::ptr::null_mut();
                h.msg_hdr.msg_controllen = 0;
            }
        }
        // SAFETY: the first `n` headers point at live iovecs over live
        // buffers (and live control buffers), all owned by `self`; the
        // socket is connected, so no name is needed.
        let rc = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as usize)
    }
}
