//! What every scenario needs: the test stream, the state machines as
//! nodes, and addresses.

mod nodes;
mod peer_node;
mod scenario;
mod source;
mod swarm;
mod swarm_json;
pub mod swarm_net;
pub mod swarm_relays;

use std::net::SocketAddr;
use std::time::Duration;

use shoal_proto::wire::Message;

pub use nodes::{PublisherNode, RelayNode, ViewerNode};
pub use peer_node::{LATENCY_BUCKET, LATENCY_BUCKETS, PeerNode};
pub use scenario::{Star, StarConfig, relay_config, test_key};
pub use source::TestStream;
pub use swarm::{Swarm, SwarmConfig, SwarmReport};
pub use swarm_json::{SwarmRun, peak_rss_bytes};

/// Address of node `i` in the simulated network (in memory only; loopback
/// range so that nothing could ever leave the machine even by mistake).
pub fn addr(i: u32) -> SocketAddr {
    let [a, b, c, d] = (0x7f01_0000u32 + i).to_be_bytes();
    SocketAddr::from(([a, b, c, d], 9000))
}

/// `msg`'s bytes on the wire, as an attacker would forge them.
pub fn encode(msg: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0; msg.buffer_len()];
    let len = msg.emit(&mut buf).expect("fits");
    buf.truncate(len);
    buf
}

/// The p-th percentile (0..=100) of `values`.
pub fn percentile(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut v = values.to_vec();
    v.sort();
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}
