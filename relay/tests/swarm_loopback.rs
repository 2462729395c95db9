//! The swarm over real sockets: a relay, a publisher and 50 ordinary
//! peers ([`Peer`]) on 127.0.0.1, each peer with its own UDP socket (and
//! so its own port), driven by two threads. A third of the peers upload
//! nothing; the rest offer two to five times the bitrate.
//!
//! Every peer must play exactly a tail of what was published, from its
//! first chunk to the end, with no gap; and the peers must carry most of
//! the stream: the relay sends the peers less than [`RELAY_SHARE_MAX`] ×
//! peers × stream bytes (serving each peer directly would take about
//! 1.3 ×, with FEC; measured here 0.082-0.097 in a release build, median
//! 0.088 over 10 runs on 2026-12-06, most of the spread in the first two
//! seconds, while the peers find their neighbours).

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use shoal_proto::integrity::PublisherKey;
use shoal_proto::peer::{Peer, PeerConfig, PeerStats};
use shoal_proto::publisher::{Publisher, PublisherConfig};
use shoal_proto::viewer::ViewerEvent;
use shoal_proto::wire::Codec;
use shoal_proto::{StreamId, Time};
use shoal_relay::io::BackendKind;
use support::*;

const PEERS: usize = 50;
/// Peer threads; the peers are split evenly between them.
const THREADS: usize = 2;
const BITRATE_BPS: u64 = 1_500_000;
const FPS: u32 = 30;
/// How long the publisher sends.
const PUBLISH: Duration = Duration::from_secs(9);
/// The whole test, from the relay's start, gives up after this.
const LIMIT: Duration = Duration::from_secs(60);
/// Longest `poll(2)` wait in a peer thread.
const MAX_WAIT: Duration = Duration::from_millis(10);
/// Most datagrams read from one socket per turn, so none starves the rest.
const READ_BURST: usize = 64;
/// Most the relay may send the peers, × peers × stream bytes. Issue 20's
/// goal is 0.1; a quiet machine gives 0.082-0.097 (median 0.088 at
/// 2026-12-06); the bound leaves room for a loaded CI machine, whose
/// slower peers find their neighbours later, and still fails the 0.137
/// of the peers that waited for a tick to act on what they learnt.
const RELAY_SHARE_MAX: f64 = 0.15;
/// Seconds in the relay's per-second breakdown.
const SECONDS_SHOWN: usize = 12;

/// How one peer did.
#[derive(Debug)]
struct Outcome {
    index: usize,
    addr: SocketAddr,
    upload_limit: u64,
    output: Vec<u8>,
    gaps: u64,
    ended: bool,
    stats: PeerStats,
    /// Bytes of every datagram the relay sent it.
    from_relay: u64,
    /// The same, per second since the test started (the last entry takes
    /// the rest): where the relay's share goes.
    relay_by_second: [u64; SECONDS_SHOWN],
}

/// One peer, its socket and what it played.
struct Node {
    peer: Peer,
    socket: UdpSocket,
    relay: SocketAddr,
    outcome: Outcome,
    subscribed: bool,
    /// When the test started.
    origin: Time,
}

impl Node {
    fn new(index: usize, relay: SocketAddr, stream: StreamId, origin: Time) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a peer's socket");
        socket.set_nonblocking(true).expect("nonblocking");
        let addr = socket.local_addr().expect("local address");
        let upload_limit = match index % 3 {
            0 => 0,
            k => BITRATE_BPS * (2 + (index as u64 / 3 + k as u64) % 4),
        };
        let mut config = PeerConfig::new(relay, stream);
        config.upload_limit_bps = upload_limit;
        config.nonce_seed = 0x5eed_0000 + index as u64;
        config.cookie_secret = [index as u8 ^ 0xa5; 32];
        config.window.wall_clock = wall_clock();
        let peer = Peer::new(config, now()).expect("a valid stream id");
        Self {
            peer,
            socket,
            relay,
            outcome: Outcome {
                index,
                addr,
                upload_limit,
                output: Vec::new(),
                gaps: 0,
                ended: false,
                stats: PeerStats::default(),
                from_relay: 0,
                relay_by_second: [0; SECONDS_SHOWN],
            },
            subscribed: false,
            origin,
        }
    }

    fn read(&mut self, buf: &mut [u8]) {
        for _ in 0..READ_BURST {
            let Ok((n, from)) = self.socket.recv_from(buf) else {
                // WouldBlock, or an ICMP error from an earlier send.
                return;
            };
            let now = now();
            if from == self.relay {
                self.outcome.from_relay += n as u64;
                let second = now.saturating_since(self.origin).as_secs() as usize;
                self.outcome.relay_by_second[second.min(SECONDS_SHOWN - 1)] += n as u64;
            }
            self.peer.handle_datagram(now, from, &buf[..n]);
        }
    }

    /// Runs due timers, sends, and takes events; counts first
    /// subscriptions and ends into the shared counters.
    fn drive(&mut self, now: Time, subscribed: &AtomicUsize, ended: &AtomicUsize) {
        if self.peer.poll_timeout().is_some_and(|t| t <= now) {
            self.peer.handle_timeout(now);
        }
        self.send();
        while let Some(event) = self.peer.poll_event() {
            match event {
                ViewerEvent::Subscribed { .. } if !self.subscribed => {
                    self.subscribed = true;
                    subscribed.fetch_add(1, Ordering::Relaxed);
                }
                ViewerEvent::Chunk { payload, .. } => {
                    self.outcome.output.extend_from_slice(&payload);
                }
                ViewerEvent::Gap { .. } => self.outcome.gaps += 1,
                ViewerEvent::EndOfStream if !self.outcome.ended => {
                    self.outcome.ended = true;
                    ended.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        // Events may have queued datagrams (a LEAVE at the end).
        self.send();
    }

    fn send(&mut self) {
        while let Some(t) = self.peer.poll_transmit() {
            // Loopback: a failed send is a lost datagram, which the
            // protocol repairs.
            let _ = self.socket.send_to(t.payload, t.dst);
        }
    }
}

/// Drives `indices`' peers until all `PEERS` peers have seen the end of
/// the stream or `deadline` passes; then they leave.
fn drive_peers(
    indices: Vec<usize>,
    relay: SocketAddr,
    stream: StreamId,
    subscribed: &AtomicUsize,
    ended: &AtomicUsize,
    deadline: Instant,
    origin: Time,
) -> Vec<Outcome> {
    let mut nodes: Vec<Node> = indices
        .into_iter()
        .map(|i| Node::new(i, relay, stream, origin))
        .collect();
    let mut fds: Vec<libc::pollfd> = nodes
        .iter()
        .map(|n| libc::pollfd {
            fd: n.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = vec![0u8; 65536];
    while ended.load(Ordering::Relaxed) < PEERS && Instant::now() < deadline {
        for (node, fd) in nodes.iter_mut().zip(&fds) {
            if fd.revents & libc::POLLIN != 0 {
                node.read(&mut buf);
            }
        }
        let now = now();
        for node in &mut nodes {
            node.drive(now, subscribed, ended);
        }
        let now = support::now();
        let wait = nodes
            .iter()
            .filter_map(|n| n.peer.poll_timeout())
            .min()
            .map_or(MAX_WAIT, |t| t.saturating_since(now))
            .clamp(Duration::from_millis(1), MAX_WAIT);
        for fd in &mut fds {
            fd.revents = 0;
        }
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a live Vec of initialised pollfd and its length
        // is what is passed; poll only writes their `revents`.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if ready < 0 {
            // EINTR: look at every socket next turn.
            for fd in &mut fds {
                fd.revents = libc::POLLIN;
            }
        }
    }
    nodes
        .into_iter()
        .map(|mut n| {
            n.peer.close();
            n.send();
            n.outcome.stats = n.peer.stats();
            n.outcome
        })
        .collect()
}

/// `len` bytes that differ everywhere, so a misplaced chunk cannot match.
fn stream_bytes(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// Publishes `bytes` in real time, one burst per frame, then ends the
/// stream.
fn publish(mut publisher: Publisher, socket: &UdpSocket, bytes: &[u8], frame: usize) {
    let frame_time = Duration::from_secs(1) / FPS;
    let pump = |p: &mut Publisher| {
        let now = now();
        if p.poll_timeout().is_some_and(|t| t <= now) {
            p.handle_timeout(now);
        }
        while let Some(t) = p.poll_transmit() {
            socket.send_to(t.payload, t.dst).expect("publisher sends");
        }
    };
    let started = Instant::now();
    for (i, chunk) in bytes.chunks(frame).enumerate() {
        let due = started + frame_time * u32::try_from(i).expect("frames");
        // Pacing, not synchronisation: a live source sends in real time.
        while Instant::now() < due {
            pump(&mut publisher);
            let timer = publisher
                .poll_timeout()
                .map_or(frame_time, |t| t.saturating_since(now()));
            let wait = due.saturating_duration_since(Instant::now()).min(timer);
            thread::sleep(wait.max(Duration::from_micros(200)));
        }
        publisher.handle_input(now(), chunk);
        pump(&mut publisher);
    }
    publisher.finish(now());
    pump(&mut publisher);
}

#[test]
fn fifty_peers_play_exactly_and_carry_most_of_the_stream() {
    let t0 = Instant::now();
    let origin = now();
    let deadline = t0 + LIMIT;
    let mut s = settings(BackendKind::Auto, 1);
    // Every peer is on 127.0.0.1; per-IP handshake limits are for the
    // internet.
    s.handshake_rate = 0;
    let server = start(&s);
    let relay = server.local_addr();

    let key = PublisherKey::from_seed([77; 32]);
    let config = PublisherConfig {
        codec: Codec::Opaque,
        // The media rate: peers size their upload slots by what DATA
        // takes on the wire, which they measure.
        bitrate_bps: BITRATE_BPS,
        wall_clock: wall_clock(),
        ..PublisherConfig::default()
    };
    let publisher = Publisher::new(key, config, vec![relay], now()).expect("publisher");
    let stream = publisher.stream_id();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the publisher");
    let frame = (BITRATE_BPS / 8 / u64::from(FPS)) as usize;
    let published = stream_bytes(frame * FPS as usize * PUBLISH.as_secs() as usize);

    let subscribed = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let crowds: Vec<_> = (0..THREADS)
        .map(|t| {
            let indices: Vec<usize> = (t..PEERS).step_by(THREADS).collect();
            let (subscribed, ended) = (Arc::clone(&subscribed), Arc::clone(&ended));
            thread::Builder::new()
                .name(format!("peers-{t}"))
                .spawn(move || {
                    drive_peers(
                        indices,
                        relay,
                        stream,
                        &subscribed,
                        &ended,
                        deadline,
                        origin,
                    )
                })
                .expect("start a peer thread")
        })
        .collect();

    // The relay holds subscriptions to a stream not yet live: once every
    // peer is in, each should play the stream from its first chunk.
    let in_time = Instant::now() + Duration::from_secs(15);
    while subscribed.load(Ordering::Relaxed) < PEERS && Instant::now() < in_time {
        thread::sleep(Duration::from_millis(10));
    }
    let n = subscribed.load(Ordering::Relaxed);
    assert_eq!(n, PEERS, "only {n} of {PEERS} peers subscribed in 15 s");
    let publish_started = Instant::now();
    let publish_at = publish_started.duration_since(t0);
    publish(publisher, &socket, &published, frame);
    let published_in = publish_started.elapsed();

    let mut outcomes: Vec<Outcome> = crowds
        .into_iter()
        .flat_map(|c| c.join().expect("a peer thread panicked"))
        .collect();
    outcomes.sort_by_key(|o| o.index);
    let ended_in = t0.elapsed();
    let snaps = metrics_until(&server, "the relay's counters", |_| true);
    server.shutdown();

    let total = |f: fn(&PeerStats) -> u64| outcomes.iter().map(|o| f(&o.stats)).sum::<u64>();
    eprintln!(
        "upload dropped {}, nack repaired {}, fec {}, lost {}, relay nack served {}; \
         from the relay: new DATA/PARITY {}, new MANIFESTs and DESCRIPTORs {}, duplicates {}",
        total(|s| s.upload_dropped),
        total(|s| s.viewer.nack_repaired),
        total(|s| s.viewer.fec_repaired),
        total(|s| s.viewer.lost),
        sum(&snaps, |w| w.relay.nack_served),
        total(|s| s.from_relay_payload_bytes),
        total(|s| s.from_relay_bytes - s.from_relay_payload_bytes),
        total(|s| s.duplicate_from_relay_payload_bytes),
    );
    for o in outcomes.iter().filter(|o| !o.ended) {
        eprintln!(
            "peer {} (upload {}): output {} of {} bytes, gaps {}, {:?}",
            o.index,
            o.upload_limit,
            o.output.len(),
            published.len(),
            o.gaps,
            o.stats
        );
    }
    // Exact playout.
    let n_ended = outcomes.iter().filter(|o| o.ended).count();
    assert_eq!(
        n_ended, PEERS,
        "only {n_ended} of {PEERS} peers saw the end of the stream within {LIMIT:?}"
    );
    let mut least = 1.0f64;
    for o in &outcomes {
        let who = format!(
            "peer {} at {} (upload limit {} bit/s)",
            o.index, o.addr, o.upload_limit
        );
        assert_eq!(o.gaps, 0, "{who}: gaps in its output");
        assert_eq!(o.stats.viewer.lost, 0, "{who}: lost chunks");
        assert!(!o.output.is_empty(), "{who}: played nothing");
        assert!(
            published.ends_with(&o.output),
            "{who}: its {} bytes are not the tail of the {} published",
            o.output.len(),
            published.len()
        );
        least = least.min(o.output.len() as f64 / published.len() as f64);
        if o.upload_limit == 0 {
            assert_eq!(o.stats.uploaded_bytes, 0, "{who}: a pure viewer uploaded");
        }
    }
    // Subscribed before the first chunk: nearly the whole stream.
    assert!(least > 0.5, "a peer played only {:.0}%", least * 100.0);

    // The relay's share.
    let stream_len = published.len() as u64;
    let relay_out: u64 = outcomes.iter().map(|o| o.from_relay).sum();
    let direct = PEERS as u64 * stream_len;
    let ratio = relay_out as f64 / direct as f64;
    let uploaded: u64 = outcomes.iter().map(|o| o.stats.uploaded_bytes).sum();
    let from_peers: u64 = outcomes.iter().map(|o| o.stats.from_peers_bytes).sum();
    let from_relay: u64 = outcomes.iter().map(|o| o.stats.from_relay_bytes).sum();
    let forwarded = sum(&snaps, |w| w.relay.forwarded_bytes);
    eprintln!(
        "swarm_loopback: {PEERS} peers, {stream_len} stream bytes in {:.1} s at {:.2} Mbit/s; \
         relay sent the peers {relay_out} bytes = {ratio:.3} x peers x stream bytes \
         (relay fan-out counter {forwarded}); peers uploaded {uploaded}; \
         new stream bytes {:.0}% from peers; least output {:.1}% of the stream; \
         all ended {:.1} s after start",
        published_in.as_secs_f64(),
        BITRATE_BPS as f64 / 1e6,
        100.0 * from_peers as f64 / (from_peers + from_relay).max(1) as f64,
        least * 100.0,
        ended_in.as_secs_f64(),
    );
    // Where the relay's bytes went, second by second: a second's bytes
    // over what serving every peer that second directly would take.
    let per_second = stream_len as f64 / PUBLISH.as_secs_f64() * PEERS as f64;
    let shares: Vec<String> = (0..SECONDS_SHOWN)
        .map(|s| {
            let bytes: u64 = outcomes.iter().map(|o| o.relay_by_second[s]).sum();
            format!("{:.2}", bytes as f64 / per_second)
        })
        .collect();
    eprintln!(
        "swarm_loopback: publishing began {:.2} s after the start; relay's share per second \
         (the last takes the rest): {}",
        publish_at.as_secs_f64(),
        shares.join(" ")
    );
    assert!(
        ratio < RELAY_SHARE_MAX,
        "the relay sent {relay_out} bytes, {ratio:.3} x peers x stream bytes: peers carried too little"
    );
}
