//! A relay-to-relay link is not cut by spoofed LEAVEs (SPEC §11.4, §14):
//! publisher -> relay A -> relay B -> viewers, and an off-path attacker
//! who knows both relays' addresses sends ten LEAVEs a second each way,
//! with guessed session ids: in B's name to A (to end B's subscription)
//! and in A's name to B (to end B's upstream session). Neither believes
//! them, the viewers get the exact stream, and each relay counts every
//! forged LEAVE as a bad session.

use std::time::Duration;

use shoal_proto::wire::{Leave, LeaveReason, Message};
use shoal_tests::harness::{Star, addr, encode};
use shoal_tests::netsim::LinkConfig;

#[test]
fn spoofed_leaves_at_ten_a_second_each_way_do_not_cut_a_relay_link() {
    let link = LinkConfig::with_latency(Duration::from_millis(15));
    let (mut star, relay_b, viewers) = Star::chain(3.0, link, 5);
    let (a, b) = (addr(1), addr(2));
    let stream = star.stream_id;
    let now = star.net.now();

    // From 100 ms on (B's subscription to A takes two round trips, 60 ms)
    // to past the stream's end.
    let mut guess = 0x243f_6a88_85a3_08d3u64;
    let mut forged = 0u64;
    for i in 1..=40u64 {
        let at = now + Duration::from_millis(100 * i);
        for (from, to, reason) in [(b, a, LeaveReason::Done), (a, b, LeaveReason::ShuttingDown)] {
            guess = guess
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let leave = Leave {
                reason,
                stream,
                session: guess,
            };
            star.net
                .inject(at, from, to, encode(&Message::Leave(leave)));
        }
        forged += 1;
    }
    star.run(Duration::from_secs(1));

    let a_stats = star.net.node(star.relay).relay.stats();
    let b_relay = &star.net.node(relay_b).relay;
    let b_stats = b_relay.stats();
    assert_eq!(a_stats.accepted, 1, "B subscribed to A once: {a_stats:?}");
    assert_eq!(a_stats.drop_bad_session, forged, "{a_stats:?}");
    assert_eq!(b_stats.drop_bad_session, forged, "{b_stats:?}");
    assert!(
        b_relay
            .upstreams()
            .all(|u| u.subscribed && u.failovers == 0),
        "B's upstream session held"
    );
    star.assert_exact_stream(&viewers);
}
