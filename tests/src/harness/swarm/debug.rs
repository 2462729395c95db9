//! What `SHOAL_SWARM_DEBUG=1` prints after a run: every peer's summed
//! counters, hops from a relay per (peer, club), club links closed into
//! rings, and per 10 s the duplicates, stalls and NACKs per chunk played
//! (where in a run they are: the join ramp or the steady state).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::net::SocketAddr;

use shoal_proto::peer::PeerStats;
use shoal_proto::viewer::ViewerStats;

use super::Swarm;
use crate::harness::peer_node::PeerNode;
use crate::netsim::NodeId;

/// Longest path from a peer toward a relay that is walked; a longer one
/// is a ring.
const MAX_HOPS: usize = 39;

impl Swarm {
    /// Sums of every peer's counters (those that add up), hops, rings and
    /// the run by 10 s, for looking into a run.
    pub fn debug_totals(&self) -> String {
        let (t, v) = self.summed_stats();
        let (hist, rings) = self.hops_and_rings();
        format!(
            "{t:?}\n{v:?}\n{}\nhops from a relay: {hist:?}\nrings of club links (length, of \
             which members of the club): count: {rings:?}\nby 10 s:{}",
            self.relay_totals(),
            self.by_ten_seconds()
        )
    }

    fn summed_stats(&self) -> (PeerStats, ViewerStats) {
        let mut t = PeerStats::default();
        let mut v = ViewerStats::default();
        for &p in &self.peers {
            let s = self.net.node(p).peer.stats();
            t.upload_dropped += s.upload_dropped;
            t.dropped_starved += s.dropped_starved;
            t.uploaded_bytes += s.uploaded_bytes;
            t.working_sources += s.working_sources;
            t.subscribers += s.subscribers;
            t.unsolicited += s.unsolicited;
            t.from_relay_bytes += s.from_relay_bytes;
            t.from_peers_bytes += s.from_peers_bytes;
            t.duplicate_bytes += s.duplicate_bytes;
            t.duplicate_payload_bytes += s.duplicate_payload_bytes;
            t.duplicate_from_relay_payload_bytes += s.duplicate_from_relay_payload_bytes;
            t.from_relay_payload_bytes += s.from_relay_payload_bytes;
            t.from_peers_payload_bytes += s.from_peers_payload_bytes;
            v.nacks_sent += s.viewer.nacks_sent;
            v.fec_repaired += s.viewer.fec_repaired;
            v.nack_repaired += s.viewer.nack_repaired;
            v.played += s.viewer.played;
        }
        (t, v)
    }

    /// What the relays refused or could not send, summed.
    fn relay_totals(&self) -> String {
        let (mut served, mut budget, mut full, mut expired, mut throttled, mut uplink) =
            (0, 0, 0, 0, 0, 0);
        for &r in &self.relays {
            let s = self.net.node(r).relay.stats();
            served += s.nack_served;
            budget += s.drop_repair_budget;
            full += s.drop_full;
            expired += s.expired;
            throttled += s.drop_throttled;
            uplink += self.net.node_stats(r).uplink_dropped;
        }
        format!(
            "relays: NACKed items served {served}, cut by the repair budget {budget}, refused \
             full {full}, expired {expired}, throttled {throttled}, lost in their uplinks {uplink}"
        )
    }

    /// Hops from a relay per present peer and club, over the first working
    /// download neighbour serving the club (`MAX_HOPS` for a path that
    /// runs into a ring), and the rings by (length, members of the club
    /// among them).
    fn hops_and_rings(&self) -> ([u64; MAX_HOPS + 1], BTreeMap<(usize, usize), u32>) {
        let by_addr: HashMap<SocketAddr, NodeId<PeerNode>> = self
            .present
            .iter()
            .map(|&p| (self.net.addr(p), p))
            .collect();
        let upstream = |at: NodeId<PeerNode>, club: u8| {
            let node = &self.net.node(at).peer;
            let (up, _) = node.working_sources().find(|&(_, c)| c == club)?;
            by_addr.get(&up).copied()
        };
        let mut hist = [0u64; MAX_HOPS + 1];
        let mut rings = BTreeMap::new();
        for &p in &self.present {
            for club in 0..self.config.clubs {
                let (mut at, mut hops) = (p, 1);
                while hops < MAX_HOPS {
                    let Some(next) = upstream(at, club) else {
                        break;
                    };
                    at = next;
                    hops += 1;
                }
                hist[hops] += 1;
                if hops < MAX_HOPS {
                    continue;
                }
                // `at` is on a ring (or a path longer than MAX_HOPS).
                let mut ring = vec![at];
                while let Some(next) = upstream(*ring.last().expect("one"), club) {
                    if next == ring[0] || ring.len() > MAX_HOPS {
                        break;
                    }
                    ring.push(next);
                }
                let members = ring
                    .iter()
                    .filter(|&&n| self.net.node(n).peer.stats().member_clubs >> club & 1 != 0)
                    .count();
                let first = ring.iter().map(|&n| self.net.addr(n)).min();
                rings.insert((club, first), (ring.len(), members));
            }
        }
        let mut kinds = BTreeMap::new();
        for &kind in rings.values() {
            *kinds.entry(kind).or_insert(0) += 1;
        }
        (hist, kinds)
    }

    /// Per whole 10 s of the stream: duplicates over new stream payload,
    /// the stall ratio, NACKs sent per chunk played.
    fn by_ten_seconds(&self) -> String {
        let payload: Vec<u64> = self.timeline.iter().map(|&(p, r)| p + r).collect();
        let mut out = String::new();
        for (i, now) in self.debug_timeline.iter().enumerate().step_by(10).skip(1) {
            let then = self.debug_timeline[i - 10];
            let d = |k: usize| now[k].saturating_sub(then[k]) as f64;
            let new = payload[i].saturating_sub(payload[i - 10]) as f64;
            let _ = write!(
                out,
                " [{}-{i} s: dup {:.1}%, stall {:.3}%, nacks/chunk {:.3}]",
                i - 10,
                100.0 * d(0) / new.max(1.0),
                100.0 * d(2) / (d(1) + d(2)).max(1.0),
                d(3) / d(1).max(1.0),
            );
        }
        out
    }
}
