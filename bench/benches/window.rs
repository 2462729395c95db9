//! Ring insert and fan-out.
//!
//! - `window/ingest_block_k16_m4`: a [`Window`] ingests one block, MANIFEST
//!   first, then 16 DATA and 4 PARITY (the verified path: one signature
//!   check, a hash per chunk and per parity symbol), and its ready queue is
//!   drained. Also with 4 DATA lost and rebuilt from parity. Throughput is
//!   in chunks. The window is warmed past one wrap, so slots are reused.
//! - `relay/fanout`: a [`Relay`] with 1000 subscribers (each through the
//!   HELLO / CHALLENGE / SUBSCRIBE handshake) ingests one DATA chunk and
//!   its `poll_transmit` is drained: 1000 transmits. Throughput is in
//!   datagrams sent. Manifests and parity go through untimed.

mod common;

use std::collections::VecDeque;
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shoal_proto::Time;
use shoal_proto::integrity::StreamKey;
use shoal_proto::relay::{Relay, RelayConfig};
use shoal_proto::window::{Ready, Window, WindowConfig};
use shoal_proto::wire::{
    HELLO_MIN_LEN, Hello, Message, MessageType, SUPPORTED_VERSIONS, Subscribe, peek_type,
};

/// Ingests a block, skipping the DATA indices in `lost`, and drains the
/// ready queue. Returns how many chunks became ready.
fn ingest_block(window: &mut Window, now: Time, block: &common::Block, lost: &[usize]) -> usize {
    window
        .ingest(now, &block.manifest)
        .expect("manifest verifies");
    for (i, data) in block.data.iter().enumerate() {
        if !lost.contains(&i) {
            window.ingest(now, data).expect("chunk verifies");
        }
    }
    for parity in &block.parity {
        window.ingest(now, parity).expect("parity verifies");
    }
    let mut chunks = 0;
    while let Some(ready) = window.poll_ready() {
        if matches!(black_box(ready), Ready::Data { .. }) {
            chunks += 1;
        }
    }
    chunks
}

fn window_ingest(c: &mut Criterion) {
    let config = WindowConfig::default();
    let mut g = c.benchmark_group("window/ingest_block_k16_m4");
    g.throughput(Throughput::Elements(16));
    for (name, lost) in [
        ("all_received", &[][..]),
        ("4_data_lost_rebuilt", &[1, 5, 9, 13][..]),
    ] {
        let mut source = common::Source::new(16, 4);
        let key = StreamKey::new(source.stream_id()).expect("publisher key is a valid point");
        let mut window = Window::new(key, config);
        // Warm up past one wrap of the ring, so slot buffers are reused.
        for _ in 0..config.capacity / 16 + 8 {
            let block = source.next_block();
            if let Some(d) = &block.descriptor {
                window.ingest(source.now(), d).expect("descriptor verifies");
            }
            ingest_block(&mut window, source.now(), &block, lost);
        }
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let block = source.next_block();
                    let now = source.now();
                    let start = Instant::now();
                    let chunks = ingest_block(&mut window, now, &block, lost);
                    total += start.elapsed();
                    assert_eq!(chunks, 16, "every chunk of the block is ready");
                }
                total
            })
        });
    }
    g.finish();
}

/// Drains the relay's transmits; returns how many there were.
fn drain(relay: &mut Relay) -> usize {
    let mut n = 0;
    while let Some(t) = relay.poll_transmit() {
        black_box((t.dst, t.payload.len()));
        n += 1;
    }
    n
}

/// Subscribes `addr` to `stream` through the cookie handshake.
fn subscribe(relay: &mut Relay, now: Time, addr: SocketAddr, stream: shoal_proto::StreamId) {
    let hello = Hello {
        versions: SUPPORTED_VERSIONS,
        nonce: u64::from(addr.port()),
        padded_len: HELLO_MIN_LEN as u16,
    };
    let mut buf = vec![0; hello.buffer_len()];
    hello.emit(&mut buf).expect("buffer fits");
    relay.handle_datagram(now, addr, &buf);
    let mut cookie = None;
    while let Some(t) = relay.poll_transmit() {
        if t.dst == addr
            && let Ok(Message::Challenge(ch)) = Message::parse(t.payload)
        {
            cookie = Some(ch.cookie);
        }
    }
    let sub = Subscribe {
        stream,
        clubs: u64::MAX,
        start_seq: None,
        cookie: cookie.expect("HELLO is answered with a CHALLENGE"),
        token: &[],
    };
    buf.resize(sub.buffer_len(), 0);
    sub.emit(&mut buf).expect("buffer fits");
    relay.handle_datagram(now, addr, &buf);
    drain(relay);
}

fn relay_fanout(c: &mut Criterion) {
    const SUBSCRIBERS: usize = 1000;
    let publisher = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 2), 5000));
    let mut relay = Relay::new(RelayConfig {
        // No timers run in the bench; never expire anyone anyway.
        subscriber_timeout: Duration::from_secs(1 << 30),
        cookie_secret: [0x42; 32],
        ..Default::default()
    });
    let mut source = common::Source::new(16, 4);
    let first = source.next_block();
    let now = source.now();
    let descriptor = first
        .descriptor
        .as_ref()
        .expect("first block has the descriptor");
    relay.handle_datagram(now, publisher, descriptor);
    drain(&mut relay);
    for i in 0..SUBSCRIBERS {
        let ip = Ipv4Addr::from(0x0a01_0000 + i as u32);
        subscribe(
            &mut relay,
            now,
            SocketAddr::from((ip, 9000)),
            source.stream_id(),
        );
    }
    while relay.poll_event().is_some() {}
    assert_eq!(
        relay.subscriber_count(),
        SUBSCRIBERS,
        "every subscriber accepted"
    );

    // Datagrams in the publisher's order, refilled block by block.
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    let next = |queue: &mut VecDeque<Vec<u8>>, source: &mut common::Source| {
        if queue.is_empty() {
            let block = source.next_block();
            queue.push_back(block.manifest);
            queue.extend(block.data);
            queue.extend(block.parity);
        }
        queue.pop_front().expect("refilled")
    };
    let mut g = c.benchmark_group("relay/fanout");
    g.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    g.bench_function(
        BenchmarkId::new("ingest_and_drain_per_chunk", SUBSCRIBERS),
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let datagram = next(&mut queue, &mut source);
                    let now = source.now();
                    let is_data = peek_type(&datagram) == Ok(MessageType::Data);
                    let start = Instant::now();
                    relay.handle_datagram(now, publisher, &datagram);
                    let sent = drain(&mut relay);
                    if is_data {
                        total += start.elapsed();
                        assert_eq!(sent, SUBSCRIBERS, "a chunk goes to every subscriber");
                        done += 1;
                    }
                }
                total
            })
        },
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = window_ingest, relay_fanout
}
criterion_main!(benches);
