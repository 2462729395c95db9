//! Malformed datagrams are counted and dropped while service continues.

mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use shoal_relay::io::BackendKind;
use support::*;

fn malformed_counted(backend: BackendKind) {
    let server = start(&settings(backend, 2));
    let mut source = Source::new(vec![server.local_addr()], 5);
    let mut subs: Vec<Sub> = (0..10)
        .map(|i| Sub::new(i, server.local_addr(), source.stream))
        .collect();
    subscribe_all(&mut subs);

    // Junk from many sources, sent between the stream's blocks: empty,
    // wrong version, unknown type, truncated headers, random bytes, and
    // datagrams larger than any shoal datagram.
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 8],
        vec![1, 0x7f, 0, 0],
        vec![1, 0x01, 0, 0, 1, 2, 3],
        (0..200u32).map(|i| (i * 37 % 251) as u8).collect(),
        vec![0; 1500],
        vec![1; 4000],
    ];
    let attackers: Vec<UdpSocket> = (0..8)
        .map(|i| UdpSocket::bind(format!("127.0.99.{}:0", i + 1)).expect("bind"))
        .collect();
    let mut sent_junk = 0u64;
    let mut oversized = 0u64;
    let blocks = 5;
    let mut sent = 0;
    let mut last = Instant::now();
    let total = blocks * 16;
    let done = drive(&mut subs, Duration::from_secs(20), |subs| {
        if sent < blocks && last.elapsed() >= Duration::from_millis(50) {
            last = Instant::now();
            for a in &attackers {
                for j in &junk {
                    a.send_to(j, server.local_addr()).expect("send junk");
                    if j.len() > 2048 {
                        oversized += 1;
                    } else {
                        sent_junk += 1;
                    }
                }
            }
            source.block();
            sent += 1;
        }
        source.pump();
        sent == blocks && subs.iter().all(|s| s.seqs.len() as u64 >= total)
    });
    assert!(done, "service continued under junk");
    // Sequence numbers start at the run's epoch (SPEC §4.2).
    let first = source.publisher.epoch();
    assert!(subs.iter().all(|s| s.got_in_order(first, first + total)));
    let snaps = metrics_until(&server, "junk counted", |m| {
        sum(m, |w| w.relay.drop_malformed) + sum(m, |w| w.io.rx_truncated) >= sent_junk + oversized
    });
    // Datagrams larger than a receive buffer never reach the parser: the
    // backend counts them as truncated; everything else is malformed.
    assert_eq!(sum(&snaps, |w| w.relay.drop_malformed), sent_junk);
    assert_eq!(sum(&snaps, |w| w.io.rx_truncated), oversized);
    server.shutdown();
}

both_backends!(malformed_counted, super::malformed_counted);
