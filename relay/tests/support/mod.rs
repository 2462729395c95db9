//! Real parts for the relay's loopback tests: a relay on a chosen backend,
//! a publisher over a UDP socket, and light subscribers, each with its own
//! socket and source address, that do the real handshake and record what
//! they get.

#![allow(dead_code, reason = "each test binary uses part of the support")]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use shoal_proto::StreamId;
use shoal_proto::integrity::PublisherKey;
use shoal_proto::publisher::{Publisher, PublisherConfig};
use shoal_proto::wire::{
    Codec, DataView, HELLO_MIN_LEN, Hello, Keepalive, Message, MessageType, Nack, NackEntry,
    NackKind, SUPPORTED_VERSIONS, Subscribe, peek_type,
};
use shoal_relay::io::BackendKind;
use shoal_relay::server::Server;
use shoal_relay::server::config::{RelayArgs, Settings};
use shoal_relay::server::metrics::WorkerSnapshot;

/// Fails the test loudly if this machine lacks what a backend needs:
/// tests never skip.
pub fn require(backend: BackendKind) {
    if backend == BackendKind::Uring
        && let Err(why) = shoal_relay::io::uring::probe()
    {
        panic!("io_uring is required for this test and is not usable here: {why}");
    }
}

/// Settings for a loopback test relay.
pub fn settings(backend: BackendKind, workers: usize) -> Settings {
    let mut s = Settings::load(&RelayArgs::default()).expect("default settings");
    s.listen = "127.0.0.1:0".parse().expect("addr");
    s.backend = backend;
    s.workers = workers;
    s.metrics = None;
    s.pin = false;
    s
}

pub fn start(settings: &Settings) -> Server {
    require(settings.backend);
    let server = Server::start(settings).expect("relay starts");
    let expected = match settings.backend {
        BackendKind::Uring => "uring",
        BackendKind::Mmsg => "mmsg",
        BackendKind::Auto => server.backend(),
    };
    assert_eq!(server.backend(), expected);
    server
}

pub use shoal_relay::os::{now, wall_clock};

/// The sum of the workers' latest counters, waiting (bounded) until `until`
/// holds for them.
pub fn metrics_until(
    server: &Server,
    what: &str,
    until: impl Fn(&[WorkerSnapshot]) -> bool,
) -> Vec<WorkerSnapshot> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snaps = server.metrics().snapshots();
        if until(&snaps) {
            return snaps;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for metrics: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn sum(snaps: &[WorkerSnapshot], f: impl Fn(&WorkerSnapshot) -> u64) -> u64 {
    snaps.iter().map(f).sum()
}

/// A publisher with its own socket; input is opaque bytes, one byte value
/// per chunk so every chunk differs.
pub struct Source {
    pub publisher: Publisher,
    pub socket: UdpSocket,
    pub stream: StreamId,
    fed: u64,
}

impl Source {
    pub fn new(relays: Vec<SocketAddr>, seed: u8) -> Self {
        let key = PublisherKey::from_seed([seed; 32]);
        let config = PublisherConfig {
            codec: Codec::Opaque,
            wall_clock: wall_clock(),
            ..PublisherConfig::default()
        };
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let publisher = Publisher::new(key, config, relays, now()).expect("publisher");
        let stream = publisher.stream_id();
        let mut s = Self {
            publisher,
            socket,
            stream,
            fed: 0,
        };
        s.pump();
        s
    }

    /// Feeds one full block of chunks and sends what the publisher made.
    pub fn block(&mut self) {
        let chunk = usize::from(PublisherConfig::default().chunk_size);
        let k = PublisherConfig::default().k;
        for _ in 0..k {
            let byte = (self.fed % 251) as u8;
            self.publisher.handle_input(now(), &vec![byte; chunk]);
            self.fed += 1;
        }
        self.pump();
    }

    /// Runs timers and sends what is queued.
    pub fn pump(&mut self) {
        let now = now();
        if self.publisher.poll_timeout().is_some_and(|t| t <= now) {
            self.publisher.handle_timeout(now);
        }
        while let Some(tx) = self.publisher.poll_transmit() {
            self.socket.send_to(tx.payload, tx.dst).expect("send");
        }
    }

    /// Ends the stream.
    pub fn finish(&mut self) {
        self.publisher.finish(now());
        self.pump();
    }

    /// Chunks fed so far.
    pub fn chunks(&self) -> u64 {
        self.fed
    }

    /// The bytes fed so far, in order: what a viewer of the whole stream
    /// writes out.
    pub fn bytes(&self) -> Vec<u8> {
        let chunk = usize::from(PublisherConfig::default().chunk_size);
        (0..self.fed)
            .flat_map(|i| std::iter::repeat_n((i % 251) as u8, chunk))
            .collect()
    }

    /// The seq of the next chunk: a run's seqs count from its epoch.
    pub fn next_seq(&self) -> u64 {
        self.publisher.epoch() + self.fed
    }
}

/// The loopback address of subscriber `i`: each its own IP, as viewers on
/// the internet are (the relay limits handshakes per IP).
pub fn sub_addr(i: usize) -> SocketAddr {
    let i = i + 1;
    let ip = Ipv4Addr::new(127, 10, (i / 250) as u8, (i % 250 + 1) as u8);
    SocketAddr::new(IpAddr::V4(ip), 0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    Hello,
    Subscribing,
    Subscribed,
    Left,
}

/// A light subscriber.
pub struct Sub {
    pub socket: UdpSocket,
    pub relay: SocketAddr,
    pub stream: StreamId,
    pub state: SubState,
    pub start_seq: Option<u64>,
    /// The session id from ACCEPT (0 before it).
    pub session: u64,
    /// DATA sequence numbers in arrival order.
    pub seqs: Vec<u64>,
    /// DATA datagrams by sequence number (when `keep` is set).
    pub data: HashMap<u64, Vec<u8>>,
    pub keep: bool,
    /// Every other datagram's type, in arrival order.
    pub others: Vec<MessageType>,
    pub bytes_in: u64,
    nonce: u64,
    last_hello: Option<Instant>,
}

impl Sub {
    pub fn new(i: usize, relay: SocketAddr, stream: StreamId) -> Self {
        let socket = UdpSocket::bind(sub_addr(i)).expect("bind a subscriber");
        socket.set_nonblocking(true).expect("nonblocking");
        Self {
            socket,
            relay,
            stream,
            state: SubState::Hello,
            start_seq: None,
            session: 0,
            seqs: Vec::new(),
            data: HashMap::new(),
            keep: false,
            others: Vec::new(),
            bytes_in: 0,
            nonce: i as u64 + 1,
            last_hello: None,
        }
    }

    pub fn send(&self, msg: &Message<'_>) {
        let mut buf = vec![0; msg.buffer_len()];
        let n = msg.emit(&mut buf).expect("emit");
        self.socket.send_to(&buf[..n], self.relay).expect("send");
    }

    /// Sends HELLO now and then until a CHALLENGE comes.
    pub fn tick(&mut self) {
        if self.state == SubState::Hello
            && self
                .last_hello
                .is_none_or(|t| t.elapsed() > Duration::from_millis(300))
        {
            self.last_hello = Some(Instant::now());
            self.send(&Message::Hello(Hello {
                versions: SUPPORTED_VERSIONS,
                nonce: self.nonce,
                padded_len: HELLO_MIN_LEN as u16,
            }));
        }
    }

    pub fn keepalive(&self) {
        self.send(&Message::Keepalive(Keepalive {
            stream: self.stream,
            session: self.session,
            highest_seq: self.seqs.last().copied().unwrap_or(0),
            lost: 0,
            fec_repaired: 0,
            nack_repaired: 0,
            latency_us: 0,
        }));
    }

    pub fn nack(&self, start: u64, len: u16) {
        let mut n = Nack::new(self.stream, self.session);
        n.push(NackEntry {
            kind: NackKind::Chunks,
            start,
            len,
        });
        self.send(&Message::Nack(n));
    }

    /// Reads everything waiting on the socket.
    pub fn read(&mut self) {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = self.socket.recv_from(&mut buf) {
            if from != self.relay {
                continue;
            }
            self.bytes_in += n as u64;
            self.on_datagram(&buf[..n]);
        }
    }

    fn on_datagram(&mut self, d: &[u8]) {
        match peek_type(d) {
            Ok(MessageType::Data) => {
                if let Ok(v) = DataView::new_checked(d) {
                    let seq = v.fields().seq;
                    self.seqs.push(seq);
                    if self.keep {
                        self.data.insert(seq, d.to_vec());
                    }
                }
            }
            Ok(ty) => {
                self.others.push(ty);
                match Message::parse(d) {
                    Ok(Message::Challenge(c)) if self.state == SubState::Hello => {
                        self.state = SubState::Subscribing;
                        self.send(&Message::Subscribe(Subscribe {
                            stream: self.stream,
                            clubs: u64::MAX,
                            start_seq: None,
                            cookie: c.cookie,
                            token: &[],
                        }));
                    }
                    Ok(Message::Accept(a)) => {
                        self.state = SubState::Subscribed;
                        self.start_seq = Some(a.start_seq);
                        self.session = a.session;
                    }
                    Ok(Message::Leave(l)) if l.session == self.session => {
                        self.state = SubState::Left
                    }
                    _ => {}
                }
            }
            Err(_) => {}
        }
    }

    /// Whether it got exactly `from..to`, each once, in order.
    pub fn got_in_order(&self, from: u64, to: u64) -> bool {
        self.seqs.len() as u64 == to - from && self.seqs.iter().zip(from..to).all(|(&a, b)| a == b)
    }
}

/// Waits for readable sockets among `subs` (bounded by `timeout`).
pub fn wait_readable(subs: &[Sub], timeout: Duration) {
    let mut fds: Vec<libc::pollfd> = subs
        .iter()
        .map(|s| libc::pollfd {
            fd: s.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(1000) as i32;
    // SAFETY: `fds` is a live, correctly sized array of pollfd.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
}

/// Drives `subs` (handshakes, reading) and calls `step` each round until it
/// says the test is done or `limit` passes; returns whether it was done.
pub fn drive(subs: &mut [Sub], limit: Duration, mut step: impl FnMut(&mut [Sub]) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        for s in subs.iter_mut() {
            s.tick();
            s.read();
        }
        if step(subs) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        wait_readable(subs, Duration::from_millis(5));
    }
}

/// Subscribes every `sub` (bounded).
pub fn subscribe_all(subs: &mut [Sub]) {
    let ok = drive(subs, Duration::from_secs(10), |s| {
        s.iter().all(|s| s.state == SubState::Subscribed)
    });
    let n = subs
        .iter()
        .filter(|s| s.state != SubState::Subscribed)
        .count();
    assert!(ok, "{n} subscribers not accepted in time");
}
pub mod backends;
pub mod browser;
pub mod cdp;
pub mod cli;
pub mod firefox;
pub mod launch;
pub mod netns;
pub mod page;
