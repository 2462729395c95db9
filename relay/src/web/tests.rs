//! The web face over real TCP on loopback.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use shoal_proto::integrity::PublisherKey;
use shoal_proto::relay::StreamSummary;

use super::{WebState, serve};
use crate::io::BackendStats;
use crate::server::metrics::{MetricsHub, WorkerSnapshot, latency_histogram};

fn snapshot(worker: usize, summaries: Vec<StreamSummary>) -> WorkerSnapshot {
    WorkerSnapshot {
        worker,
        backend: "mmsg",
        relay: Default::default(),
        window: Default::default(),
        io: BackendStats::default(),
        subscribers: 0,
        streams: summaries.len() as u64,
        live_streams: Vec::new(),
        stream_summaries: summaries,
        upstreams: Vec::new(),
        latency_us: latency_histogram(),
        handshakes_rate_limited: 0,
        handoffs_dropped: 0,
    }
}

fn stream(seed: u8) -> shoal_proto::StreamId {
    PublisherKey::from_seed([seed; 32]).stream_id()
}

/// A server whose two workers each carry stream 1 (live, 2 subscribers
/// on worker 0 of which 1 peer, 1 on worker 1) and worker 1 also stream 2
/// (not live yet).
fn server() -> SocketAddr {
    let hub = MetricsHub::new(2);
    let live = StreamSummary {
        id: stream(1),
        bitrate_bps: Some(2_000_000),
        subscribers: 2,
        peers: 1,
        peer_upload_kbps: 4000,
    };
    let mut snap = snapshot(0, vec![live]);
    snap.relay.forwarded = 42;
    hub.publish(snap);
    let waiting = StreamSummary {
        id: stream(2),
        bitrate_bps: None,
        subscribers: 0,
        peers: 0,
        peer_upload_kbps: 0,
    };
    hub.publish(snapshot(
        1,
        vec![
            StreamSummary {
                subscribers: 1,
                peers: 0,
                peer_upload_kbps: 0,
                ..live
            },
            waiting,
        ],
    ));
    let (addrs, _thread) = serve(
        &["127.0.0.1:0".parse().expect("literal")],
        WebState::new(hub, None, 16),
    )
    .expect("serves");
    addrs[0]
}

fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout set");
    stream.write_all(request).expect("request sent");
    let mut reply = Vec::new();
    // A reset after an unread request is also a closed connection.
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let reply = exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    (head.to_owned(), body.to_owned())
}

#[test]
fn metrics_are_served_as_before() {
    let addr = server();
    let (head, body) = get(addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        body.contains("shoal_relay_forwarded_total{worker=\"0\"} 42\n"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE shoal_relay_forwarded_total counter\n"),
        "{body}"
    );
    let (head, _) = get(addr, "/metrics?x=1");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
}

#[test]
fn the_index_and_the_api_list_the_streams_merged_over_workers() {
    let addr = server();
    let (head, body) = get(addr, "/");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        body.contains(&format!("<a href=\"/watch/{}\">", stream(1))),
        "{body}"
    );
    assert!(body.contains("3 subscribers"), "{body}");
    let (head, body) = get(addr, "/api/streams");
    assert!(head.contains("content-type: application/json"), "{head}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let streams = json["streams"].as_array().expect("a list");
    assert_eq!(streams.len(), 2, "{json}");
    let live = streams
        .iter()
        .find(|s| s["id"] == stream(1).to_string())
        .expect("stream 1");
    assert_eq!(live["live"], true);
    assert_eq!(live["bitrate_bps"], 2_000_000);
    assert_eq!(live["subscribers"], 3);
    assert_eq!(live["peers"], 1);
    // 4 Mbit/s offered against 3 x 2 Mbit/s fanned out.
    let share = live["peer_upload_share"].as_f64().expect("a share");
    assert!((share - 4.0 / 6.0).abs() < 1e-9, "{share}");
    let waiting = streams
        .iter()
        .find(|s| s["id"] == stream(2).to_string())
        .expect("stream 2");
    assert_eq!(waiting["live"], false);
    assert!(waiting["peer_upload_share"].is_null());
}

#[test]
fn watch_pages_and_bad_requests() {
    let addr = server();
    let (head, body) = get(addr, &format!("/watch/{}", stream(1)));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(body.contains("/assets/watch.js"), "{body}");
    let (head, body) = get(addr, "/assets/mpegts.js");
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(body.len() > 100_000, "{} bytes", body.len());
    let (head, _) = get(addr, "/assets/nope.js");
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    let (head, body) = get(addr, &format!("/watch/{}", stream(3)));
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    assert!(
        body.contains(&format!("No stream <code>{}</code>", stream(3))),
        "{body}"
    );
    let (head, body) = get(addr, &format!("/streams/{}/status", stream(1)));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(status["live"], true, "{status}");
    assert!(status["latency_ms"].is_null(), "{status}");
    let (head, _) = get(addr, &format!("/streams/{}/status", stream(3)));
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    let (head, body) = get(addr, "/watch/%3Cscript%3E");
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(
        body.contains("&lt;script&gt;") && !body.contains("<script>"),
        "{body}"
    );
    let (head, _) = get(addr, "/other");
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    let reply = exchange(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(
        reply.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{reply}"
    );
    let reply = exchange(addr, b"nonsense\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    let reply = exchange(addr, &[b'a'; 512 * 1024]);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 4"),
        "an oversized head is refused: {reply:.80}"
    );
    let (head, _) = get(addr, "/metrics");
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n"),
        "still serving: {head}"
    );
}

#[test]
fn a_silent_client_is_dropped_after_the_header_time() {
    let addr = server();
    let mut idle = TcpStream::connect(addr).expect("connects");
    idle.set_read_timeout(Some(super::HEADER_TIME * 3))
        .expect("timeout set");
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    // The server closes (maybe after a 408) without our saying a word.
    let n = loop {
        match idle.read(&mut buf) {
            Ok(0) => break 0,
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("the server did not close an idle connection: {e}"),
        }
    };
    let waited = started.elapsed();
    assert!(
        waited >= super::HEADER_TIME / 2,
        "closed after {waited:?}, {n} bytes"
    );
}

/// A reader that stops reading holds its connection only for the write
/// time: then it is closed and counted, while a reader that keeps reading
/// goes on getting the stream.
#[test]
fn a_stalled_reader_is_closed_after_the_write_time_and_others_go_on() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let id = stream(3);
    let (mut state, feed) = WebState::local(id, 16);
    state.write_time = Duration::from_millis(500);
    let (addrs, _thread) =
        serve(&["127.0.0.1:0".parse().expect("literal")], state).expect("serves");
    let addr = addrs[0];
    let chunk = |keyframe: bool| {
        let mut packet = [0xAAu8; 188];
        packet[..4].copy_from_slice(&[0x47, 0x01, 0x00, 0x10]);
        feed.push(packet.repeat(7), keyframe, Duration::from_millis(5));
    };
    // The tables first: a reader starts only once the feed knows them.
    let pat = shoal_proto::ts::pat_packet(0, 1, &[(1, 0x1000)]).expect("fits");
    let pmt = shoal_proto::ts::pmt_packet(
        0x1000,
        0,
        1,
        0x100,
        &[(shoal_proto::ts::STREAM_TYPE_H264, 0x100)],
    )
    .expect("fits");
    feed.push([pat, pmt].concat(), false, Duration::ZERO);
    chunk(true);
    let request = format!("GET /streams/{id}.ts HTTP/1.1\r\nHost: x\r\n\r\n");

    // The stalled reader: a small receive buffer, and it never reads.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small buffer");
    socket.connect(&addr.into()).expect("connects");
    let mut stalled = TcpStream::from(socket);
    stalled.write_all(request.as_bytes()).expect("request");

    // The reader that keeps up, on a thread of its own.
    let got = Arc::new(AtomicU64::new(0));
    let mut reader = TcpStream::connect(addr).expect("connects");
    reader.write_all(request.as_bytes()).expect("request");
    reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout set");
    let counted = Arc::clone(&got);
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            counted.fetch_add(n as u64, Ordering::Relaxed);
        }
    });

    let closed = |addr| {
        let (_, metrics) = get(addr, "/metrics");
        metrics.contains("shoal_http_stalled_closed_total 1\n")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut pushed = 0u64;
    while !closed(addr) {
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled reader was never closed"
        );
        for i in 0..200 {
            chunk(i == 0);
        }
        pushed += 200;
        // The pace of a fast stream (about 50 Mbit/s), not a wait for
        // anything: the loop ends on the metric.
        std::thread::sleep(Duration::from_millis(40));
    }
    // The one that reads is still served, after the close as before.
    let before = got.load(Ordering::Relaxed);
    assert!(
        before > 0,
        "the reading reader got nothing of {pushed} chunks"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.load(Ordering::Relaxed) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the reading reader stopped getting the stream"
        );
        chunk(true);
        std::thread::sleep(Duration::from_millis(10));
    }
    // The stalled one finds its connection closed once it reads.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout set");
    let mut buf = [0u8; 65536];
    loop {
        match stalled.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the stalled reader's connection was not closed: {e}"),
        }
    }
}
