//! The upload side: an embedded relay that serves other peers.
//!
//! Every item the download side verifies goes to the upload side (as a
//! mirror: [`Relay::handle_adopt`]), which pushes it to the peers
//! subscribed to that chunk's club; each newly verified chunk is announced
//! in a HAVE to its club's other neighbours. The upload side admits
//! subscriptions up to `upload_limit / (bitrate / clubs)` club-streams, at
//! the rate DATA takes on the wire, and a token bucket holds its stream
//! data to the limit.

use std::net::SocketAddr;
use std::time::Duration;

use super::{BEACON_EVERY, Peer, RATE_SPAN, UPLOAD_BURST};
use crate::Time;
use crate::bucket::TokenBucket;
use crate::relay::{Export, Relay};
use crate::transmit::SharedBuf;
use crate::window::{Adopt, Ready};
use crate::wire::{Have, Message, MessageType, peek_type};

/// Lets through `rate` bytes per second on average, bursts of `burst`.
#[derive(Debug, Clone)]
pub(super) struct UploadLimit {
    rate: u64,
    burst: u64,
    /// In whole bytes: a refill keeps the time of a fraction of a byte.
    bucket: TokenBucket,
}

impl UploadLimit {
    /// A full bucket; `bits_per_second` 0 lets nothing through.
    pub(super) fn new(bits_per_second: u64, burst: Duration, now: Time) -> Self {
        let rate = bits_per_second / 8;
        let burst = (rate.saturating_mul(burst.as_micros() as u64) / 1_000_000).max(1500);
        Self {
            rate,
            burst,
            bucket: TokenBucket::new(burst, now),
        }
    }

    /// Adds what accrued since the last call.
    pub(super) fn refill(&mut self, now: Time) {
        self.bucket.refill(now, self.rate, self.burst);
    }

    /// Takes `bytes` if there are that many.
    pub(super) fn take(&mut self, bytes: usize) -> bool {
        self.rate > 0 && self.bucket.take(bytes as u64)
    }
}

/// The upload side: the embedded relay, its limit, and what sizes it.
#[derive(Debug)]
pub(super) struct Upload {
    /// The embedded relay.
    pub(super) relay: Relay,
    pub(super) limit: UploadLimit,
    /// The datagram [`Peer::poll_transmit`] lent last.
    pub(super) held: Option<(SocketAddr, SharedBuf)>,
    /// When its subscribers get the next beacon HAVE.
    pub(super) next_beacon: Time,
    /// DATA bytes verified since `rate_since`, for the on-wire rate.
    pub(super) rate_bytes: u64,
    pub(super) rate_since: Time,
    /// The stream's DATA rate on the wire, bits per second, once measured.
    pub(super) data_bps: u64,
}

impl Upload {
    pub(super) fn new(relay: Relay, limit_bps: u64, now: Time) -> Self {
        Self {
            relay,
            limit: UploadLimit::new(limit_bps, UPLOAD_BURST, now),
            held: None,
            next_beacon: now,
            rate_bytes: 0,
            rate_since: now,
            data_bps: 0,
        }
    }
}

impl Peer {
    /// The upload side's next datagram within the limit, dropping stream
    /// data over it.
    pub(super) fn poll_upload(&mut self) -> Option<(SocketAddr, SharedBuf)> {
        loop {
            let t = self.upload.relay.poll_transmit()?;
            let (dst, buf) = (t.dst, SharedBuf::clone(t.payload));
            if is_stream_data(&buf) {
                if !self.upload.limit.take(buf.len()) {
                    self.stats.upload_dropped += 1;
                    continue;
                }
                self.stats.uploaded_bytes += buf.len() as u64;
            }
            return Some((dst, buf));
        }
    }

    /// Hands newly verified items to the upload side and announces new
    /// chunks to the club's other neighbours.
    pub(super) fn drain_exports(&mut self, now: Time, from: Option<SocketAddr>) {
        while let Some((item, buf)) = self.exports.pop_front() {
            if let Adopt::Ready(Ready::Data { seq, .. }) = item {
                self.upload.rate_bytes += buf.len() as u64;
                self.announce(seq, from);
                if self.membership.clubs > 0 {
                    let club = (seq % u64::from(self.membership.clubs)) as usize;
                    self.neighbours.last_arrival[club] = now;
                    if let Some(since) = self.neighbours.lost[club].take() {
                        self.neighbours.recoveries.push(now.saturating_since(since));
                    }
                }
            }
            let export = Export {
                stream: self.config.stream,
                item,
                buf,
            };
            self.upload.relay.handle_adopt(now, export);
        }
    }

    pub(super) fn announce(&mut self, seq: u64, from: Option<SocketAddr>) {
        // Slide the HAVE window so that `seq` is in it.
        if seq >= self.have.base + 64 {
            let shift = seq - 63 - self.have.base;
            self.have.mask = self.have.mask.checked_shr(shift as u32).unwrap_or(0);
            self.have.base = seq - 63;
        }
        if seq >= self.have.base {
            self.have.mask |= 1 << (seq - self.have.base);
        }
        if self.membership.clubs == 0 {
            return;
        }
        let club = (seq % u64::from(self.membership.clubs)) as u8;
        // Each server gets it with its own session id.
        let have = |session| {
            Message::Have(Have {
                session,
                ..self.have
            })
        };
        let mut peers_serve = false;
        for s in &self.neighbours.list {
            if s.serves(club) && s.working() {
                peers_serve = true;
                if Some(s.addr) != from {
                    let _ = self.tx.push_message(s.addr, &have(s.session.id()));
                }
            }
        }
        let relay = self.relays.relay();
        if peers_serve && Some(relay) != from && self.relays.clubs() & (1 << club) != 0 {
            let _ = self
                .tx
                .push_message(relay, &have(self.relays.session().id()));
        }
    }

    /// The upload it has room for now (MEMBER): its limit times the share
    /// of its club slots still free; 0 while the upload side is full. The
    /// relay takes a club-stream off it for each INTRODUCE naming us, and
    /// stops handing us out at none (SPEC §6.11).
    pub(super) fn upload_kbps(&self) -> u32 {
        if self.membership.full {
            return 0;
        }
        let limit = self.config.upload_limit_bps / 1000;
        let room = match self.upload.relay.club_slots() {
            Some(slots) if slots > 0 => {
                let free = slots.saturating_sub(self.upload.relay.used_club_slots());
                limit.saturating_mul(u64::from(free)) / u64::from(slots)
            }
            _ => limit,
        };
        u32::try_from(room).unwrap_or(u32::MAX)
    }

    /// The upload side outlives playout: beacon to the peers still served,
    /// so that they do not take the end for a failure.
    pub(super) fn beacon(&mut self, now: Time) {
        if now >= self.upload.next_beacon {
            self.upload.next_beacon = now + BEACON_EVERY;
            for (addr, session) in self.upload.relay.subscriber_sessions() {
                let have = Have {
                    session,
                    ..self.have
                };
                let _ = self.tx.push_message(addr, &Message::Have(have));
            }
        }
    }

    /// Upload capacity in club-streams, at the rate DATA takes on the
    /// wire: measured over the last few seconds (a peak decays by an
    /// eighth per span), and never below the descriptor's bitrate plus a
    /// quarter: DATA headers, NACK answers, and the bursts of keyframes
    /// that the upload limit's 250 ms bucket must absorb. With only the
    /// headers' 5%, a swarm whose publisher declares what it really sends
    /// dropped 122,000 pushes at the limit in 1,000 peers x 30 s (each a
    /// loss for a whole subtree), against 22,000 with a quarter.
    pub(super) fn size_upload(&mut self, now: Time, clubs: u8, bitrate: u64) -> u32 {
        let span = now.saturating_since(self.upload.rate_since);
        if span >= RATE_SPAN {
            let us = u64::try_from(span.as_micros()).unwrap_or(u64::MAX).max(1);
            let measured = self.upload.rate_bytes.saturating_mul(8_000_000) / us;
            self.upload.data_bps = measured.max(self.upload.data_bps - self.upload.data_bps / 8);
            self.upload.rate_bytes = 0;
            self.upload.rate_since = now;
        }
        let wire_bps = crate::relay::wire_bps(bitrate)
            .max(self.upload.data_bps)
            .max(1);
        let slots = self
            .config
            .upload_limit_bps
            .saturating_mul(u64::from(clubs))
            / wire_bps;
        let slots = u32::try_from(slots).unwrap_or(u32::MAX);
        self.upload.relay.set_club_slots(Some(slots));
        slots
    }
}

/// Whether a datagram is stream data (counted against the upload limit).
fn is_stream_data(bytes: &[u8]) -> bool {
    matches!(
        peek_type(bytes),
        Ok(MessageType::Data | MessageType::Parity | MessageType::Manifest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_through_the_rate_and_the_burst_and_no_more() {
        let t0 = Time::from_micros(1_000_000);
        // 8 Mbit/s = 1 MB/s, 250 ms burst = 250 kB.
        let mut b = UploadLimit::new(8_000_000, Duration::from_millis(250), t0);
        let mut sent = 0;
        while b.take(1000) {
            sent += 1000;
        }
        assert_eq!(sent, 250_000);
        // One second later: one second's worth, capped at the burst.
        b.refill(t0 + Duration::from_millis(100));
        let mut more = 0;
        while b.take(1000) {
            more += 1000;
        }
        assert_eq!(more, 100_000);
        b.refill(t0 + Duration::from_secs(10));
        let mut capped = 0;
        while b.take(1000) {
            capped += 1000;
        }
        assert_eq!(capped, 250_000);
    }

    #[test]
    fn a_zero_limit_lets_nothing_through() {
        let t0 = Time::from_micros(1);
        let mut b = UploadLimit::new(0, Duration::from_millis(250), t0);
        b.refill(t0 + Duration::from_secs(5));
        assert!(!b.take(1));
    }
}
