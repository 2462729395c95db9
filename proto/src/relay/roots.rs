//! Roots: the members of each club that the relay keeps feeding itself.
//!
//! A member with no source for its club takes the club from its relay and
//! asks PEERS for an older member with room (§11.6). The oldest members
//! have no older member with room and stay on the relay: they are the tops
//! of the club's tree. Left at that, the tops wear away under churn. When
//! one leaves, nobody takes its place at the top: its orphans find other
//! sources below. And a member on the relay keeps asking, so as soon as an
//! older member has a free slot, it moves under it, taking its whole
//! subtree one level or more down. In the simulator (3,000 and 10,000
//! peers, 10% churn a minute) the club trees grew about 0.1 hop deeper
//! every 10 s, and play latency grew with them (BENCHMARKS.md, "Issue 20,
//! eighteenth session").
//!
//! So the relay holds the top: the oldest members of each club, one for
//! every [`MEMBERS_PER_ROOT`] members it has (at least one), are answered
//! PEERS about that club with no one. They keep taking it from the relay,
//! and when one leaves, the next oldest takes its place the next time it
//! asks (when its own source leaves, or at once if it has none). What
//! this costs the relay is one club-stream per root: with 70% of peers
//! members of 2 of 6 clubs, about 2% of what it would send its
//! subscribers directly, whatever the audience (most of it was spent on
//! the roots that formed anyway).

use std::net::SocketAddr;

use super::Relay;
use crate::Time;

/// Members of a club, on one relay, for each root of that club: 2,500
/// peers on a relay (70% of them uploading, each in 2 of 6 clubs) get
/// about 49 roots per club. In the simulator (10,000 peers x 60 s) one
/// root per 18 members gave p99 980 ms and 95.6% useful offload, one per
/// 12 gave 970 ms and 95.4%, against 1010 ms and 95.7% without roots:
/// fewer roots let the trees deepen under churn; more cost the relay
/// offload that the latency does not repay (BENCHMARKS.md).
pub(super) const MEMBERS_PER_ROOT: usize = 12;

impl Relay {
    /// Whether the member (`joined`, `addr`) of `club` on `stream` is one
    /// of the club's roots: among the oldest of its members, one for every
    /// [`MEMBERS_PER_ROOT`].
    pub(super) fn is_root(&self, stream: usize, club: u8, joined: Time, addr: SocketAddr) -> bool {
        self.members
            .rank(stream, club, joined, addr)
            .is_some_and(|(older, all)| older < all.div_ceil(MEMBERS_PER_ROOT))
    }
}
