//! The swarm on two threads is the swarm on one: one seed gives the same
//! trace hash (every delivery and drop at the same times, byte for byte),
//! the same table and the same event count, whatever the split. NATs,
//! uplinks, burst chains, churn and the relays' tree are all on (the
//! defaults), so each per-shard part of the network is in play.

use std::time::Duration;

use shoal_tests::harness::{Swarm, SwarmConfig, SwarmReport};

fn run(threads: usize) -> (SwarmReport, [u8; 32], u64) {
    let mut swarm = Swarm::new(SwarmConfig {
        seed: 5,
        peers: 150,
        seconds: 6.0,
        ramp: Duration::from_secs(1),
        // Churn runs from 3 s to 3.5 s.
        churn_per_minute: 1.0,
        threads,
        ..SwarmConfig::default()
    });
    let report = swarm.run();
    assert_eq!(swarm.net.threads(), threads);
    (report, swarm.net.trace_hash(), swarm.net.stats().events)
}

#[test]
fn one_thread_and_two_give_the_same_run() {
    let (one, one_trace, one_events) = run(1);
    let (two, two_trace, two_events) = run(2);
    assert_eq!(one, two, "one thread:\n{one}\ntwo threads:\n{two}");
    assert_eq!(one_trace, two_trace);
    assert_eq!(one_events, two_events);
    // Something happened worth comparing.
    assert!(one.played > 0 && one.churned > 0, "{one}");
    assert!(one_events > 100_000, "{one_events} events");
}
