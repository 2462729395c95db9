//! One neighbour, more clubs: a peer that few others can reach asks a
//! neighbour it has to serve a club it has no source for (SPEC §11.9).

use super::neighbour::Neighbour;
use super::{Peer, WIDEN_HOLD};
use crate::Time;
use crate::client::SessionState;

impl Peer {
    /// With no source for `club` and no other candidate left, asks a
    /// working neighbour to serve it too, on the subscription already in
    /// force; whether one was asked. A peer that few others can reach
    /// (behind a NAT that maps every flow anew, which only peers with no
    /// NAT get through) would otherwise take from its relay every club
    /// beyond one per reachable peer (SPEC §11.9). Only by a peer that is
    /// hard to reach ([`Peer::hard_to_reach`]), and not for a member
    /// club's second source: a peer that reaches everyone does better
    /// waiting for a fresh candidate (simulator, 1,000 peers x 20 s, seeds
    /// 1-4, everyone widening: relays +2 to +8 kbit/s per peer, duplicates
    /// +0.4 points in three seeds of four), and of two sources of a club
    /// the slower brings only duplicates and is dropped as starved, which
    /// would take the club it was chosen for with it.
    ///
    /// A neighbour the relay names for the club (a member with room) is
    /// asked first. For a club it is not a member of, any working
    /// neighbour will do: members take their club only from members or
    /// the relay, so whatever serves a non-member the club has it from
    /// the club's tree, unless it is a non-member that widened too. A
    /// neighbour that takes the club from this peer is skipped: it would
    /// have only what it was given (a ring of two). A longer ring needs
    /// three peers few can reach that reach each other, and those reach
    /// only peers with no NAT, which reach everyone and do not widen. For
    /// a member club, only the named: members of a club that widened at
    /// any neighbour took it from non-members that took it from them,
    /// and the club was cut off from the relay for everyone (NAT lab,
    /// the relay's NACK answers 1 -> 3,119). (NAT lab, a quarter of the
    /// peers symmetric, four alternating pairs: relay share median 0.25
    /// -> 0.19.)
    pub(super) fn widen_for(&mut self, now: Time, club: u8) -> bool {
        let Some(bit) = 1u64.checked_shl(u32::from(club)) else {
            return false;
        };
        let list = &self.neighbours.candidates[usize::from(club)];
        let idle = |s: &Neighbour| {
            s.session.state() == SessionState::Subscribed && !s.serves(club) && now >= s.widen_after
        };
        let named = self
            .neighbours
            .list
            .iter()
            .position(|s| idle(s) && list.iter().any(|&a| s.is(a)));
        let relay = &self.upload.relay;
        let any = || {
            if self.membership.joined(club) {
                return None;
            }
            self.neighbours.list.iter().position(|s| {
                idle(s)
                    && relay.subscriber_clubs(s.addr) & bit == 0
                    && relay.subscriber_clubs(s.candidate) & bit == 0
            })
        };
        let Some(i) = named.or_else(any) else {
            return false;
        };
        let s = &mut self.neighbours.list[i];
        // Not again within the hold unless accepted: a neighbour that
        // does not answer is not asked every tick.
        s.widen_after = now + WIDEN_HOLD;
        s.session.widen(now, bit, &mut self.tx);
        true
    }

    /// Whether it has given up on more candidates as unreachable than it
    /// has working neighbours: it sits behind a NAT that few others can
    /// get through (a symmetric NAT reaches only peers with none). Peers
    /// that left count as unreachable too, but a few, not most.
    pub(super) fn hard_to_reach(&self) -> bool {
        let working = self.neighbours.list.iter().filter(|s| s.working()).count();
        self.stats.unreachable > working as u64
    }
}
