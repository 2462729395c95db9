//! The swarm: what a relay tells subscribers about each other.
//!
//! Ordinary peers announce the clubs they forward (MEMBER) and what they
//! hold (HAVE); the relay answers PEERS with a random sample of a club's
//! members, and forwards INTRODUCE to the member it names so that the two
//! can punch through their NATs. PEERS answers are paid from the asker's
//! repair budget and INTRODUCE is rate-limited per subscriber, so neither
//! can be used to make the relay send more than it is asked for.

use std::net::SocketAddr;
use std::time::Duration;

use super::Relay;
use crate::Time;
use crate::wire::{Have, Introduce, MAX_PEERS, Message, Peers};

/// How long after subscribing a subscriber that has declared no club is
/// answered as a member (see [`Relay::answer_peers`]): a member's MEMBER
/// comes within a round trip; a viewer's never does, and past this it is
/// named every member. Without it viewers got only older members, which
/// cost a 300-peer swarm 2.4 points of useful offload.
pub(super) const MEMBER_GRACE: Duration = Duration::from_secs(2);

/// INTRODUCE requests forwarded per subscriber per second.
pub(super) const INTRODUCE_RATE: u32 = 20;

impl Relay {
    /// Answers a PEERS request with up to [`MAX_PEERS`] members of `club`,
    /// sampled at random. An asker that is itself a member of `club` gets
    /// only members that joined before it: club links then always run
    /// from older to newer members, so they never form a cycle cut off
    /// from the relay. So does an asker that may upload but has declared
    /// no club in its first [`MEMBER_GRACE`]: a member sends MEMBER and
    /// PEERS together and jitter can reorder them, and answered as a
    /// non-member it was named younger members, whose links then closed
    /// into rings (BENCHMARKS.md, "Issue 20, tenth session"). A pure
    /// viewer, which never sends MEMBER, gets every member after that.
    /// A member that is one of the club's roots (see [`super::roots`])
    /// is named no one: the relay feeds it the club itself.
    pub(super) fn answer_peers(&mut self, now: Time, from: SocketAddr, sub: usize, club: u8) {
        let Some(s) = &self.subs[sub] else { return };
        let (stream, joined) = (s.stream, s.joined);
        let undeclared = s.may_upload && s.member == 0 && now < joined + MEMBER_GRACE;
        let mut peers = Peers::new(self.streams[stream].window.stream(), s.session, club);
        let bit = 1u64.checked_shl(u32::from(club)).unwrap_or(0);
        let older_than = (undeclared || s.member & bit != 0).then_some((joined, from));
        let root = s.member & bit != 0 && self.is_root(stream, club, joined, from);
        let mut chosen = [from; MAX_PEERS];
        let n = if root {
            0
        } else {
            self.clubs
                .sample(&mut self.rng, stream, club, older_than, &mut chosen)
        };
        for &addr in chosen.iter().take(n) {
            peers.push(addr);
        }
        let answer = Message::Peers(peers);
        let mut budget = self.repair_budget(now, sub);
        let paid = budget.as_mut().is_none_or(|b| b.spend(answer.buffer_len()));
        self.settle_repair(sub, budget, !paid);
        if paid {
            let _ = self.tx.push_message(from, &answer);
        }
    }

    /// Keeps a subscriber's newest HAVE: the chunks fan-out skips for it.
    pub(super) fn take_have(&mut self, now: Time, from: SocketAddr, h: &Have) {
        if let Ok(i) = self.bound(now, from, h.stream, h.session)
            && let Some(sub) = &mut self.subs[i]
        {
            let newer = sub.have.is_none_or(|old| h.base >= old.base);
            if newer {
                sub.have = Some(*h);
            }
        }
    }

    /// Takes a subscriber's MEMBER: the clubs it forwards and its upload,
    /// if its token lets it upload. A member offering no upload now (its
    /// upload side is full) stays a member (what it may ask PEERS about
    /// is unchanged) but is not handed out.
    pub(super) fn take_member(&mut self, now: Time, from: SocketAddr, m: &crate::wire::Member) {
        if let Ok(i) = self.bound(now, from, m.stream, m.session)
            && let Some(sub) = &mut self.subs[i]
        {
            if !sub.may_upload && m.clubs != 0 {
                self.stats.drop_token_scope += 1;
                return;
            }
            let now_listed = super::subscribers::listed(m.clubs, m.upload_kbps);
            self.clubs
                .update(sub.stream, sub.joined, sub.addr, sub.listed(), now_listed);
            self.members
                .update(sub.stream, sub.joined, sub.addr, sub.member, m.clubs);
            sub.member = m.clubs;
            sub.upload_kbps = m.upload_kbps;
        }
    }

    /// Forwards a subscriber's INTRODUCE to the subscriber it names, with
    /// the requester's address, so that the named peer PUNCHes toward it.
    pub(super) fn introduce(&mut self, now: Time, from: SocketAddr, intro: &Introduce) {
        let Ok(requester) = self.bound(now, from, intro.stream, intro.session) else {
            return;
        };
        let Some(&named) = self.sub_index.get(&intro.addr) else {
            self.stats.drop_not_subscribed += 1;
            return;
        };
        let Some(sub) = self.subs[requester].as_mut() else {
            return;
        };
        let stream = sub.stream;
        if now - sub.intros.0 >= Duration::from_secs(1) {
            sub.intros = (now, 0);
        }
        if sub.intros.1 >= INTRODUCE_RATE {
            self.stats.drop_rate_limited += 1;
            return;
        }
        sub.intros.1 += 1;
        let Some(target) = self.subs[named].as_ref().filter(|t| t.stream == stream) else {
            self.stats.drop_not_subscribed += 1;
            return;
        };
        // The receiver checks the id of its own subscription.
        let forward = Introduce {
            stream: intro.stream,
            session: target.session,
            addr: from,
        };
        self.stats.introduced += 1;
        let _ = self
            .tx
            .push_message(intro.addr, &Message::Introduce(forward));
        self.take_room(named);
    }

    /// An INTRODUCE named member `index`: most likely a subscription to one
    /// of its clubs follows, so its room shrinks by one club-stream (the
    /// stream's bitrate and a quarter for headers, over its clubs, as a
    /// peer sizes its upload slots, SPEC §11.9), and at none it is not
    /// handed out until its next MEMBER says how much it has. Without
    /// this, a member stayed listed until it told the relay it was full,
    /// and peers that joined meanwhile were refused: at 1,000 peers, 6.8
    /// refusals per peer, each leaving a club to the relay for about half
    /// a second. An INTRODUCE that brings no subscription (a NAT in the
    /// way, a hostile requester) unlists a member at most until its next
    /// MEMBER (every 5 s): the relay serves the club meanwhile.
    fn take_room(&mut self, index: usize) {
        let Some(sub) = self.subs[index].as_mut() else {
            return;
        };
        let Some((d, _)) = self.streams[sub.stream].window.descriptor() else {
            return;
        };
        let club_kbps = super::wire_bps(d.bitrate_bps) / u64::from(d.clubs.max(1)) / 1000;
        let club_kbps = u32::try_from(club_kbps.max(1)).unwrap_or(u32::MAX);
        let was = sub.listed();
        sub.upload_kbps = sub.upload_kbps.saturating_sub(club_kbps);
        let listed = sub.listed();
        if listed != was {
            self.clubs
                .update(sub.stream, sub.joined, sub.addr, was, listed);
        }
    }
}
