use super::*;
use crate::io::SharedBuf;
use crate::io::train::push;
use std::sync::mpsc;

/// How long any one test may wait for the network.
const PATIENCE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Record {
    datagrams: Vec<(SocketAddr, Vec<u8>)>,
    sent: Vec<(usize, Result<usize, Option<i32>>)>,
}

impl Sink for Record {
    fn datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        self.datagrams.push((from, bytes.to_vec()));
    }
    fn sent(&mut self, _born: Instant, segments: usize, result: io::Result<usize>) {
        self.sent
            .push((segments, result.map_err(|e| e.raw_os_error())));
    }
}

fn backend_on(addr: &str, config: IoConfig) -> (MmsgBackend, Arc<Waker>) {
    let socket = socket::bind_reuseport(addr.parse().expect("address")).expect("bind");
    let waker = Arc::new(Waker::new().expect("eventfd"));
    let backend = MmsgBackend::new(socket, Arc::clone(&waker), config).expect("backend");
    (backend, waker)
}

fn backend(addr: &str) -> MmsgBackend {
    backend_on(addr, IoConfig::default()).0
}

/// A plain socket whose reads give up after [`PATIENCE`].
fn plain(addr: &str) -> UdpSocket {
    let s = UdpSocket::bind(addr).expect("bind");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s
}

/// Turns until `done` holds, or fails the test after [`PATIENCE`].
fn turn_until(b: &mut MmsgBackend, r: &mut Record, done: impl Fn(&Record) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(r) {
        assert!(
            Instant::now() < deadline,
            "timed out; stats {:?}",
            b.stats()
        );
        b.turn(Some(Duration::from_millis(50)), r).expect("turn");
    }
}

/// `count - 1` segments of `size` bytes and a shorter last one, each
/// with its own byte pattern.
fn train(count: usize, size: usize) -> Vec<SharedBuf> {
    (0..count)
        .map(|i| {
            let len = if i + 1 == count { size / 3 } else { size };
            let bytes = (0..len).map(|j| (i * 31 + j) as u8).collect();
            SharedBuf::new(bytes)
        })
        .collect()
}

fn receive_all(s: &UdpSocket, expected: &[SharedBuf], from: SocketAddr) {
    let mut buf = [0; 4096];
    for (i, want) in expected.iter().enumerate() {
        let (len, src) = s.recv_from(&mut buf).expect("datagram");
        assert_eq!(src, from);
        assert_eq!(&buf[..len], want.as_slice(), "datagram {i}");
    }
}

#[test]
fn receives_with_the_source_address() {
    let mut b = backend("127.0.0.1:0");
    let p = plain("127.0.0.1:0");
    p.send_to(b"hello", b.local_addr()).expect("send");
    let mut r = Record::default();
    turn_until(&mut b, &mut r, |r| !r.datagrams.is_empty());
    assert_eq!(
        r.datagrams,
        vec![(p.local_addr().expect("addr"), b"hello".to_vec())]
    );
    assert_eq!(b.stats().rx_datagrams, 1);
}

fn sends_a_train(gso: bool) {
    let (mut b, _) = backend_on(
        "127.0.0.1:0",
        IoConfig {
            gso,
            ..IoConfig::default()
        },
    );
    assert!(gso || !b.gso());
    let p = plain("127.0.0.1:0");
    let segments = train(10, 1377);
    let total = segments.iter().map(|s| s.len()).sum();
    push(&mut b, p.local_addr().expect("addr"), &segments);
    let mut r = Record::default();
    turn_until(&mut b, &mut r, |r| !r.sent.is_empty());
    assert_eq!(r.sent, vec![(10, Ok(total))]);
    receive_all(&p, &segments, b.local_addr());
    let stats = b.stats();
    assert_eq!(stats.tx_datagrams, 10);
    assert_eq!(stats.tx_trains, u64::from(b.gso()));
    assert_eq!(Arc::strong_count(&segments[0]), 1, "buffers let go");
}

#[test]
fn a_train_arrives_as_separate_datagrams() {
    sends_a_train(true);
}

#[test]
fn a_train_arrives_as_separate_datagrams_without_gso() {
    sends_a_train(false);
}

#[test]
fn an_irregular_run_goes_as_well_shaped_trains() {
    // A run no single GSO send may carry (a short datagram mid-run) is
    // cut by the Train rule, so none turns into an oversized datagram.
    let mut b = backend("127.0.0.1:0");
    let p = plain("127.0.0.1:0");
    let dst = p.local_addr().expect("addr");
    let segments: Vec<SharedBuf> = [1000, 500, 1000]
        .map(|len| SharedBuf::new(vec![len as u8; len]))
        .into();
    assert!(Train::of(dst, &segments).is_none(), "not one train");
    let mut train = Train::default();
    for segment in &segments {
        train.add(&mut b, dst, SharedBuf::clone(segment), Instant::now());
    }
    train.flush(&mut b, Instant::now());
    let mut r = Record::default();
    turn_until(&mut b, &mut r, |r| r.sent.len() == 2);
    assert_eq!(r.sent, vec![(2, Ok(1500)), (1, Ok(1000))]);
    receive_all(&p, &segments, b.local_addr());
    assert_eq!(b.stats().tx_trains, u64::from(b.gso()));
}

#[test]
fn many_trains_span_several_calls() {
    let (mut b, _) = backend_on(
        "127.0.0.1:0",
        IoConfig {
            gso: false,
            ..IoConfig::default()
        },
    );
    let p = plain("127.0.0.1:0");
    let segments = train(3, 300);
    for _ in 0..300 {
        push(&mut b, p.local_addr().expect("addr"), &segments);
    }
    let mut r = Record::default();
    turn_until(&mut b, &mut r, |r| r.sent.len() == 300);
    assert!(r.sent.iter().all(|s| *s == (3, Ok(700))));
    assert_eq!(b.stats().tx_datagrams, 900);
}

#[test]
fn a_waker_on_another_thread_ends_a_turn() {
    let (mut b, waker) = backend_on("127.0.0.1:0", IoConfig::default());
    let (done, turned) = mpsc::channel();
    std::thread::spawn(move || {
        let result = b.turn(None, &mut Record::default());
        let _ = done.send(result.map_err(|e| e.kind()));
    });
    waker.wake();
    assert_eq!(turned.recv_timeout(PATIENCE), Ok(Ok(())));
}

#[test]
fn an_oversize_datagram_is_dropped_and_counted() {
    let mut b = backend("127.0.0.1:0");
    let p = plain("127.0.0.1:0");
    p.send_to(&[7; 4000], b.local_addr()).expect("send");
    p.send_to(&[8; 100], b.local_addr()).expect("send");
    let mut r = Record::default();
    turn_until(&mut b, &mut r, |r| !r.datagrams.is_empty());
    assert_eq!(
        r.datagrams,
        vec![(p.local_addr().expect("addr"), vec![8; 100])]
    );
    assert_eq!(b.stats().rx_truncated, 1);
}

#[test]
fn ipv6_round_trip() {
    let mut b = backend("[::1]:0");
    let p = plain("[::1]:0");
    let from = p.local_addr().expect("addr");
    p.send_to(b"ping", b.local_addr()).expect("send");
    let mut r = Record::default();
    turn_until(&mut b, &mut r, |r| !r.datagrams.is_empty());
    assert_eq!(r.datagrams, vec![(from, b"ping".to_vec())]);
    let segments = train(4, 1200);
    push(&mut b, from, &segments);
    turn_until(&mut b, &mut r, |r| !r.sent.is_empty());
    receive_all(&p, &segments, b.local_addr());
}

#[test]
fn ipv4_destinations_work_on_a_dual_stack_socket() {
    let mut b = backend("[::]:0");
    let p = plain("127.0.0.1:0");
    let to = SocketAddr::from(([127, 0, 0, 1], b.local_addr().port()));
    p.send_to(b"ping", to).expect("send");
    let mut r = Record::default();
    turn_until(&mut b, &mut r, |r| !r.datagrams.is_empty());
    let from = r.datagrams[0].0;
    assert!(from.is_ipv6(), "v4-mapped on a dual-stack socket");
    assert_eq!(from.ip().to_canonical(), p.local_addr().expect("addr").ip());
    let segments = train(2, 1000);
    push(&mut b, p.local_addr().expect("addr"), &segments);
    turn_until(&mut b, &mut r, |r| !r.sent.is_empty());
    receive_all(&p, &segments, to);
}

#[test]
fn a_failed_send_is_reported_and_skipped() {
    let mut b = backend("127.0.0.1:0");
    let p = plain("127.0.0.1:0");
    let unreachable: SocketAddr = "[2001:db8::1]:9".parse().expect("address");
    let segments = train(2, 1000);
    push(&mut b, unreachable, &segments);
    push(&mut b, p.local_addr().expect("addr"), &segments);
    let mut r = Record::default();
    turn_until(&mut b, &mut r, |r| r.sent.len() == 2);
    assert_eq!(r.sent[0], (2, Err(Some(libc::EAFNOSUPPORT))));
    assert_eq!(r.sent[1], (2, Ok(1333)));
    receive_all(&p, &segments, b.local_addr());
    assert_eq!(b.stats().tx_errors, 1);
}

#[test]
fn a_refused_gso_train_does_not_switch_gso_off() {
    let mut b = backend("127.0.0.1:0");
    let gso = b.gso();
    let port_zero = SocketAddr::from(([127, 0, 0, 1], 0));
    push(&mut b, port_zero, &train(3, 1000));
    let mut r = Record::default();
    turn_until(&mut b, &mut r, |r| !r.sent.is_empty());
    assert_eq!(r.sent, vec![(3, Err(Some(libc::EINVAL)))]);
    assert_eq!(b.gso(), gso);
    assert_eq!(b.stats().tx_errors, 1);
}

#[test]
fn a_full_queue_drops_new_trains() {
    let (mut b, _) = backend_on(
        "127.0.0.1:0",
        IoConfig {
            tx_queue: 2,
            ..IoConfig::default()
        },
    );
    let p = plain("127.0.0.1:0");
    let segments = train(1, 100);
    for _ in 0..3 {
        push(&mut b, p.local_addr().expect("addr"), &segments);
    }
    assert_eq!(b.stats().tx_dropped, 1);
    let mut r = Record::default();
    turn_until(&mut b, &mut r, |r| r.sent.len() == 2);
    assert_eq!(Arc::strong_count(&segments[0]), 1);
}
