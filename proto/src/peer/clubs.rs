//! Clubs: which the peer joins, and what it asks of its relay.
//!
//! Once the signed descriptor tells how many clubs the stream has, an
//! uploading peer joins [`PeerConfig::join_clubs`](super::PeerConfig) of
//! them at random and tells its relay (MEMBER, repeated, and sent at once
//! to a relay it fails over to). It asks its relay only for the clubs it
//! cannot get from peers: a member club with fewer than `club_sources`
//! working neighbours, any other club with none; and it sends a chunk's
//! first NACK to the neighbour serving its club.

use super::{MEMBER_EVERY, Peer, RELAY_MASK_HOLD};
use crate::Time;
use crate::wire::{Member, Message};

impl Peer {
    /// Notices the viewer moving to another relay, and sends that relay
    /// the MEMBER as soon as it has accepted the subscription (it takes
    /// MEMBER from subscribers only) rather than at the next repeat.
    pub(super) fn follow_relay(&mut self, now: Time) {
        let relay = self.relays.relay();
        if relay != self.relay {
            self.relay = relay;
            self.member_owed = true;
        }
        if self.member_owed && self.relays.is_subscribed() {
            self.member_owed = false;
            self.send_member(now);
        }
    }

    /// Tells the relay in use which clubs it is a member of, once it has
    /// picked them (an uploader only).
    pub(super) fn send_member(&mut self, now: Time) {
        if self.config.upload_limit_bps == 0 || self.clubs == 0 {
            return;
        }
        self.next_member = now + MEMBER_EVERY;
        let member = Member {
            stream: self.config.stream,
            session: self.relays.session().id(),
            clubs: self.member,
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
        if self.clubs != clubs {
            self.clubs = clubs;
            self.member = self.pick_clubs(clubs);
        }
        self.size_upload(now, clubs, bitrate);
        if now >= self.next_member {
            self.send_member(now);
        }
        self.banned.retain(|_, until| now < *until);
        self.expire_neighbours(now);
        for club in 0..clubs {
            self.fill_club(now, club);
        }
        self.update_relay_clubs(now);
        for club in 0..clubs {
            let route = self
                .neighbours
                .iter()
                .find(|s| s.club == club && s.working())
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
        if self.member & (1 << club) != 0 {
            self.config.club_sources
        } else {
            1
        }
    }

    pub(super) fn update_relay_clubs(&mut self, now: Time) {
        let mut mask = 0u64;
        for club in 0..self.clubs {
            let working = self
                .neighbours
                .iter()
                .filter(|s| s.club == club && s.working())
                .count();
            if working < self.wanted_sources(club) {
                mask |= 1 << club;
            }
        }
        if mask != self.relays.clubs() && now.saturating_since(self.mask_changed) >= RELAY_MASK_HOLD
        {
            self.mask_changed = now;
            if !self.playout.is_ended() {
                self.relays.set_clubs(now, mask, &mut self.relay_tx);
            }
        }
    }
}
