//! The swarm's shared memo of signature checks changes nothing: one seed
//! gives the same trace hash (every delivery and drop, byte for byte, at
//! the same times) and the same table with the memo on and off, and with
//! it on most signature and chunk checks are answered from it.

use std::time::Duration;

use shoal_tests::harness::{Swarm, SwarmConfig, SwarmReport};

fn run(verify_memo: bool) -> (SwarmReport, [u8; 32], Swarm) {
    let mut swarm = Swarm::new(SwarmConfig {
        seed: 11,
        peers: 200,
        seconds: 7.0,
        ramp: Duration::from_secs(1),
        // Churn runs from 3 s to 4.5 s: joiners check old manifests too.
        churn_per_minute: 1.0,
        verify_memo,
        ..SwarmConfig::default()
    });
    let report = swarm.run();
    let trace = swarm.net.trace_hash();
    (report, trace, swarm)
}

#[test]
fn memo_on_and_off_give_the_same_run() {
    let (on, on_trace, swarm) = run(true);
    let (off, off_trace, plain) = run(false);
    assert_eq!(on, off, "memo on:\n{on}\nmemo off:\n{off}");
    assert_eq!(on_trace, off_trace);
    assert!(plain.verify_memo.is_none());
    let stats = swarm.verify_memo.expect("memo on").stats();
    // Peers played something, and nearly every check was a repeat.
    assert!(on.played > 0, "{on}");
    assert!(on.churned > 0, "{on}");
    assert!(stats.hits > 20 * stats.checks, "{stats:?}");
    assert!(stats.chunk_hits > 20 * stats.chunk_checks, "{stats:?}");
    eprintln!("{stats:?}");
}
