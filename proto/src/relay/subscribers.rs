//! The subscriber table: who is subscribed, to what, and the one check
//! every session message passes.
//!
//! Binding: each subscription has a session id, drawn at its first ACCEPT
//! ([`super::session_ids`]); every later session message must carry it, or
//! it is dropped unanswered and counted (`drop_bad_session`). The one check
//! is [`Relay::bound`]; what the relay sends a subscriber carries the id
//! too. A subscriber silent for `subscriber_timeout` is dropped.

use std::net::SocketAddr;

use super::Relay;
use super::RelayEvent;
use super::budget::RepairBudget;
use super::host::Host;
use crate::wire::{Have, Keepalive, Leave, LeaveReason, Message};
use crate::{StreamId, Time};

/// One subscription: an address proven by its cookie, on one stream.
#[derive(Debug)]
pub(super) struct Subscriber {
    pub(super) addr: SocketAddr,
    /// Its session id (ACCEPT): every session message it sends carries it.
    pub(super) session: u64,
    pub(super) stream: usize,
    pub(super) clubs: u64,
    pub(super) start_seq: u64,
    pub(super) last_heard: Time,
    pub(super) report: Option<Keepalive>,
    /// Clubs it forwards as an ordinary peer (MEMBER); 0: none.
    pub(super) member: u64,
    /// Upload it has room for now, kbit/s: what its last MEMBER said, less
    /// a club-stream for each INTRODUCE naming it since (each is most
    /// likely a subscription on its way); 0 while its upload side is full.
    pub(super) upload_kbps: u32,
    /// When it first subscribed: PEERS orders club members by it.
    pub(super) joined: Time,
    /// Its newest HAVE: chunks not to push.
    pub(super) have: Option<Have>,
    /// INTRODUCE requests in the current second, and when it began.
    pub(super) intros: (Time, u32),
    /// May announce itself as an uploader (MEMBER): its token's scope, or
    /// always when tokens are not required.
    pub(super) may_upload: bool,
    /// What it may still cost in repairs.
    pub(super) budget: RepairBudget,
}

/// What a stream of `bitrate_bps` is taken to need on the wire when club
/// slots are counted: the bitrate and a quarter (DATA headers, NACK
/// answers, keyframe bursts). Peers size their upload slots by it, and a
/// relay takes a club-stream of it off a member's room per INTRODUCE, so
/// the two agree. Saturates: the bitrate is the publisher's word.
pub(crate) fn wire_bps(bitrate_bps: u64) -> u64 {
    bitrate_bps.saturating_add(bitrate_bps / 4)
}

/// The clubs a subscriber is listed for in PEERS: those it forwards,
/// while it offers upload (a member whose upload side is full says so
/// with `upload_kbps` 0, §6.11, and is not handed out until it has room).
pub(super) fn listed(member: u64, upload_kbps: u32) -> u64 {
    if upload_kbps > 0 { member } else { 0 }
}

impl Subscriber {
    /// Whether it forwards some of what it takes from us: a member of a
    /// club it subscribed to (fan-out serves these first).
    pub(super) fn forwards(&self) -> bool {
        self.member & self.clubs != 0
    }

    /// See [`listed`].
    pub(super) fn listed(&self) -> u64 {
        listed(self.member, self.upload_kbps)
    }
}

/// Why a session message was not taken from its source (see
/// [`Relay::bound`]); the drop is already counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unbound {
    /// No subscription at the source address.
    NoSubscription,
    /// A subscription, but not this session id.
    BadSession,
    /// The session's, but for another stream.
    OtherStream,
}

impl Relay {
    /// Limits subscriptions to `slots` club-streams in total (a subscriber
    /// to `n` clubs takes `n`), for an ordinary peer's upload side;
    /// `None` lifts the limit.
    pub fn set_club_slots(&mut self, slots: Option<u32>) {
        self.club_slots = slots;
    }

    /// The limit set by [`Relay::set_club_slots`].
    pub fn club_slots(&self) -> Option<u32> {
        self.club_slots
    }

    /// Club-streams the current subscribers take.
    pub fn used_club_slots(&self) -> u32 {
        self.subs
            .iter()
            .flatten()
            .map(|s| s.clubs.count_ones())
            .sum()
    }

    /// Addresses of the current subscribers.
    pub fn subscriber_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.subs.iter().flatten().map(|s| s.addr)
    }

    /// The session id of the subscriber at `addr`, if there is one.
    pub fn subscriber_session(&self, addr: SocketAddr) -> Option<u64> {
        let &i = self.sub_index.get(&addr)?;
        self.subs[i].as_ref().map(|s| s.session)
    }

    /// The clubs the subscriber at `addr` takes, a bit each; 0 if none.
    pub fn subscriber_clubs(&self, addr: SocketAddr) -> u64 {
        self.sub_index
            .get(&addr)
            .and_then(|&i| self.subs[i].as_ref())
            .map_or(0, |s| s.clubs)
    }

    /// The current subscribers' addresses with their session ids, for
    /// what an owner sends them itself (an ordinary peer's HAVE).
    pub fn subscriber_sessions(&self) -> impl Iterator<Item = (SocketAddr, u64)> + '_ {
        self.subs.iter().flatten().map(|s| (s.addr, s.session))
    }

    /// Current subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.sub_index.len()
    }

    /// The subscriber a session message from `from` for `stream`, carrying
    /// `session`, belongs to: the one check every session message after
    /// the handshake passes (SPEC §11.4). Marks it heard; counts a drop.
    pub(super) fn bound(
        &mut self,
        now: Time,
        from: SocketAddr,
        stream: StreamId,
        session: u64,
    ) -> Result<usize, Unbound> {
        let sub = self
            .sub_index
            .get(&from)
            .and_then(|&i| Some((i, self.subs[i].as_mut()?)));
        let Some((i, sub)) = sub else {
            self.stats.drop_not_subscribed += 1;
            return Err(Unbound::NoSubscription);
        };
        // The id first: a spoofer's guess is counted as what it is,
        // whatever stream it names.
        if sub.session != session {
            self.stats.drop_bad_session += 1;
            return Err(Unbound::BadSession);
        }
        if self.streams[sub.stream].window.stream() != stream {
            self.stats.drop_not_subscribed += 1;
            return Err(Unbound::OtherStream);
        }
        sub.last_heard = now;
        Ok(i)
    }

    pub(super) fn remove_subscriber(&mut self, index: usize, reason: LeaveReason, tell: bool) {
        let Some(sub) = self.subs.get_mut(index).and_then(Option::take) else {
            return;
        };
        self.sub_index.remove(&sub.addr);
        self.clubs
            .update(sub.stream, sub.joined, sub.addr, sub.listed(), 0);
        self.members
            .update(sub.stream, sub.joined, sub.addr, sub.member, 0);
        self.sub_hosts.remove(Host::of(sub.addr.ip()));
        self.free_subs.push(index);
        if tell {
            let leave = Leave {
                reason,
                stream: self.streams[sub.stream].window.stream(),
                session: sub.session,
            };
            let _ = self.tx.push_message(sub.addr, &Message::Leave(leave));
        }
        self.event(RelayEvent::SubscriberLeft(sub.addr, reason));
    }

    /// Drops the subscribers silent for `subscriber_timeout`, telling them.
    pub(super) fn expire_subscribers(&mut self, now: Time) {
        if let Some(t) = self.next_sweep
            && now >= t
        {
            for i in 0..self.subs.len() {
                let expired = self.subs[i]
                    .as_ref()
                    .is_some_and(|s| now - s.last_heard > self.config.subscriber_timeout);
                if expired {
                    self.stats.expired += 1;
                    self.remove_subscriber(i, LeaveReason::Expired, true);
                }
            }
            self.next_sweep =
                (!self.sub_index.is_empty()).then(|| now + self.config.subscriber_timeout / 4);
        }
    }
}
