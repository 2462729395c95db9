//! Clubs: which the peer joins, and what it asks of its relay.
//!
//! Once the signed descriptor tells how many clubs the stream has, an
//! uploading peer joins [`PeerConfig::join_clubs`](super::PeerConfig) of
//! them at random and tells its relay (MEMBER, repeated, and sent at once
//! to a relay it fails over to). It asks its relay only for the clubs it
//! cannot get from peers: a member club with fewer than `club_sources`
//! working neighbours, any other club with none; and it sends a chunk's
//! first NACK to the neighbour serving its club.

use std::net::SocketAddr;

use super::{FULL_HOLD, MEMBER_EVERY, Peer, RELAY_MASK_HOLD, TICK};
use crate::Time;
use crate::wire::{Member, Message};

/// The clubs the peer joined, and its relay's knowledge of them.
#[derive(Debug)]
pub(super) struct Membership {
    /// The clubs joined, a bit each.
    pub(super) member: u64,
    /// The stream's clubs, from the descriptor (0 before it).
    pub(super) clubs: u8,
    /// When MEMBER is repeated next.
    pub(super) next_member: Time,
    /// When a club was last added to those asked of the relay (never yet:
    /// the first subscription asks for every club).
    pub(super) mask_added: Option<Time>,
    /// The download side's relay when last looked at.
    pub(super) relay: SocketAddr,
    /// The download side moved to another relay, which is owed a MEMBER
    /// once it has accepted the subscription.
    pub(super) member_owed: bool,
    /// Whether the last MEMBER said the upload side is full (upload 0).
    pub(super) full: bool,
    /// When the last MEMBER went to the relay.
    pub(super) member_sent: Time,
    /// When the relay was first seen to have accepted the subscription,
    /// while the descriptor was not yet known.
    pub(super) subscribed_at: Option<Time>,
}

impl Membership {
    pub(super) fn new(relay: SocketAddr, now: Time) -> Self {
        Self {
            member: 0,
            clubs: 0,
            next_member: now,
            mask_added: None,
            relay,
            member_owed: false,
            full: false,
            member_sent: now,
            subscribed_at: None,
        }
    }

    /// Whether `club` is one of the clubs joined.
    pub(super) fn joined(&self, club: u8) -> bool {
        self.member & (1 << club) != 0
    }
}

impl Peer {
    /// Notices the viewer moving to another relay, and sends that relay
    /// the MEMBER as soon as it has accepted the subscription (it takes
    /// MEMBER from subscribers only) rather than at the next repeat.
    pub(super) fn follow_relay(&mut self, now: Time) {
        let relay = self.relays.relay();
        if relay != self.membership.relay {
            self.membership.relay = relay;
            self.membership.member_owed = true;
        }
        if self.membership.member_owed && self.relays.is_subscribed() {
            self.membership.member_owed = false;
            self.send_member(now);
        }
    }

    /// A peer that subscribed before the stream went live (its relay had
    /// accepted it at least a tick before the descriptor came) joins its
    /// clubs and looks for neighbours as soon as the descriptor comes, not
    /// at its next tick: the whole audience learns the descriptor at that
    /// moment, and the relay serves every one of them everything until
    /// they find neighbours. A peer that joins a live stream gets the
    /// descriptor with the relay's first datagrams and keeps to its tick:
    /// starting at once there measured worse in the simulator (300 peers
    /// x 20 s, seeds 1-3: useful offload about 86% -> 82.4 / 83.7 /
    /// 84.1%, twice the refusals and starved neighbours).
    pub(super) fn start_when_live(&mut self, now: Time) {
        if self.membership.clubs != 0 || !self.relays.is_subscribed() {
            return;
        }
        let since = *self.membership.subscribed_at.get_or_insert(now);
        if now.saturating_since(since) >= TICK && self.playout.window().descriptor().is_some() {
            self.next_tick = self.next_tick.min(now);
        }
    }

    /// Tells the relay in use which clubs it is a member of, once it has
    /// picked them (an uploader only).
    pub(super) fn send_member(&mut self, now: Time) {
        if self.config.upload_limit_bps == 0 || self.membership.clubs == 0 {
            return;
        }
        self.membership.next_member = now + MEMBER_EVERY;
        self.membership.member_sent = now;
        let member = Member {
            stream: self.config.stream,
            session: self.relays.session().id(),
            clubs: self.membership.member,
            upload_kbps: self.upload_kbps(),
        };
        let relay = self.relays.relay();
        let _ = self.relay_tx.push_message(relay, &Message::Member(member));
    }

    /// Joins clubs once the descriptor is known, keeps neighbours, and
    /// asks the relay for what peers do not bring.
    pub(super) fn upkeep(&mut self, now: Time) {
        self.beacon(now);
        if self.playout.is_ended() {
            return;
        }
        let Some((clubs, bitrate)) = self
            .playout
            .window()
            .descriptor()
            .map(|(d, _)| (d.clubs.max(1), d.bitrate_bps.max(1)))
        else {
            return;
        };
        if self.membership.clubs != clubs {
            self.membership.clubs = clubs;
            self.membership.member = self.pick_clubs(clubs);
        }
        let slots = self.size_upload(now, clubs, bitrate);
        // A full upload side tells the relay (upload 0), which then stops
        // handing it out: asking it would only bring a refusal, while the
        // relay serves the asker's club. Not more often than FULL_HOLD.
        let full = self.upload.relay.used_club_slots() >= slots;
        if full != self.membership.full
            && now.saturating_since(self.membership.member_sent) >= FULL_HOLD
        {
            self.membership.full = full;
            self.membership.next_member = now;
        }
        if now >= self.membership.next_member {
            self.send_member(now);
        }
        self.neighbours.banned.retain(|_, until| now < *until);
        self.expire_neighbours(now);
        for club in 0..clubs {
            self.fill_club(now, club);
        }
        self.update_relay_clubs(now);
        for club in 0..clubs {
            let route = self
                .neighbours
                .list
                .iter()
                .find(|s| s.serves(club) && s.working())
                .map(|s| (s.addr, s.session.id()));
            self.repair.set_route(club, route);
        }
    }

    pub(super) fn pick_clubs(&mut self, clubs: u8) -> u64 {
        if self.config.upload_limit_bps == 0 {
            return 0;
        }
        let want = self.config.join_clubs.clamp(1, u32::from(clubs));
        let mut mask = 0u64;
        while mask.count_ones() < want {
            mask |= 1 << (self.rng.next_u64() % u64::from(clubs));
        }
        mask
    }

    pub(super) fn wanted_sources(&self, club: u8) -> usize {
        if self.membership.joined(club) {
            self.config.club_sources
        } else {
            1
        }
    }

    pub(super) fn update_relay_clubs(&mut self, now: Time) {
        let mut mask = 0u64;
        for club in 0..self.membership.clubs {
            let working = self
                .neighbours
                .list
                .iter()
                .filter(|s| s.serves(club) && s.working())
                .count();
            if working < self.wanted_sources(club) {
                mask |= 1 << club;
            }
        }
        // A club that lost its last neighbour is asked for at once; clubs
        // are given back to the relay only after the hold since a club was
        // last added, so that a neighbour that comes and goes does not
        // flap the relay's mask. Clubs given back one after another (as
        // neighbours come up at a join) go at once: nothing flaps.
        let adds = mask & !self.relays.clubs() != 0;
        let held = self
            .membership
            .mask_added
            .is_some_and(|t| now.saturating_since(t) < RELAY_MASK_HOLD);
        if mask != self.relays.clubs() && (adds || !held) {
            if adds {
                self.membership.mask_added = Some(now);
            }
            if !self.playout.is_ended() {
                self.relays.set_clubs(now, mask, &mut self.relay_tx);
            }
        }
    }
}
