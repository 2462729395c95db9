//! NAT in the swarm: peers behind port-restricted cone NATs reach each
//! other through the relay's introductions (hole punching); peers behind
//! symmetric NATs cannot be reached by other peers, and the relay serves
//! them itself. Everyone still plays the exact stream.

use std::time::Duration;

use shoal_tests::harness::{Swarm, SwarmConfig};
use shoal_tests::netsim::Nat;

#[test]
fn cone_nats_are_punched_and_symmetric_nats_are_served_by_the_relay() {
    let mut swarm = Swarm::new(SwarmConfig {
        peers: 60,
        seconds: 8.0,
        relays: 1,
        loss: 0.0,
        churn_per_minute: 0.0,
        cone_nat: 0.4,
        symmetric_nat: 0.2,
        no_upload: 0.0,
        ramp: Duration::from_secs(1),
        keep_output: true,
        ..SwarmConfig::default()
    });
    let report = swarm.run();
    let (mut cone_up, mut cone_down, mut sym_up, mut sym) = (0, 0, 0, 0);
    for &p in &swarm.present {
        let node = swarm.net.node(p);
        let s = node.peer.stats();
        assert!(node.ended && node.gaps == 0, "{report}");
        let out = node.output.as_deref().expect("kept");
        assert!(swarm.stream.bytes.ends_with(out));
        match swarm.net.nat(swarm.net.addr(p)) {
            Nat::Cone => {
                cone_up += s.uploaded_bytes;
                cone_down += s.from_peers_bytes;
            }
            Nat::Symmetric => {
                sym += 1;
                sym_up += s.uploaded_bytes;
            }
            Nat::Open => {}
        }
    }
    assert!(sym > 0);
    assert!(cone_up > 0, "peers behind cone NATs upload after punching");
    assert!(cone_down > 0, "and download from other peers");
    assert_eq!(sym_up, 0, "nobody reaches a peer behind a symmetric NAT");
    let timeouts = report.dropped.3;
    assert!(timeouts > 0, "handshakes toward symmetric NATs time out");
}
