//! Publisher -> relay A -> relay B -> viewers.

use std::time::Duration;

use shoal_proto::viewer::ViewerConfig;
use shoal_tests::harness::{RelayNode, Star, StarConfig, ViewerNode, addr, relay_config};
use shoal_tests::netsim::LinkConfig;

#[test]
fn chained_relays_deliver_the_exact_stream() {
    let mut star = Star::new(&StarConfig {
        viewers: 0,
        seconds: 2.0,
        ..StarConfig::default()
    });
    let b = addr(2);
    let link = LinkConfig::with_latency(Duration::from_millis(15));
    star.net.set_link(addr(1), b, link);
    star.net.set_link(b, addr(1), link);
    let relay_b = star.net.add_node(b, RelayNode::new(relay_config(2)));
    let stream = star.stream_id;
    star.net.with_node(relay_b, |node, now| {
        node.relay
            .add_upstream(now, addr(1), stream)
            .expect("valid stream id");
    });
    let now = star.net.now();
    let viewers: Vec<_> = (0..20u32)
        .map(|i| {
            let a = addr(200 + i);
            star.net.set_link(b, a, link);
            star.net.set_link(a, b, link);
            let mut c = ViewerConfig::new(b, stream);
            c.nonce_seed = u64::from(i) + 7;
            star.net.add_node(a, ViewerNode::new(c, now))
        })
        .collect();
    star.run(Duration::from_secs(1));

    let a_stats = star.net.node(star.relay).relay.stats();
    let b_stats = star.net.node(relay_b).relay.stats();
    assert_eq!(a_stats.accepted, 1, "relay B subscribed to A");
    assert_eq!(b_stats.accepted, 20);
    for v in viewers {
        let node = star.net.node(v);
        assert!(node.ended && node.gaps.is_empty());
        assert!(
            node.output == star.stream.bytes,
            "output through the chain differs"
        );
    }
}
