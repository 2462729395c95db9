//! Publisher -> relay A -> relay B -> viewers.

use std::time::Duration;

use shoal_tests::harness::Star;
use shoal_tests::netsim::LinkConfig;

#[test]
fn chained_relays_deliver_the_exact_stream() {
    let link = LinkConfig::with_latency(Duration::from_millis(15));
    let (mut star, relay_b, viewers) = Star::chain(2.0, link, 20);
    star.run(Duration::from_secs(1));

    let a_stats = star.net.node(star.relay).relay.stats();
    let b_stats = star.net.node(relay_b).relay.stats();
    assert_eq!(a_stats.accepted, 1, "relay B subscribed to A");
    assert_eq!(b_stats.accepted, 20);
    star.assert_exact_stream(&viewers);
}
