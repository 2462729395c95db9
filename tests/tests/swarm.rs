//! The swarm in the simulator: ordinary peers and relays together, with
//! the real proto code.

use std::time::Duration;

use shoal_tests::harness::{PeerNode, Swarm, SwarmConfig};
use shoal_tests::netsim::NodeId;

/// A swarm small enough for CI.
fn small(peers: u32, seconds: f64) -> SwarmConfig {
    SwarmConfig {
        peers,
        seconds,
        ramp: Duration::from_secs(1),
        keep_output: true,
        ..SwarmConfig::default()
    }
}

/// Every peer present at the end played an exact suffix of the stream,
/// starting at a keyframe, to its end.
fn assert_exact(swarm: &Swarm, peers: &[NodeId<PeerNode>]) {
    for &p in peers {
        let node = swarm.net.node(p);
        let out = node.output.as_deref().expect("output kept");
        assert!(node.ended, "{}: did not see the end", swarm.net.addr(p));
        assert_eq!(node.gaps, 0, "{}: gaps", swarm.net.addr(p));
        assert!(!out.is_empty());
        assert!(
            swarm.stream.bytes.ends_with(out),
            "{}: output is not the stream's tail",
            swarm.net.addr(p)
        );
        let start = swarm.stream.bytes.len() - out.len();
        assert!(swarm.stream.keyframes.contains(&start));
    }
}

#[test]
fn peers_carry_most_of_the_stream_and_play_it_exactly() {
    let mut swarm = Swarm::new(SwarmConfig {
        churn_per_minute: 0.0,
        loss: 0.0,
        relays: 1,
        ..small(60, 8.0)
    });
    let report = swarm.run();
    let present = swarm.present.clone();
    assert_exact(&swarm, &present);
    assert!(
        report.peer_bytes > report.relay_bytes,
        "peers uploaded less than the relays:\n{report}"
    );
    assert!(report.relay_vs_direct < 0.6, "{report}");
    // Pure viewers upload nothing; uploaders stay under their limit.
    let now = swarm.net.now();
    let mut uploaders = 0;
    for &p in &present {
        let node = swarm.net.node(p);
        let s = node.peer.stats();
        let limit = node.peer.upload_limit_bps();
        if limit == 0 {
            assert_eq!(s.uploaded_bytes, 0);
            assert_eq!(s.member_clubs, 0);
            continue;
        }
        uploaders += u32::from(s.uploaded_bytes > 0);
        let secs = now.saturating_since(node.joined).as_secs_f64() + 0.25;
        let allowed = limit as f64 / 8.0 * secs;
        assert!(
            s.uploaded_bytes as f64 <= allowed,
            "uploaded {} over a limit of {allowed:.0} bytes",
            s.uploaded_bytes
        );
    }
    assert!(uploaders > 0);
}

#[test]
fn a_neighbour_sending_corrupt_chunks_is_dropped_and_nothing_bad_is_played() {
    let mut swarm = Swarm::new(SwarmConfig {
        churn_per_minute: 0.0,
        loss: 0.0,
        ..small(40, 8.0)
    });
    // Let the swarm form, then make the busiest uploader corrupt every
    // chunk it sends.
    let t = swarm.net.now() + Duration::from_secs(4);
    swarm.run_until(t);
    let liar = *swarm
        .present
        .iter()
        .max_by_key(|&&p| swarm.net.node(p).peer.subscriber_addrs().count())
        .expect("peers");
    let from = swarm.net.addr(liar);
    let victims: Vec<_> = swarm.net.node(liar).peer.subscriber_addrs().collect();
    assert!(!victims.is_empty());
    for &to in &victims {
        swarm.net.set_tap(
            from,
            to,
            Box::new(|d: &mut Vec<u8>| {
                if d.get(1) == Some(&0x01)
                    && let Some(last) = d.last_mut()
                {
                    *last ^= 0x55;
                }
                true
            }),
        );
    }
    let report = swarm.run();
    let dropped_bad: u64 = swarm
        .present
        .iter()
        .map(|&p| swarm.net.node(p).peer.stats().dropped_bad)
        .sum();
    assert!(dropped_bad >= 1, "{report}");
    let honest: Vec<_> = swarm
        .present
        .iter()
        .copied()
        .filter(|&p| p != liar)
        .collect();
    assert_exact(&swarm, &honest);
}

#[test]
fn a_silent_neighbour_is_replaced_and_the_recovery_is_measured() {
    let mut swarm = Swarm::new(SwarmConfig {
        churn_per_minute: 0.0,
        loss: 0.0,
        ..small(40, 8.0)
    });
    let t = swarm.net.now() + Duration::from_secs(4);
    swarm.run_until(t);
    // The busiest uploader vanishes without a word.
    let (i, _) = swarm
        .present
        .iter()
        .enumerate()
        .max_by_key(|&(_, &p)| swarm.net.node(p).peer.subscriber_addrs().count())
        .expect("peers");
    let gone = swarm.present.swap_remove(i);
    let had = swarm.net.node(gone).peer.subscriber_addrs().count();
    assert!(had > 0);
    swarm.net.disconnect(gone);
    let report = swarm.run();
    assert!(report.dropped.0 >= had as u64, "{report}");
    let (_, _, max, n) = report.recovery;
    assert!(n >= 1, "{report}");
    assert!(max < Duration::from_secs(5), "{report}");
    let present = swarm.present.clone();
    assert_exact(&swarm, &present);
}
