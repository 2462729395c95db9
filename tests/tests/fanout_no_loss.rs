//! Publisher, relay, 1000 viewers, no loss: every viewer outputs exactly
//! the published bytes.

use std::time::Duration;

use shoal_tests::harness::{Star, StarConfig, percentile};

#[test]
fn thousand_viewers_output_exactly_the_published_bytes() {
    let mut star = Star::new(&StarConfig {
        viewers: 1000,
        seconds: 1.0,
        bitrate_bps: 1_000_000,
        ..StarConfig::default()
    });
    star.run(Duration::from_secs(1));
    let relay = star.net.node(star.relay).relay.stats();
    assert_eq!(relay.dropped(), 0, "relay dropped datagrams: {relay:?}");
    let mut latencies = Vec::new();
    // The run's first seq is its epoch (SPEC §8.1).
    let first = star.net.node(star.publisher).publisher.epoch();
    for &v in &star.viewers {
        let node = star.net.node(v);
        assert!(node.ended, "viewer did not see the end of the stream");
        assert!(node.gaps.is_empty(), "gaps: {:?}", node.gaps);
        assert_eq!(node.first_seq, Some(first));
        assert!(
            node.output == star.stream.bytes,
            "output differs from the published bytes"
        );
        latencies.extend_from_slice(&node.latencies);
    }
    let p99 = percentile(&latencies, 99.0);
    println!(
        "chunks/viewer {}, latency p50 {:?} p99 {:?}",
        latencies.len() / 1000,
        percentile(&latencies, 50.0),
        p99
    );
    assert!(
        p99 < Duration::from_millis(500),
        "p99 {p99:?} over the budget"
    );
}
