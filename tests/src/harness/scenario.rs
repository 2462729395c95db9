//! A ready-made topology: one publisher, one relay, N viewers.

use std::time::Duration;

use shoal_proto::StreamId;
use shoal_proto::integrity::PublisherKey;
use shoal_proto::publisher::PublisherConfig;
use shoal_proto::relay::RelayConfig;
use shoal_proto::viewer::ViewerConfig;

use super::{PublisherNode, RelayNode, TestStream, ViewerNode, addr};
use crate::netsim::{LinkConfig, Network, NodeId};

/// Handles to the nodes of a [`Star`].
#[derive(Debug)]
pub struct Star {
    /// The network.
    pub net: Network,
    /// The stream published.
    pub stream: TestStream,
    /// Its id.
    pub stream_id: StreamId,
    /// The publisher.
    pub publisher: NodeId<PublisherNode>,
    /// The relay.
    pub relay: NodeId<RelayNode>,
    /// The viewers.
    pub viewers: Vec<NodeId<ViewerNode>>,
}

/// Settings of a [`Star`].
#[derive(Debug, Clone)]
pub struct StarConfig {
    /// Network seed.
    pub seed: u64,
    /// Number of viewers.
    pub viewers: u32,
    /// Length of the stream in seconds.
    pub seconds: f64,
    /// Bitrate.
    pub bitrate_bps: u64,
    /// Link to every viewer.
    pub viewer_link: LinkConfig,
    /// Publisher to relay.
    pub ingest_link: LinkConfig,
}

impl Default for StarConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            viewers: 10,
            seconds: 2.0,
            bitrate_bps: 2_000_000,
            viewer_link: LinkConfig::with_latency(Duration::from_millis(20)),
            ingest_link: LinkConfig::with_latency(Duration::from_millis(10)),
        }
    }
}

/// Publisher key used by scenarios.
pub fn test_key() -> PublisherKey {
    PublisherKey::from_seed([42; 32])
}

impl Star {
    /// Builds the topology; viewers subscribe at once, before the stream
    /// starts, so they receive it from its first chunk.
    pub fn new(c: &StarConfig) -> Self {
        let mut net = Network::new(c.seed);
        let key = test_key();
        let stream_id = key.stream_id();
        let stream = TestStream::new(c.seed, c.seconds, c.bitrate_bps, 25, 25);
        let relay = net.add_node(addr(1), RelayNode::new(relay_config(c.seed)));
        let now = net.now();
        let viewers = (0..c.viewers)
            .map(|i| {
                let a = addr(100 + i);
                net.set_link(addr(1), a, c.viewer_link);
                net.set_link(a, addr(1), c.viewer_link);
                let mut vc = ViewerConfig::new(addr(1), stream_id);
                vc.nonce_seed = u64::from(i) + 1;
                net.add_node(a, ViewerNode::new(vc, now))
            })
            .collect();
        net.set_link(addr(0), addr(1), c.ingest_link);
        // The stream starts once the viewers have had time to subscribe.
        let start = now + Duration::from_millis(300);
        let publisher = net.add_node(
            addr(0),
            PublisherNode::new(
                key,
                PublisherConfig::default(),
                vec![addr(1)],
                stream.clone(),
                start,
            ),
        );
        Self {
            net,
            stream,
            stream_id,
            publisher,
            relay,
            viewers,
        }
    }

    /// A chain, publisher -> relay A -> relay B -> viewers, of a
    /// `seconds`-long stream: a star with no viewers of its own, and under
    /// its relay (A, at `addr(1)`) relay B at `addr(2)` with `viewers`
    /// viewers (at `addr(200)` on), every hop past A over `link` both ways.
    /// B subscribes to the stream and the viewers to B at once.
    pub fn chain(
        seconds: f64,
        link: LinkConfig,
        viewers: u32,
    ) -> (Self, NodeId<RelayNode>, Vec<NodeId<ViewerNode>>) {
        let mut star = Self::new(&StarConfig {
            viewers: 0,
            seconds,
            ..StarConfig::default()
        });
        let net = &mut star.net;
        let (a, b) = (addr(1), addr(2));
        net.set_link(a, b, link);
        net.set_link(b, a, link);
        let relay_b = net.add_node(b, RelayNode::new(relay_config(2)));
        let stream = star.stream_id;
        net.with_node(relay_b, |node, now| {
            node.relay
                .add_upstream(now, a, stream)
                .expect("valid stream id");
        });
        let now = net.now();
        let viewers = (0..viewers)
            .map(|i| {
                let v = addr(200 + i);
                net.set_link(b, v, link);
                net.set_link(v, b, link);
                let mut c = ViewerConfig::new(b, stream);
                c.nonce_seed = u64::from(i) + 7;
                net.add_node(v, ViewerNode::new(c, now))
            })
            .collect();
        (star, relay_b, viewers)
    }

    /// Asserts that each of `viewers` wrote the whole stream, byte for
    /// byte, with no gap, and saw its end.
    pub fn assert_exact_stream(&self, viewers: &[NodeId<ViewerNode>]) {
        for &v in viewers {
            let node = self.net.node(v);
            assert!(node.ended && node.gaps.is_empty());
            assert!(
                node.output == self.stream.bytes,
                "a viewer's output differs from the stream"
            );
        }
    }

    /// Runs until the stream has ended plus `slack`.
    pub fn run(&mut self, slack: Duration) {
        let end = self.net.now() + Duration::from_millis(300) + self.stream.duration() + slack;
        self.net.run_until(end);
    }
}

/// A relay config with a secret derived from `seed`.
pub fn relay_config(seed: u64) -> RelayConfig {
    let mut secret = [0u8; 32];
    secret[..8].copy_from_slice(&seed.to_be_bytes());
    secret[8] = 0xa5;
    RelayConfig {
        cookie_secret: secret,
        ..RelayConfig::default()
    }
}
