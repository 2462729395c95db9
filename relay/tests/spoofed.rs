//! A subscribe from a spoofed source gets no stream data: the address
//! never proved it can receive, so the relay sends it nothing but
//! handshake replies, at most one per datagram and no larger than what
//! arrived in its name. Every session message a spoofer could send in a
//! victim's name is tried: HELLO, SUBSCRIBE with a guessed cookie,
//! KEEPALIVE, a NACK asking for the whole window, PEERS, HAVE, MEMBER,
//! INTRODUCE and LEAVE.
//!
//!
//! Session messages are bound to their subscription (SPEC §11.4): a
//! spoofer who knows a real viewer's address, and guesses session ids,
//! sends LEAVE, KEEPALIVE, NACK, PEERS, HAVE, MEMBER and INTRODUCE in its
//! name, and LEAVE END_OF_STREAM or SHUTTING_DOWN and final REJECTs "from
//! the relay" to it; and keeps sending KEEPALIVEs in the name of a
//! subscriber that went away. The viewer plays the stream to its end
//! byte for byte on its one subscription, the departed one expires on
//! time, and each spoofed datagram is counted as `bad_session` (or
//! `not_subscribed` once there is no subscription).
//!
//! Spoofing is real here: a raw IPv4 socket (root) writes UDP datagrams
//! whose source is a victim socket's loopback address.

mod support;

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use shoal_proto::StreamId;
use shoal_proto::publisher::PublisherConfig;
use shoal_proto::viewer::{Viewer, ViewerConfig, ViewerEvent};
use shoal_proto::wire::{
    Cookie, HELLO_MIN_LEN, Have, Hello, Introduce, Keepalive, Leave, LeaveReason, Member, Message,
    MessageType, Nack, NackEntry, NackKind, Peers, Query, Reject, RejectReason, SUPPORTED_VERSIONS,
    Subscribe, peek_type,
};
use shoal_relay::io::BackendKind;
use support::*;

/// A raw socket that sends in anyone's name (root).
struct Spoofer(shoal_relay::sys::spoof::Spoofer);

impl Spoofer {
    fn new() -> Self {
        Self(
            shoal_relay::sys::spoof::Spoofer::new()
                .expect("a raw socket is needed to spoof (run as root)"),
        )
    }

    /// Sends `payload` as UDP from `src` to `dst`.
    fn send(&mut self, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) {
        self.0.send(src, dst, payload).expect("raw send");
    }
}

fn encode(msg: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0; msg.buffer_len()];
    let n = msg.emit(&mut buf).expect("emit");
    buf.truncate(n);
    buf
}

fn spoofed_subscribe_gets_no_data(backend: BackendKind) {
    let server = start(&settings(backend, 2));
    let SocketAddr::V4(relay) = server.local_addr() else {
        panic!("the test relay listens on IPv4");
    };
    let mut source = Source::new(vec![server.local_addr()], 6);
    // A real subscriber, to show the stream flows.
    let mut subs = vec![Sub::new(0, server.local_addr(), source.stream)];
    subscribe_all(&mut subs);

    // The victim: an address that never asked for anything.
    let victim = UdpSocket::bind("127.0.0.77:0").expect("bind victim");
    victim.set_nonblocking(true).expect("nonblocking");
    let SocketAddr::V4(victim_addr) = victim.local_addr().expect("addr") else {
        panic!("IPv4");
    };
    let mut spoofer = Spoofer::new();
    let hello = encode(&Message::Hello(Hello {
        versions: SUPPORTED_VERSIONS,
        nonce: 9,
        padded_len: HELLO_MIN_LEN as u16,
    }));
    // The attacker cannot see the CHALLENGE sent to the victim, so it
    // guesses a cookie.
    let subscribe = encode(&Message::Subscribe(Subscribe {
        stream: source.stream,
        clubs: u64::MAX,
        start_seq: None,
        cookie: Cookie {
            issued_at_us: now().as_micros(),
            tag: [0x5a; 16],
        },
        token: &[],
    }));
    let query = encode(&Message::Query(Query { nonce: 9 }));
    let mut volley = vec![hello, subscribe, query];
    volley.extend(session_messages(
        source.stream,
        0x5a5a_5a5a_5a5a_5a5a,
        subs[0].socket.local_addr().expect("addr"),
    ));
    let mut spoofed_bytes = 0u64;
    let mut spoofed_datagrams = 0usize;
    let mut victim_bytes = 0u64;
    let mut victim_types = Vec::new();
    let blocks = 4;
    let mut sent = 0;
    let mut last = Instant::now();
    let done = drive(&mut subs, Duration::from_secs(20), |subs| {
        if sent < blocks && last.elapsed() >= Duration::from_millis(50) {
            last = Instant::now();
            for d in &volley {
                spoofer.send(victim_addr, relay, d);
                spoofed_bytes += d.len() as u64;
                spoofed_datagrams += 1;
            }
            source.block();
            sent += 1;
        }
        source.pump();
        let mut buf = [0u8; 2048];
        while let Ok(n) = victim.recv(&mut buf) {
            victim_bytes += n as u64;
            victim_types.push(peek_type(&buf[..n]));
        }
        sent == blocks && subs[0].seqs.len() >= blocks * 16
    });
    assert!(done, "the real subscriber got the stream");
    let snaps = metrics_until(&server, "bad cookies counted", |m| {
        sum(m, |w| w.relay.drop_bad_cookie) >= blocks as u64
    });
    assert_eq!(sum(&snaps, |w| w.relay.drop_bad_cookie), blocks as u64);
    // Drain what is still in flight to the victim.
    let mut buf = [0u8; 2048];
    while let Ok(n) = victim.recv(&mut buf) {
        victim_bytes += n as u64;
        victim_types.push(peek_type(&buf[..n]));
    }
    assert!(
        victim_types.iter().all(|t| matches!(
            t,
            Ok(MessageType::Challenge | MessageType::Reject | MessageType::About)
        )),
        "the victim got only handshake replies: {victim_types:?}"
    );
    assert!(
        victim_types.contains(&Ok(MessageType::About)),
        "the spoofed datagrams did reach the relay, QUERY too: {victim_types:?}"
    );
    assert!(
        victim_bytes <= spoofed_bytes,
        "no amplification: {victim_bytes} bytes out for {spoofed_bytes} in"
    );
    assert!(
        !subs[0].others.contains(&MessageType::Introduce),
        "an INTRODUCE in the victim's name was forwarded"
    );
    assert!(
        victim_types.len() <= spoofed_datagrams,
        "at most one reply per datagram: {} for {spoofed_datagrams}",
        victim_types.len()
    );
    // Replies came only to HELLO (CHALLENGE), QUERY (ABOUT, smaller) and
    // to SUBSCRIBE, KEEPALIVE and NACK (REJECT): the other six of the
    // eleven kinds get none.
    assert!(
        victim_types.len() <= blocks * 5,
        "{} replies to {blocks} volleys",
        victim_types.len()
    );
    server.shutdown();
}

/// The other session messages, in the victim's name, with a guessed
/// session id: none may make the relay send the victim more than a REJECT.
/// `member` is a real subscriber the INTRODUCE names.
fn session_messages(stream: StreamId, session: u64, member: SocketAddr) -> Vec<Vec<u8>> {
    let mut nack = Nack::new(stream, session);
    nack.push(NackEntry {
        kind: NackKind::Chunks,
        start: 0,
        len: u16::MAX,
    });
    vec![
        encode(&Message::Keepalive(Keepalive::empty(stream, session))),
        encode(&Message::Nack(nack)),
        encode(&Message::Peers(Peers::new(stream, session, 0))),
        encode(&Message::Have(Have {
            stream,
            session,
            base: 0,
            mask: 0,
        })),
        encode(&Message::Member(Member {
            stream,
            session,
            clubs: 1,
            upload_kbps: 1000,
        })),
        encode(&Message::Introduce(Introduce {
            stream,
            session,
            addr: member,
        })),
        encode(&Message::Leave(Leave {
            reason: LeaveReason::Done,
            stream,
            session,
        })),
    ]
}

both_backends!(
    spoofed_subscribe_gets_no_data,
    super::spoofed_subscribe_gets_no_data
);

/// The relay's side of a viewer's session, forged "from the relay": each
/// would end or restart the session if it were believed.
fn server_messages(stream: StreamId, session: u64) -> Vec<Vec<u8>> {
    let leave = |reason| {
        encode(&Message::Leave(Leave {
            reason,
            stream,
            session,
        }))
    };
    let reject = |reason| {
        encode(&Message::Reject(Reject {
            reason,
            versions: SUPPORTED_VERSIONS,
            stream,
        }))
    };
    vec![
        leave(LeaveReason::EndOfStream),
        leave(LeaveReason::ShuttingDown),
        reject(RejectReason::TokenInvalid),
        reject(RejectReason::UnknownStream),
    ]
}

/// A real viewer (the protocol's own client) on a loopback socket.
struct Watcher {
    viewer: Viewer,
    socket: UdpSocket,
    events: Vec<ViewerEvent>,
}

impl Watcher {
    fn new(relay: SocketAddr, stream: StreamId) -> Self {
        let socket = UdpSocket::bind("127.0.0.61:0").expect("bind the viewer");
        socket.set_nonblocking(true).expect("nonblocking");
        let viewer = Viewer::new(ViewerConfig::new(relay, stream), now()).expect("viewer");
        let mut w = Self {
            viewer,
            socket,
            events: Vec::new(),
        };
        w.step();
        w
    }

    /// Reads what arrived, runs due timers, sends what is queued.
    fn step(&mut self) {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = self.socket.recv_from(&mut buf) {
            self.viewer.handle_datagram(now(), from, &buf[..n]);
        }
        let now = now();
        if self.viewer.poll_timeout().is_some_and(|t| t <= now) {
            self.viewer.handle_timeout(now);
        }
        while let Some(t) = self.viewer.poll_transmit() {
            let _ = self.socket.send_to(t.payload, t.dst);
        }
        self.events
            .extend(std::iter::from_fn(|| self.viewer.poll_event()));
    }

    fn subscribed(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, ViewerEvent::Subscribed { .. }))
            .count()
    }

    fn ended(&self) -> bool {
        self.events.contains(&ViewerEvent::EndOfStream)
    }

    /// Everything played, in order.
    fn output(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ViewerEvent::Chunk { payload, .. } => Some(&payload[..]),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    let SocketAddr::V4(a) = addr else {
        panic!("IPv4 loopback only: {addr}");
    };
    a
}

fn spoofed_session_messages_end_nothing_and_keep_nothing(backend: BackendKind) {
    let mut settings = settings(backend, 2);
    let timeout = Duration::from_secs(2);
    settings.subscriber_timeout = timeout;
    let server = start(&settings);
    let relay = v4(server.local_addr());
    let mut source = Source::new(vec![server.local_addr()], 8);
    let stream = source.stream;

    let mut watcher = Watcher::new(server.local_addr(), stream);
    let subscribed = drive(&mut [], Duration::from_secs(10), |_| {
        watcher.step();
        watcher.subscribed() == 1
    });
    assert!(subscribed, "the viewer subscribed");
    let viewer = v4(watcher.socket.local_addr().expect("addr"));
    // A subscriber that goes away without a LEAVE.
    let mut departed = vec![Sub::new(0, server.local_addr(), stream)];
    subscribe_all(&mut departed);
    let departed_at = Instant::now();
    let gone = v4(departed[0].socket.local_addr().expect("addr"));

    let mut spoofer = Spoofer::new();
    let mut guess = 0x9e37_79b9_7f4a_7c15u64;
    let mut next_guess = || {
        guess = guess
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        guess
    };
    let (mut to_relay, mut to_viewer) = (0u64, 0usize);
    let blocks = 60;
    let mut sent = 0;
    let mut last_block = Instant::now();
    let mut last_volley = Instant::now();
    let mut expired_after = None;
    let done = drive(&mut departed, Duration::from_secs(30), |departed| {
        if sent < blocks && last_block.elapsed() >= Duration::from_millis(50) {
            last_block = Instant::now();
            source.block();
            sent += 1;
            if sent == blocks {
                source.finish();
            }
        }
        source.pump();
        // Ten volleys a second, each id guessed afresh.
        if last_volley.elapsed() >= Duration::from_millis(100) && !watcher.ended() {
            last_volley = Instant::now();
            let member = departed[0].socket.local_addr().expect("addr");
            for d in session_messages(stream, next_guess(), member) {
                spoofer.send(viewer, relay, &d);
                to_relay += 1;
            }
            for d in server_messages(stream, next_guess()) {
                spoofer.send(relay, viewer, &d);
                to_viewer += 1;
            }
            let keepalive = &session_messages(stream, next_guess(), member)[0];
            spoofer.send(gone, relay, keepalive);
            to_relay += 1;
        }
        watcher.step();
        if expired_after.is_none() && departed[0].state == SubState::Left {
            expired_after = Some(departed_at.elapsed());
        }
        watcher.ended() && expired_after.is_some()
    });
    assert!(
        done,
        "viewer ended: {}, departed expired: {expired_after:?}",
        watcher.ended()
    );
    // The viewer played everything, byte for byte, on one subscription.
    let chunk = usize::from(PublisherConfig::default().chunk_size);
    let expected: Vec<u8> = (0..source.chunks())
        .flat_map(|i| vec![(i % 251) as u8; chunk])
        .collect();
    let output = watcher.output();
    assert!(
        output == expected,
        "played {} bytes of {}",
        output.len(),
        expected.len()
    );
    assert_eq!(watcher.subscribed(), 1, "{:?}", watcher.events);
    assert!(
        !watcher
            .events
            .iter()
            .any(|e| matches!(e, ViewerEvent::Gap { .. } | ViewerEvent::Rejected(_))),
        "{:?}",
        watcher.events
    );
    assert!(to_viewer > 0);
    // The departed one expired on time, whatever was sent in its name.
    let expired_after = expired_after.expect("expired");
    assert!(
        expired_after <= timeout + timeout / 4 + Duration::from_secs(1),
        "expired after {expired_after:?}"
    );
    // Each spoofed datagram counted: in the name of a subscriber, as a bad
    // session; once there was none, as not subscribed.
    let bad = |m: &[shoal_relay::server::metrics::WorkerSnapshot]| {
        (
            sum(m, |w| w.relay.drop_bad_session),
            sum(m, |w| w.relay.drop_not_subscribed),
        )
    };
    let snaps = metrics_until(&server, "spoofed datagrams counted", |m| {
        let (b, n) = bad(m);
        b + n >= to_relay
    });
    let (bad_session, not_subscribed) = bad(&snaps);
    assert_eq!(bad_session + not_subscribed, to_relay);
    assert!(
        bad_session > 0 && not_subscribed > 0,
        "{bad_session} {not_subscribed}"
    );
    assert_eq!(sum(&snaps, |w| w.relay.expired), 1);
    server.shutdown();
}

both_backends!(
    spoofed_session_messages_end_nothing_and_keep_nothing,
    super::spoofed_session_messages_end_nothing_and_keep_nothing
);
