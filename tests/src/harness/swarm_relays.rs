//! How many relays a swarm gets, how they are chained, and how many
//! subscribers each admits: sized as a deployment would be.
//!
//! - **How many.** One relay per [`PEERS_PER_RELAY`] peers, and never
//!   fewer than [`MIN_RELAYS`]. The relay benchmark serves about 1,000
//!   viewers per core at 3 Mbit/s when it sends them the whole stream; a
//!   swarm peer takes only a small part of the stream from its relay
//!   (MANIFESTs, the clubs no neighbour serves yet, repairs: 16% of the
//!   direct rate at 1,000 peers today, less as the swarm works better), so
//!   bandwidth is not what bounds a relay here. Sessions are: each peer
//!   holds one with its relay (handshake, keepalives, MEMBER, PEERS,
//!   INTRODUCE, NACKs), joins are served full streams until the peer's
//!   neighbours settle, and churn leaves departed peers' sessions to time
//!   out. 2,500 sessions on a one-core relay leaves it room for all that;
//!   it also keeps the 4 relays the swarm had up to 10,000 peers, so
//!   figures at 300 to 10,000 peers stay comparable with earlier runs.
//! - **Chained how.** A tree from the relay the publisher feeds, relay `i`
//!   taking the stream from relay `(i - 1) / fanout` (heap order). Every
//!   level adds a link's latency to everything below it, so the tree is
//!   kept flat: the root feeds every other relay itself, up to
//!   [`MAX_FANOUT`] of them, and only beyond that does it grow a level.
//!   Feeding a child costs a relay one stream of the ~1,000 it could send,
//!   so a fan-out of 32 is cheap. Relays 1 to 3 of 4 hang under the root
//!   (until the thirteenth session of issue 20 relay 3 hung under relay 1,
//!   and its peers' chunks came 50 ms later), 40 give 32 under the root and
//!   7 a level below, and two levels hold up to 1,057 relays.
//! - **Admitting how many.** Peers pick a relay at random, so a relay
//!   holds `peers / relays` on average, plus its children in the tree;
//!   `max_subscribers` is that plus half again (the spread of a random
//!   pick and sessions of departed peers not yet timed out) plus
//!   [`SUBSCRIBER_SLACK`]. At 100,000 peers the default of 10,000 would
//!   have refused about 60,000 peers on 4 relays.

/// Peers one relay is provisioned for.
pub const PEERS_PER_RELAY: u32 = 2_500;
/// Fewest relays a swarm gets.
pub const MIN_RELAYS: u32 = 4;
/// Most relays one relay feeds before the tree grows a level.
pub const MAX_FANOUT: u32 = 32;
/// Subscribers each relay admits beyond its share and half again.
pub const SUBSCRIBER_SLACK: usize = 256;

/// Relays for a swarm of `peers`.
pub fn relays_for(peers: u32) -> u32 {
    peers.div_ceil(PEERS_PER_RELAY).max(MIN_RELAYS)
}

/// Relays each relay feeds in a tree of `relays`.
pub fn fanout(relays: u32) -> u32 {
    let mut f = 2;
    while f < MAX_FANOUT && 1 + f < relays {
        f += 1;
    }
    f
}

/// The relay relay `i` (> 0) takes the stream from, in a tree of `relays`.
pub fn upstream_of(i: u32, relays: u32) -> u32 {
    (i - 1) / fanout(relays)
}

/// What each relay of `relays` admits when `peers` peers pick among them.
pub fn max_subscribers(peers: u32, relays: u32) -> usize {
    let share = peers.div_ceil(relays.max(1)) as usize;
    share + share / 2 + fanout(relays) as usize + SUBSCRIBER_SLACK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(mut i: u32, relays: u32) -> u32 {
        let mut d = 0;
        while i > 0 {
            i = upstream_of(i, relays);
            d += 1;
        }
        d
    }

    #[test]
    fn small_swarms_keep_four_relays_under_the_root() {
        for peers in [1, 300, 1_000, 10_000] {
            assert_eq!(relays_for(peers), 4);
        }
        assert_eq!(
            (1..4).map(|i| upstream_of(i, 4)).collect::<Vec<_>>(),
            [0, 0, 0]
        );
    }

    #[test]
    fn large_swarms_grow_relays_in_a_shallow_tree() {
        assert_eq!(relays_for(100_000), 40);
        assert_eq!(fanout(40), MAX_FANOUT);
        assert_eq!(depth(32, 40), 1);
        assert_eq!(depth(33, 40), 2);
        assert_eq!(relays_for(1_000_000), 400);
        assert_eq!(fanout(400), MAX_FANOUT);
        for relays in [4, 40, 400, 1_057] {
            assert!((1..relays).all(|i| depth(i, relays) <= 2), "{relays}");
        }
        assert!(depth(1_057, 1_058) == 3);
    }

    #[test]
    fn every_relay_admits_its_share_with_room() {
        for peers in [300, 10_000, 100_000, 1_000_000] {
            let relays = relays_for(peers);
            let cap = max_subscribers(peers, relays);
            assert!(cap as u64 * u64::from(relays) >= u64::from(peers) * 3 / 2);
            assert!(cap < 10_000, "{peers}: {cap}");
        }
    }

    /// A tree of 40 relays (32 under the root, 7 a level below) carries the
    /// stream to peers at every relay, the deepest included.
    #[test]
    fn a_two_level_tree_carries_the_stream() {
        use crate::harness::{Swarm, SwarmConfig};
        let relays = 40;
        let mut swarm = Swarm::new(SwarmConfig {
            peers: 120,
            relays,
            seconds: 3.0,
            churn_per_minute: 0.0,
            ..SwarmConfig::default()
        });
        let report = swarm.run();
        assert!(report.played > 120 * 50, "{report}");
        assert!(report.stall_ratio() < 0.01, "{report}");
        let deepest = relays - 1;
        assert_eq!(depth(deepest, relays), 2);
        let node = swarm.relays[deepest as usize];
        assert!(swarm.net.node_stats(node).received_bytes > 100_000);
    }
}
