//! A viewer that joins mid-stream starts at a keyframe, within one group.

use std::time::Duration;

use shoal_proto::viewer::ViewerConfig;
use shoal_tests::harness::{Star, StarConfig, ViewerNode, addr};
use shoal_tests::netsim::LinkConfig;

#[test]
fn late_joiner_starts_at_a_keyframe_within_one_group() {
    let mut star = Star::new(&StarConfig {
        viewers: 1,
        seconds: 4.0,
        ..StarConfig::default()
    });
    // Join 2.3 s in: mid-way through a one-second group.
    let join = star.net.now() + Duration::from_millis(2_600);
    star.net.run_until(join);
    let a = addr(500);
    let link = LinkConfig::with_latency(Duration::from_millis(20));
    star.net.set_link(addr(1), a, link);
    star.net.set_link(a, addr(1), link);
    let mut config = ViewerConfig::new(addr(1), star.stream_id);
    config.nonce_seed = 99;
    let late = star.net.add_node(a, ViewerNode::new(config, join));
    star.run(Duration::from_secs(1));

    let node = star.net.node(late);
    assert!(node.ended && node.gaps.is_empty());
    let start = star.stream.bytes.len() - node.output.len();
    assert!(
        star.stream.keyframes.contains(&start),
        "output starts at byte {start}, not at a keyframe"
    );
    assert!(
        node.output[..] == star.stream.bytes[start..],
        "output is not the stream's tail"
    );
    let waited = node.first_output_at.expect("played something") - join;
    let group = star.stream.frame_interval * 25;
    println!("late joiner: first output {waited:?} after joining, group {group:?}");
    assert!(
        waited < group,
        "waited {waited:?}, longer than a group of {group:?}"
    );
}
