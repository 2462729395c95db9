//! Two chained relays: publisher -> A -> B -> subscribers, and B fails over
//! from a dead upstream to A.

mod support;

use std::time::{Duration, Instant};

use shoal_relay::io::BackendKind;
use support::*;

fn chained_relays(backend: BackendKind) {
    let a = start(&settings(backend, 2));
    let mut source = Source::new(vec![a.local_addr()], 4);
    // B's first upstream is a port nobody serves: it must fail over to A.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut sb = settings(backend, 2);
    sb.upstreams = vec![dead.local_addr().expect("addr"), a.local_addr()];
    sb.streams = vec![source.stream];
    let b = start(&sb);

    let mut subs: Vec<Sub> = (0..20)
        .map(|i| Sub::new(i, b.local_addr(), source.stream))
        .collect();
    subscribe_all(&mut subs);
    metrics_until(&b, "B subscribed upstream", |m| {
        m.iter()
            .flat_map(|w| &w.upstreams)
            .any(|u| u.subscribed && u.server == a.local_addr())
    });
    // Sequence numbers start at the run's epoch (SPEC §4.2).
    let first = source.publisher.epoch() + source.chunks();
    let blocks = 6;
    let mut sent = 0;
    let mut last = Instant::now();
    let total = first + blocks * 16;
    let done = drive(&mut subs, Duration::from_secs(20), |subs| {
        if sent < blocks && last.elapsed() >= Duration::from_millis(50) {
            last = Instant::now();
            source.block();
            sent += 1;
        }
        source.pump();
        sent == blocks && subs.iter().all(|s| s.seqs.last() == Some(&(total - 1)))
    });
    assert!(done, "every subscriber of B got the stream through A");
    for s in &subs {
        let start = s.start_seq.expect("accepted");
        assert!(
            s.got_in_order(start.max(first), total),
            "in order, none missing"
        );
    }
    let snaps = metrics_until(&b, "failover counted", |m| {
        m.iter()
            .flat_map(|w| &w.upstreams)
            .any(|u| u.failovers >= 1)
    });
    assert!(
        snaps
            .iter()
            .flat_map(|w| &w.upstreams)
            .all(|u| u.subscribed)
    );
    b.shutdown();
    a.shutdown();
}

both_backends!(chained_relays, super::chained_relays);
