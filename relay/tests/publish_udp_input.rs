//! `shoal publish --input udp://...` takes what its URL allows: with
//! `?source=IP` only that sender's datagrams are published, with
//! `?max_rate=RATE` the excess is dropped, and each drop is counted on the
//! status line; a query it does not know gets one line naming the fix.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use shoal_proto::wire::{MessageType, peek_type};
use support::cli::{Proc, TempDir, assert_one_line, keygen, run, shoal};

/// Longest any one step may take.
const STEP: Duration = Duration::from_secs(10);

const TS_PACKET_LEN: usize = 188;

/// What ffmpeg sends: 7 TS packets (1316 bytes), null packets here.
fn datagram(counter: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(7 * TS_PACKET_LEN);
    for i in 0..7u8 {
        let mut p = [0xff; TS_PACKET_LEN];
        p[0] = 0x47;
        p[1] = 0x01;
        p[2] = 0x00;
        p[3] = 0x10 | (counter.wrapping_mul(7).wrapping_add(i) & 0x0f);
        out.extend_from_slice(&p);
    }
    out
}

/// A port nothing listens on (bound, noted, let go).
fn free_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
}

/// The test's stand-in relay: counts the datagrams of the stream publish
/// sends, and of them DATA (not the QUERY asking for the relay's web face,
/// which this stand-in leaves unanswered).
struct Relay {
    socket: UdpSocket,
    data: usize,
    any: usize,
}

impl Relay {
    fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        Self {
            socket,
            data: 0,
            any: 0,
        }
    }

    fn addr(&self) -> String {
        self.socket.local_addr().expect("addr").to_string()
    }

    /// Takes what has arrived (waiting 20 ms at most for the first).
    fn drain(&mut self) {
        let mut buf = [0; 2048];
        while let Ok(n) = self.socket.recv(&mut buf) {
            match peek_type(&buf[..n]) {
                Ok(MessageType::Query) => {}
                Ok(MessageType::Data) => {
                    self.any += 1;
                    self.data += 1;
                }
                _ => self.any += 1,
            }
        }
    }
}

fn publish(dir: &TempDir, relay: &Relay, input: &str) -> Proc {
    let mut cmd = shoal(&[
        "publish",
        "--no-dht",
        "--relay",
        &relay.addr(),
        "--input",
        input,
    ]);
    cmd.arg("--key").arg(dir.path("key"));
    Proc::spawn("publish", &mut cmd, dir)
}

/// The largest count of `what` ("not from source=", "over max_rate") any
/// status line so far gives.
fn dropped(publish: &Proc, what: &str) -> u64 {
    let suffix = format!(" input datagrams dropped ({what})");
    publish
        .stderr()
        .lines()
        .filter_map(|line| {
            let end = line.find(&suffix)?;
            line[..end].rsplit(' ').next()?.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn only_the_named_source_is_published() {
    let dir = TempDir::create(&format!("shoal-udp-source-{}", std::process::id()));
    keygen(&dir.path("key"));
    let mut relay = Relay::new();
    let input = free_port();
    let mut publish = publish(&dir, &relay, &format!("udp://{input}?source=127.0.0.1"));

    // Another address on this host: 127.0.0.2 is loopback too.
    let stranger = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    let started = Instant::now();
    let mut sent = 0u64;
    while dropped(&publish, "not from source=") < 50 {
        assert!(
            started.elapsed() < STEP,
            "no drops counted:\n{}",
            publish.stderr()
        );
        assert!(!publish.exited(), "publish exited:\n{}", publish.stderr());
        for _ in 0..10 {
            stranger
                .send_to(&datagram(sent as u8), input)
                .expect("send");
            sent += 1;
        }
        relay.drain();
    }
    relay.drain();
    assert_eq!(
        relay.any, 0,
        "{sent} datagrams from 127.0.0.2 must not be published"
    );

    let allowed = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let started = Instant::now();
    while relay.data == 0 {
        assert!(
            started.elapsed() < STEP,
            "the allowed source is not published:\n{}",
            publish.stderr()
        );
        for i in 0..10 {
            allowed.send_to(&datagram(i), input).expect("send");
        }
        relay.drain();
    }
    eprintln!(
        "publish_udp_input source: {sent} datagrams from 127.0.0.2 sent, {} counted dropped, \
         none published; 127.0.0.1 published ({} DATA)",
        dropped(&publish, "not from source="),
        relay.data
    );
}

#[test]
fn the_rate_cap_drops_the_excess() {
    let dir = TempDir::create(&format!("shoal-udp-rate-{}", std::process::id()));
    keygen(&dir.path("key"));
    let mut relay = Relay::new();
    let input = free_port();
    // 1 Mbit/s lets through its burst (64 KiB, about 50 datagrams) and
    // then about 95 datagrams a second.
    let mut publish = publish(&dir, &relay, &format!("udp://{input}?max_rate=1Mbit"));
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
    // The first datagram waits for publish to listen.
    let started = Instant::now();
    while relay.any == 0 {
        assert!(
            started.elapsed() < STEP,
            "nothing published:\n{}",
            publish.stderr()
        );
        sender.send_to(&datagram(0), input).expect("send");
        relay.drain();
    }
    const BURST: u64 = 400;
    let sending = Instant::now();
    for i in 0..BURST {
        sender.send_to(&datagram(i as u8), input).expect("send");
    }
    let took = sending.elapsed();
    let started = Instant::now();
    while dropped(&publish, "over max_rate") < BURST / 2 {
        assert!(
            started.elapsed() < STEP,
            "the excess was not counted:\n{}",
            publish.stderr()
        );
        assert!(!publish.exited(), "publish exited:\n{}", publish.stderr());
        relay.drain();
    }
    relay.drain();
    let over = dropped(&publish, "over max_rate");
    eprintln!(
        "publish_udp_input rate: {BURST} datagrams of 1316 bytes in {} ms against max_rate=1Mbit: \
         {over} counted dropped, {} DATA published",
        took.as_millis(),
        relay.data
    );
    // What passed is the burst plus the rate over the send, far below
    // the 400 sent.
    assert!(relay.data < 150, "{} DATA published", relay.data);
}

#[test]
fn a_bad_udp_query_is_one_line_with_the_fix() {
    let dir = TempDir::create(&format!("shoal-udp-bad-{}", std::process::id()));
    keygen(&dir.path("key"));
    let key = dir.path("key");
    let key = key.to_str().expect("utf8");
    let cases = [
        (
            "udp://127.0.0.1:5000?fifo_size=100",
            "unknown option \"fifo_size\"",
        ),
        (
            "udp://127.0.0.1:5000?source=nowhere",
            "use source=IP[,IP...]",
        ),
        (
            "udp://127.0.0.1:5000?max_rate=fast",
            "such as max_rate=20Mbit",
        ),
    ];
    for (input, needle) in cases {
        let (status, err, _) = run(
            &[
                "publish",
                "--no-dht",
                "--key",
                key,
                "--relay",
                "127.0.0.1:7400",
                "--input",
                input,
            ],
            STEP,
        );
        assert!(!status.success(), "{input} must fail");
        assert_one_line(&err, needle);
        assert!(err.contains(input), "the error names the input: {err}");
    }
}
