//! The swarm table at a size CI can afford, pinned: one publisher, 4
//! relays in a tree, 300 peers (30% upload nothing, the rest 1 to 5 times
//! the bitrate), 50 ms ± 5 ms links with 2% loss (part of it in bursts),
//! access uplinks, 35% of peers behind NATs, relays with a cost per
//! datagram (the `SwarmConfig` defaults), 10% of peers leaving and
//! joining per minute, 20 s of stream. The run is deterministic, so any
//! change in the swarm's behaviour shows up here; review the new table
//! (`cargo insta review`, or delete the snapshot to accept it) and say in
//! the commit why it moved. For the full size:
//! `cargo run --release -p shoal-tests --bin shoal-swarm -- 10000 60`.

use shoal_tests::harness::{Swarm, SwarmConfig};

#[test]
fn swarm_table() {
    let mut swarm = Swarm::new(SwarmConfig {
        peers: 300,
        seconds: 20.0,
        // The same table on one (tests/swarm_threads.rs); two here so that
        // CI runs the parallel network at this size too.
        threads: 2,
        ..SwarmConfig::default()
    });
    let report = swarm.run();
    // What must hold whatever the exact figures.
    let total = report.publisher_bytes + report.relay_bytes + report.peer_bytes;
    assert!(report.peer_bytes * 2 > total, "peers carry most:\n{report}");
    assert!(report.stall_ratio() < 0.01, "{report}");
    assert!(report.churned > 0);
    insta::assert_snapshot!(report.to_string());
}
