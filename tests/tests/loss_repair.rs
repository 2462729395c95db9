//! 5% random plus burst loss on every viewer link: every viewer still
//! outputs the exact bytes inside the 500 ms budget. Reports how much FEC
//! rebuilt and how much NACKs repaired.

use std::time::Duration;

use shoal_tests::harness::{Star, StarConfig, percentile};
use shoal_tests::netsim::{GilbertElliott, LinkConfig};

#[test]
fn five_percent_loss_with_bursts_is_fully_repaired_in_budget() {
    let lossy = LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(2),
        loss: 0.05,
        burst: GilbertElliott {
            p_good_to_bad: 0.005,
            p_bad_to_good: 0.3,
            loss_in_good: 0.0,
            loss_in_bad: 0.6,
        },
        ..LinkConfig::default()
    };
    let mut star = Star::new(&StarConfig {
        seed: 7,
        viewers: 50,
        seconds: 3.0,
        bitrate_bps: 2_000_000,
        viewer_link: lossy,
        ..StarConfig::default()
    });
    star.run(Duration::from_secs(2));
    let (mut fec, mut nack, mut latencies) = (0, 0, Vec::new());
    for &v in &star.viewers {
        let node = star.net.node(v);
        let stats = node.viewer.stats();
        assert!(node.ended, "viewer did not reach the end: {stats:?}");
        assert!(
            node.gaps.is_empty(),
            "gaps {:?}, stats {stats:?}",
            node.gaps
        );
        if node.output != star.stream.bytes {
            let at = node
                .output
                .iter()
                .zip(&star.stream.bytes)
                .position(|(a, b)| a != b);
            panic!(
                "output differs: len {} vs {}, first difference at {at:?}, first seq {:?}; stats {stats:?}",
                node.output.len(),
                star.stream.bytes.len(),
                node.first_seq
            );
        }
        fec += stats.fec_repaired;
        nack += stats.nack_repaired;
        latencies.extend_from_slice(&node.latencies);
    }
    let max = percentile(&latencies, 100.0);
    println!(
        "50 viewers, 5% + burst loss: {fec} chunks rebuilt by FEC, {nack} repaired by NACK, latency p50 {:?} p99 {:?} max {max:?}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0)
    );
    assert!(fec > 0, "loss this heavy must exercise FEC");
    assert!(
        max <= Duration::from_millis(500),
        "a chunk missed the budget: {max:?}"
    );
}
