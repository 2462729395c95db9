use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::{UringBackend, probe};
use crate::io::socket::bind_reuseport;
use crate::io::train::push;
use crate::io::{Backend, IoConfig, SharedBuf, Sink, Waker};

/// How long any one test may wait for the network.
const PATIENCE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Collect {
    datagrams: Vec<(SocketAddr, Vec<u8>)>,
    sent: Vec<(usize, std::io::Result<usize>)>,
}

impl Sink for Collect {
    fn datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        self.datagrams.push((from, bytes.to_vec()));
    }
    fn sent(&mut self, _: Instant, segments: usize, result: std::io::Result<usize>) {
        self.sent.push((segments, result));
    }
}

fn open(ip: impl Into<std::net::IpAddr>, config: IoConfig) -> (UringBackend, Arc<Waker>) {
    let socket = bind_reuseport(SocketAddr::new(ip.into(), 0)).expect("bind");
    let waker = Arc::new(Waker::new().expect("eventfd"));
    match UringBackend::new(socket, Arc::clone(&waker), config) {
        Ok(backend) => (backend, waker),
        Err((_, why)) => panic!("io_uring backend unavailable on the test machine: {why}"),
    }
}

fn peer(ip: impl Into<std::net::IpAddr>) -> UdpSocket {
    let socket = UdpSocket::bind(SocketAddr::new(ip.into(), 0)).expect("bind peer");
    socket.set_read_timeout(Some(PATIENCE)).expect("timeout");
    socket
}

/// Turns until `done` holds, failing the test after [`PATIENCE`].
fn turn_until(backend: &mut UringBackend, sink: &mut Collect, done: impl Fn(&Collect) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(sink) {
        assert!(Instant::now() < deadline, "timed out; backend: {backend:?}");
        backend
            .turn(Some(Duration::from_millis(50)), sink)
            .expect("turn");
    }
}

/// A train of `count` segments of `len` bytes and a `last`-byte one,
/// each byte telling its segment and offset apart.
fn train(count: usize, len: usize, last: usize) -> Vec<SharedBuf> {
    (0..=count)
        .map(|seg| {
            let n = if seg == count { last } else { len };
            Arc::new((0..n).map(|i| (seg * 31 + i * 7) as u8).collect())
        })
        .collect()
}

#[test]
fn probe_succeeds_here() {
    if let Err(why) = probe() {
        panic!("io_uring probe failed on a machine that must have it: {why}");
    }
}

#[test]
fn receives_with_source() {
    let (mut backend, _waker) = open(Ipv4Addr::LOCALHOST, IoConfig::default());
    let client = peer(Ipv4Addr::LOCALHOST);
    let sizes = [1, 100, 1452, 0, 700];
    for &size in &sizes {
        client
            .send_to(&vec![size as u8; size], backend.local_addr())
            .expect("send");
    }
    let mut sink = Collect::default();
    turn_until(&mut backend, &mut sink, |s| {
        s.datagrams.len() == sizes.len()
    });
    for ((from, bytes), &size) in sink.datagrams.iter().zip(&sizes) {
        assert_eq!(*from, client.local_addr().expect("addr"));
        assert_eq!(*bytes, vec![size as u8; size]);
    }
    assert_eq!(backend.stats().rx_datagrams, sizes.len() as u64);
}

#[test]
fn receives_ipv6_and_mapped_ipv4() {
    let (mut backend, _waker) = open(Ipv6Addr::UNSPECIFIED, IoConfig::default());
    let port = backend.local_addr().port();
    let v6 = peer(Ipv6Addr::LOCALHOST);
    let v4 = peer(Ipv4Addr::LOCALHOST);
    v6.send_to(b"six", (Ipv6Addr::LOCALHOST, port))
        .expect("send");
    v4.send_to(b"four", (Ipv4Addr::LOCALHOST, port))
        .expect("send");
    let mut sink = Collect::default();
    turn_until(&mut backend, &mut sink, |s| s.datagrams.len() == 2);
    sink.datagrams.sort_by_key(|(_, bytes)| bytes.len());
    assert_eq!(
        sink.datagrams[0],
        (v6.local_addr().expect("addr"), b"six".to_vec())
    );
    let (mapped, bytes) = &sink.datagrams[1];
    assert_eq!(bytes, b"four");
    assert!(
        mapped.is_ipv6(),
        "v4-mapped on a dual-stack socket, as mmsg"
    );
    let v4_addr = v4.local_addr().expect("addr");
    assert_eq!(mapped.ip().to_canonical(), v4_addr.ip());
    assert_eq!(mapped.port(), v4_addr.port());

    // Replies reach the IPv4 peer by either spelling of its address.
    let mapped = *mapped;
    for (i, dst) in [mapped, v4_addr].into_iter().enumerate() {
        push(&mut backend, dst, &[Arc::new(b"back".to_vec())]);
        turn_until(&mut backend, &mut sink, |s| s.sent.len() == i + 1);
        let mut buf = [0; 16];
        let (n, from) = v4.recv_from(&mut buf).expect("reply");
        assert_eq!(&buf[..n], b"back");
        assert_eq!(from.port(), port);
    }
}

fn sends_train(gso: bool) {
    let config = IoConfig {
        gso,
        ..IoConfig::default()
    };
    let (mut backend, _waker) = open(Ipv4Addr::LOCALHOST, config);
    assert_eq!(backend.gso(), gso, "loopback takes UDP_SEGMENT");
    let receiver = peer(Ipv4Addr::LOCALHOST);
    let segments = train(9, 1377, 500);
    push(
        &mut backend,
        receiver.local_addr().expect("addr"),
        &segments,
    );
    let mut sink = Collect::default();
    turn_until(&mut backend, &mut sink, |s| !s.sent.is_empty());
    let total = 9 * 1377 + 500;
    assert_eq!(sink.sent.len(), 1);
    let (count, result) = &sink.sent[0];
    assert_eq!(*count, 10);
    assert_eq!(*result.as_ref().expect("sent"), total);
    let mut buf = vec![0; 4096];
    for segment in &segments {
        let (n, from) = receiver.recv_from(&mut buf).expect("datagram");
        assert_eq!(from, backend.local_addr());
        assert_eq!(&buf[..n], segment.as_slice());
    }
    let stats = backend.stats();
    assert_eq!(stats.tx_datagrams, 10);
    assert_eq!(stats.tx_trains, u64::from(gso));
    assert_eq!(stats.tx_errors, 0);
    // The backend no longer holds the buffers.
    assert!(segments.iter().all(|buf| Arc::strong_count(buf) == 1));
}

#[test]
fn sends_gso_train_as_separate_datagrams() {
    sends_train(true);
}

#[test]
fn sends_train_without_gso() {
    sends_train(false);
}

#[test]
fn waker_from_another_thread_ends_turn() {
    let (backend, waker) = open(Ipv4Addr::LOCALHOST, IoConfig::default());
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    // Made on this thread, driven on another: the ring is enabled there.
    std::thread::spawn(move || {
        let mut backend = backend;
        let mut sink = Collect::default();
        for _ in 0..2 {
            ready_tx.send(()).expect("ready");
            backend.turn(None, &mut sink).expect("turn");
            done_tx.send(()).expect("done");
        }
    });
    for _ in 0..2 {
        ready_rx.recv_timeout(PATIENCE).expect("worker ready");
        waker.wake();
        done_rx
            .recv_timeout(PATIENCE)
            .expect("turn(None) returned after wake");
    }
}

#[test]
fn wakes_through_the_poll_fallback() {
    let (mut backend, waker) = open(Ipv4Addr::LOCALHOST, IoConfig::default());
    let mut sink = Collect::default();
    // As on kernels whose eventfd read says EAGAIN: a poll, then a read.
    backend.wake_poll = true;
    waker.wake();
    for armed_as_poll in [true, false] {
        assert_eq!(backend.wake_poll, armed_as_poll);
        let start = Instant::now();
        backend.turn(Some(PATIENCE), &mut sink).expect("turn");
        assert!(start.elapsed() < PATIENCE / 2, "the wake-up was missed");
        assert!(!backend.wake_armed);
    }
    // The read consumed the wake-up: the next turn waits its timeout.
    let start = Instant::now();
    backend
        .turn(Some(Duration::from_millis(20)), &mut sink)
        .expect("turn");
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn more_trains_than_the_submission_queue_holds() {
    let (mut backend, _waker) = open(Ipv4Addr::LOCALHOST, IoConfig::default());
    let receiver = peer(Ipv4Addr::LOCALHOST);
    let dst = receiver.local_addr().expect("addr");
    let payload: SharedBuf = Arc::new(vec![7; 100]);
    let trains = 3 * super::setup::SQ_ENTRIES as usize;
    for _ in 0..trains {
        push(&mut backend, dst, std::slice::from_ref(&payload));
    }
    let mut sink = Collect::default();
    turn_until(&mut backend, &mut sink, |s| s.sent.len() == trains);
    assert!(
        sink.sent
            .iter()
            .all(|(n, r)| *n == 1 && matches!(r, Ok(100)))
    );
    assert_eq!(backend.stats().tx_datagrams, trains as u64);
    assert_eq!(Arc::strong_count(&payload), 1);
}

#[test]
fn zero_timeout_does_not_block() {
    let (mut backend, _waker) = open(Ipv4Addr::LOCALHOST, IoConfig::default());
    let mut sink = Collect::default();
    let start = Instant::now();
    for _ in 0..10 {
        backend.turn(Some(Duration::ZERO), &mut sink).expect("turn");
    }
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn oversized_datagram_is_counted_and_dropped() {
    let (mut backend, _waker) = open(Ipv4Addr::LOCALHOST, IoConfig::default());
    let client = peer(Ipv4Addr::LOCALHOST);
    client
        .send_to(&[0xAB; 3000], backend.local_addr())
        .expect("send");
    client
        .send_to(b"after", backend.local_addr())
        .expect("send");
    let mut sink = Collect::default();
    turn_until(&mut backend, &mut sink, |s| !s.datagrams.is_empty());
    assert_eq!(
        sink.datagrams,
        vec![(client.local_addr().expect("addr"), b"after".to_vec())]
    );
    assert_eq!(backend.stats().rx_truncated, 1);
}

#[test]
fn rearms_after_running_out_of_buffers() {
    let config = IoConfig {
        rx_buffers: 4,
        ..IoConfig::default()
    };
    let (mut backend, _waker) = open(Ipv4Addr::LOCALHOST, config);
    let client = peer(Ipv4Addr::LOCALHOST);
    for i in 0..40u8 {
        client
            .send_to(&[i; 64], backend.local_addr())
            .expect("send");
    }
    let mut sink = Collect::default();
    turn_until(&mut backend, &mut sink, |s| s.datagrams.len() == 40);
    let firsts: Vec<u8> = sink.datagrams.iter().map(|(_, bytes)| bytes[0]).collect();
    assert_eq!(firsts, (0..40).collect::<Vec<u8>>());
    assert!(backend.stats().rx_no_buffer > 0, "{:?}", backend.stats());
}

#[test]
fn full_send_queue_drops_trains() {
    let config = IoConfig {
        tx_queue: 2,
        ..IoConfig::default()
    };
    let (mut backend, _waker) = open(Ipv4Addr::LOCALHOST, config);
    let receiver = peer(Ipv4Addr::LOCALHOST);
    let dst = receiver.local_addr().expect("addr");
    for _ in 0..3 {
        push(&mut backend, dst, &train(1, 100, 50));
    }
    assert_eq!(backend.stats().tx_dropped, 1);
    let mut sink = Collect::default();
    turn_until(&mut backend, &mut sink, |s| s.sent.len() == 2);
    // Slots are free again.
    push(&mut backend, dst, &train(1, 100, 50));
    assert_eq!(backend.stats().tx_dropped, 1);
}

#[test]
fn drop_reaps_in_flight_operations() {
    let (mut backend, _waker) = open(Ipv4Addr::LOCALHOST, IoConfig::default());
    let receiver = peer(Ipv4Addr::LOCALHOST);
    let mut sink = Collect::default();
    backend.turn(Some(Duration::ZERO), &mut sink).expect("turn");
    let segments = train(3, 1000, 10);
    push(
        &mut backend,
        receiver.local_addr().expect("addr"),
        &segments,
    );
    let start = Instant::now();
    drop(backend);
    // Cancelled and reaped, not left to the leak path's time limit.
    assert!(start.elapsed() < Duration::from_millis(900));
    assert!(segments.iter().all(|buf| Arc::strong_count(buf) == 1));
}
