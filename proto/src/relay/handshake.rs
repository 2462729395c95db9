//! The handshake: HELLO, CHALLENGE, SUBSCRIBE, ACCEPT or REJECT.
//!
//! An address that has not echoed a valid cookie gets only CHALLENGE or
//! REJECT, each no longer than the datagram it answers, so the relay can
//! never be used to amplify a spoofed flood. A SUBSCRIBE with a valid
//! cookie proves its address; only then are its token (§11.10) and the
//! limits on subscriptions checked, and a session id drawn.

use std::net::SocketAddr;

use super::budget::RepairBudget;
use super::host::Host;
use super::subscribers::Subscriber;
use super::{Relay, RelayEvent};
use crate::token::{Scope, Token, TokenError};
use crate::wire::{
    About, Accept, Challenge, Message, MessageType, Reject, RejectReason, SUPPORTED_VERSIONS,
};
use crate::{StreamId, Time, WallClock};

impl Relay {
    /// Sets the wall clock that token expiry (§11.10) and the freshness of
    /// signed times (§9.2) are judged by, for every stream's window too.
    /// Call it at start and now and then, so that it follows steps of the
    /// wall clock (the IO shell does at each metrics snapshot).
    pub fn set_wall_clock(&mut self, clock: WallClock) {
        self.config.window.wall_clock = clock;
        for stream in &mut self.streams {
            stream.window.set_wall_clock(clock);
        }
    }

    fn unix_now(&self, now: Time) -> u64 {
        self.config.window.wall_clock.wall_at(now).as_secs()
    }

    /// Answers a HELLO with a CHALLENGE, within the per-IP handshake rate.
    pub(super) fn answer_hello(&mut self, now: Time, from: SocketAddr, h: &crate::wire::Hello) {
        if !self.limiter.allow(now, from.ip()) {
            self.stats.drop_rate_limited += 1;
            return;
        }
        if h.versions & SUPPORTED_VERSIONS == 0 {
            self.reject(from, RejectReason::UnsupportedVersion, StreamId([0; 32]));
            return;
        }
        let c = Challenge {
            nonce: h.nonce,
            cookie: self.cookies.issue(now, from),
        };
        let _ = self.tx.push_message(from, &Message::Challenge(c));
    }

    /// Answers a QUERY with an ABOUT, within the same per-IP rate as
    /// HELLO: the answer is shorter than the QUERY, so a spoofed one
    /// cannot amplify (§11.1).
    pub(super) fn answer_query(&mut self, now: Time, from: SocketAddr, q: &crate::wire::Query) {
        if !self.limiter.allow(now, from.ip()) {
            self.stats.drop_rate_limited += 1;
            return;
        }
        let about = About {
            nonce: q.nonce,
            http_port: self.config.web.http_port,
            page: self.config.web.page.as_bytes(),
        };
        let _ = self.tx.push_message(from, &Message::About(about));
    }

    /// A HELLO in a version we do not speak gets a REJECT listing ours, if
    /// that is no larger than what it answers.
    pub(super) fn answer_unsupported_version(&mut self, from: SocketAddr, bytes: &[u8]) {
        if bytes.get(1) == Some(&(MessageType::Hello as u8))
            && bytes.len() >= crate::wire::REJECT_LEN
        {
            self.reject(from, RejectReason::UnsupportedVersion, StreamId([0; 32]));
        }
    }

    fn reject(&mut self, to: SocketAddr, reason: RejectReason, stream: StreamId) {
        let r = Reject {
            reason,
            versions: SUPPORTED_VERSIONS,
            stream,
        };
        let _ = self.tx.push_message(to, &Message::Reject(r));
    }

    /// REJECT NOT_SUBSCRIBED to a KEEPALIVE or NACK from an address with
    /// no subscription ([`Relay::bound`] counted it), if no larger.
    pub(super) fn not_subscribed(&mut self, from: SocketAddr, len: usize, stream: StreamId) {
        if len >= crate::wire::REJECT_LEN {
            self.reject(from, RejectReason::NotSubscribed, stream);
        }
    }

    pub(super) fn subscribe(
        &mut self,
        now: Time,
        from: SocketAddr,
        s: &crate::wire::Subscribe<'_>,
    ) {
        if self.cookies.check(now, from, &s.cookie).is_err() {
            self.stats.drop_bad_cookie += 1;
            self.reject(from, RejectReason::BadCookie, s.stream);
            return;
        }
        // From here on the address is proven.
        let may_upload = if self.config.require_token {
            match self.check_token(now, from, s) {
                Some(Ok(scope)) => scope.contains(Scope::UPLOAD),
                Some(Err(e)) => {
                    let (counter, reason) = match e {
                        TokenError::Missing => (
                            &mut self.stats.drop_token_missing,
                            RejectReason::TokenRequired,
                        ),
                        TokenError::Expired => (
                            &mut self.stats.drop_token_expired,
                            RejectReason::TokenExpired,
                        ),
                        _ => (
                            &mut self.stats.drop_token_invalid,
                            RejectReason::TokenInvalid,
                        ),
                    };
                    *counter += 1;
                    self.reject(from, reason, s.stream);
                    return;
                }
                None => return,
            }
        } else {
            true
        };
        let existing = self.sub_index.get(&from).copied();
        let host = Host::of(from.ip());
        if existing.is_none()
            && self.sub_hosts.get(host) as usize >= self.config.max_subscriptions_per_ip
        {
            self.stats.drop_source_subscriptions += 1;
            self.reject(from, RejectReason::RateLimited, s.stream);
            return;
        }
        // A relay that takes publishers holds a subscription to a stream
        // that has not gone live yet, so viewers can wait for its start;
        // such a stream counts against the subscriber's host.
        let known = self.stream_index.get(&s.stream);
        let stream = match known {
            Some(i) => i,
            None if self.config.accept_publishers => {
                match self.create_stream(now, s.stream, Some(host)) {
                    Ok(i) => i,
                    Err(r) => {
                        self.stats.count_refusal(r);
                        self.reject(from, r.reject_reason(), s.stream);
                        return;
                    }
                }
            }
            None => {
                self.reject(from, RejectReason::UnknownStream, s.stream);
                return;
            }
        };
        let previous = existing.and_then(|i| self.subs[i].as_ref());
        let over_slots = self.club_slots.is_some_and(|slots| {
            let freed = previous.map_or(0, |p| p.clubs.count_ones());
            self.used_club_slots() - freed + s.clubs.count_ones() > slots
        });
        if (existing.is_none() && self.sub_index.len() >= self.config.max_subscribers) || over_slots
        {
            self.stats.drop_full += 1;
            self.reject(from, RejectReason::Full, s.stream);
            return;
        }
        let (member, upload_kbps, joined, budget) = previous
            .map_or((0, 0, now, RepairBudget::full()), |p| {
                (p.member, p.upload_kbps, p.joined, p.budget)
            });
        // A replacement keeps the session id: the answer to a retransmitted
        // SUBSCRIBE must not change it under the client, and the cookie
        // already proved the address (§11.3).
        let session = match previous {
            Some(p) => p.session,
            None => self.session_ids.draw(from),
        };
        let window = &self.streams[stream].window;
        // Before the run's first chunk, its start (the window's floor).
        let live_edge = window.newest_seq().map_or(window.oldest_seq(), |n| n + 1);
        let start_seq = match s.start_seq {
            // Never `clamp`: a bound the subscriber's numbers cross must
            // not panic.
            Some(seq) => seq.max(window.oldest_seq()).min(live_edge),
            // A keyframe further back than one catch-up can cover would
            // cost a burst of old chunks and still leave a hole: start at
            // the live edge and let the viewer wait for the next one.
            None => window
                .latest_keyframe()
                .filter(|&k| live_edge.saturating_sub(k) <= self.config.nack_limit as u64)
                .unwrap_or(live_edge),
        };
        let sub = Subscriber {
            addr: from,
            session,
            stream,
            clubs: s.clubs,
            start_seq,
            last_heard: now,
            report: None,
            member,
            upload_kbps,
            joined,
            have: None,
            intros: (now, 0),
            may_upload,
            budget,
        };
        let index = match existing {
            Some(i) => {
                if let Some(p) = &self.subs[i] {
                    self.clubs.update(p.stream, p.joined, p.addr, p.listed(), 0);
                    self.members.update(p.stream, p.joined, p.addr, p.member, 0);
                }
                self.clubs.update(sub.stream, joined, from, 0, sub.listed());
                self.members.update(sub.stream, joined, from, 0, sub.member);
                self.subs[i] = Some(sub);
                i
            }
            None => {
                self.clubs.update(sub.stream, joined, from, 0, sub.listed());
                self.members.update(sub.stream, joined, from, 0, sub.member);
                let i = match self.free_subs.pop() {
                    Some(i) => {
                        self.subs[i] = Some(sub);
                        i
                    }
                    None => {
                        self.subs.push(Some(sub));
                        self.subs.len() - 1
                    }
                };
                self.sub_index.insert(from, i);
                self.sub_hosts.add(host);
                i
            }
        };
        self.stats.accepted += 1;
        self.event(RelayEvent::SubscriberJoined(from, s.stream));
        let accept = Accept {
            keepalive_ms: u16::try_from(self.config.keepalive_interval.as_millis())
                .unwrap_or(u16::MAX)
                .max(1),
            stream: s.stream,
            session,
            start_seq,
            observed: from,
        };
        let _ = self.tx.push_message(from, &Message::Accept(accept));
        if let Some(d) = self.streams[stream].window.descriptor_buf() {
            self.tx.push_shared(from, d);
        }
        // A subscription's first catch-up is free; a resubscription's is a
        // repair like any other.
        self.catch_up(now, index, start_seq, live_edge, existing.is_some());
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.config.subscriber_timeout / 4);
        }
    }

    /// Checks a SUBSCRIBE's token: its scope, or why it is refused; `None`
    /// when the check was dropped by the per-IP rate limit (a signature
    /// check costs about as much as answering a HELLO, so unverified tokens
    /// take from the same budget; the client retries).
    fn check_token(
        &mut self,
        now: Time,
        from: SocketAddr,
        s: &crate::wire::Subscribe<'_>,
    ) -> Option<Result<Scope, TokenError>> {
        let unix_now = self.unix_now(now);
        if let Some(t) = self.tokens.get(s.token) {
            if t.stream != s.stream {
                return Some(Err(TokenError::WrongStream));
            }
            if unix_now >= t.expires {
                return Some(Err(TokenError::Expired));
            }
            return Some(Ok(t.scope));
        }
        // Refusals that need no signature check cost nothing to repeat.
        let parsed = match Token::parse(s.token) {
            Ok(t) if t.stream == s.stream && unix_now < t.expires => t,
            _ => {
                return Some(
                    Token::verify(s.token, &s.stream, Scope::WATCH, unix_now).map(|t| t.scope),
                );
            }
        };
        if !self.limiter.allow(now, from.ip()) {
            self.stats.drop_rate_limited += 1;
            return None;
        }
        let checked = Token::verify(s.token, &s.stream, Scope::WATCH, unix_now);
        if checked.is_ok() {
            self.tokens.insert(s.token, parsed);
        }
        Some(checked.map(|t| t.scope))
    }
}
