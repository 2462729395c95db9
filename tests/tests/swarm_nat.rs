//! NAT in the swarm: which peers link, per NAT kind pair, is the table in
//! `tests/natlab/links.txt`, the one the NAT lab measures on real Linux
//! NATs. Peers behind cone NATs reach each other through the relay's
//! introductions (hole punching) within a few seconds of joining; peers
//! behind symmetric NATs upload only to peers without a NAT; everyone still
//! plays the exact stream, the relay serving what peers cannot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use shoal_tests::harness::{Swarm, SwarmConfig};
use shoal_tests::nat_table::LinkTable;
use shoal_tests::netsim::Nat;

/// The lab's goal for a cone peer: a working neighbour this soon after it
/// joins.
const FIRST_NEIGHBOUR: Duration = Duration::from_secs(3);

#[test]
fn links_form_per_nat_kind_pair_as_the_lab_measures() {
    let mut swarm = Swarm::new(SwarmConfig {
        peers: 60,
        seconds: 8.0,
        relays: 1,
        loss: 0.0,
        churn_per_minute: 0.0,
        cone_nat: 0.5,
        symmetric_nat: 0.25,
        no_upload: 0.0,
        ramp: Duration::from_secs(1),
        keep_output: true,
        ..SwarmConfig::default()
    });
    let report = swarm.run();
    let kind: HashMap<IpAddr, Nat> = swarm
        .present
        .iter()
        .map(|&p| {
            let a = swarm.net.addr(p);
            (a.ip(), swarm.net.nat(a))
        })
        .collect();
    let mut table = LinkTable::default();
    let mut counts = HashMap::new();
    let (mut sym_up, mut late) = (0, Vec::new());
    for &p in &swarm.present {
        let node = swarm.net.node(p);
        assert!(node.ended && node.gaps == 0, "{report}");
        let out = node.output.as_deref().expect("kept");
        assert!(swarm.stream.bytes.ends_with(out));
        let mine = swarm.net.nat(swarm.net.addr(p));
        *counts.entry(mine).or_insert(0) += 1;
        for (_, link) in &node.links {
            let theirs = kind
                .get(&link.addr.ip())
                .copied()
                .expect("a peer's address");
            table.link(mine, theirs);
        }
        match mine {
            Nat::Cone => match node.links.first() {
                Some(&(at, _)) if at.saturating_since(node.joined) <= FIRST_NEIGHBOUR => {}
                first => late.push((
                    swarm.net.addr(p),
                    node.joined,
                    first.map(|(at, _)| *at - node.joined),
                    node.peer.stats(),
                )),
            },
            Nat::Symmetric => sym_up += node.peer.stats().uploaded_bytes,
            Nat::Open => {}
        }
    }
    assert!(counts.len() == 3, "every kind present: {counts:?}");
    assert_eq!(
        table,
        LinkTable::expected(),
        "links formed (row downloads from column):\n{table}\nexpected:\n{}",
        LinkTable::expected()
    );
    assert!(
        late.is_empty(),
        "cone peers without a neighbour within 3 s: {late:?}"
    );
    assert!(
        sym_up > 0,
        "peers behind symmetric NATs upload to open peers"
    );
}
