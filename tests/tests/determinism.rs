//! The same seed gives the same trace hash; another seed another.

use std::time::Duration;

use shoal_tests::harness::{Star, StarConfig};
use shoal_tests::netsim::LinkConfig;

fn trace(seed: u64) -> [u8; 32] {
    let mut star = Star::new(&StarConfig {
        seed,
        viewers: 10,
        seconds: 1.0,
        viewer_link: LinkConfig {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            loss: 0.05,
            duplicate: 0.01,
            reorder: 0.02,
            ..LinkConfig::default()
        },
        ..StarConfig::default()
    });
    star.run(Duration::from_secs(1));
    star.net.trace_hash()
}

#[test]
fn same_seed_same_trace() {
    assert_eq!(trace(5), trace(5));
    assert_ne!(trace(5), trace(6));
}
