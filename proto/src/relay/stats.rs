//! What a relay counts.

use crate::integrity::Rejection;

/// Counters kept by a [`super::Relay`]; every dropped datagram is counted
/// under exactly one reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Datagrams handled.
    pub datagrams_in: u64,
    /// Bytes handled.
    pub bytes_in: u64,
    /// Stream datagrams (DATA, PARITY, MANIFEST, DESCRIPTOR) sent to
    /// subscribers by fan-out.
    pub forwarded: u64,
    /// Bytes sent by fan-out.
    pub forwarded_bytes: u64,
    /// Chunks resent in answer to NACKs.
    pub nack_served: u64,
    /// Subscriptions accepted.
    pub accepted: u64,
    /// NACKs for lost manifests sent to upstream relays.
    pub manifest_nacks: u64,
    /// INTRODUCE requests forwarded to the peer they name.
    pub introduced: u64,
    /// Subscribers that stopped sending keepalives.
    pub expired: u64,
    /// Exact copies of what was already verified (not counted as drops).
    pub duplicates: u64,
    /// Dropped: not a valid v1 datagram.
    pub drop_malformed: u64,
    /// Dropped: signature does not verify.
    pub drop_forged: u64,
    /// Dropped: content disagrees with its signed manifest.
    pub drop_corrupted: u64,
    /// Dropped: duplicate, stale or replayed.
    pub drop_replayed: u64,
    /// Dropped: a DESCRIPTOR or MANIFEST that would start or move a run
    /// with a signed time outside the freshness bound (recorded data).
    pub drop_stale: u64,
    /// Dropped unchecked: a MANIFEST or DESCRIPTOR while the stream's
    /// budget for failing signature checks is spent (a forgery flood).
    pub drop_throttled: u64,
    /// Dropped: for a stream this relay does not carry, or wrong club.
    pub drop_wrong_stream: u64,
    /// Dropped: an item adopted from the worker that ingests its stream
    /// (or an upstream added) for a stream this relay could not add, as it
    /// carries `max_streams` already. A DESCRIPTOR or SUBSCRIBE that would
    /// create a stream past the limit is refused as `drop_full`.
    pub drop_stream_limit: u64,
    /// Dropped: the stream id is not a valid key.
    pub drop_bad_key: u64,
    /// Dropped: manifest never arrived.
    pub drop_manifest_missing: u64,
    /// Dropped: DATA or PARITY before its manifest from an address not
    /// proven to carry the stream.
    pub drop_unproven: u64,
    /// Refused: SUBSCRIBE with a bad or expired cookie.
    pub drop_bad_cookie: u64,
    /// Dropped: a session message from an address with no subscription.
    pub drop_not_subscribed: u64,
    /// Dropped unanswered: a session message from a subscriber's address
    /// without its session id (spoofed, or from an ended session).
    pub drop_bad_session: u64,
    /// Refused: subscriber or stream limit reached.
    pub drop_full: u64,
    /// Dropped unanswered: HELLO, or SUBSCRIBE with a token to check, over
    /// the per-IP handshake rate.
    pub drop_rate_limited: u64,
    /// Refused: SUBSCRIBE without a token where one is required.
    pub drop_token_missing: u64,
    /// Refused: SUBSCRIBE with a malformed, forged, wrong-stream or
    /// wrong-scope token.
    pub drop_token_invalid: u64,
    /// Refused: SUBSCRIBE with an expired token.
    pub drop_token_expired: u64,
    /// Ignored: MEMBER from a subscriber whose token lacks UPLOAD.
    pub drop_token_scope: u64,
    /// Refused: a DESCRIPTOR or SUBSCRIBE that would create a stream not in
    /// the relay's `publishers` list.
    pub drop_not_allowed: u64,
    /// Refused: a DESCRIPTOR or SUBSCRIBE that would create a stream beyond
    /// its source host's `max_streams_per_source`.
    pub drop_source_streams: u64,
    /// Refused: a SUBSCRIBE beyond its source host's
    /// `max_subscriptions_per_ip`.
    pub drop_source_subscriptions: u64,
    /// Cut short: a NACK, PEERS or resubscription answer beyond the
    /// subscriber's repair budget (counted once per request).
    pub drop_repair_budget: u64,
    /// Streams removed for being idle (not drops).
    pub streams_removed: u64,
}

impl RelayStats {
    /// Counts a stream that was not created.
    pub(crate) fn count_refusal(&mut self, r: super::Refusal) {
        let c = match r {
            super::Refusal::NotAllowed => &mut self.drop_not_allowed,
            super::Refusal::SourceLimit => &mut self.drop_source_streams,
            super::Refusal::Full => &mut self.drop_full,
            super::Refusal::BadKey => &mut self.drop_bad_key,
        };
        *c += 1;
    }

    pub(crate) fn count(&mut self, r: Rejection) {
        let c = match r {
            Rejection::Malformed(_) => &mut self.drop_malformed,
            Rejection::Forged => &mut self.drop_forged,
            Rejection::Corrupted => &mut self.drop_corrupted,
            Rejection::Replayed => &mut self.drop_replayed,
            Rejection::Stale => &mut self.drop_stale,
            Rejection::Throttled => &mut self.drop_throttled,
            Rejection::WrongStream => &mut self.drop_wrong_stream,
            Rejection::StreamLimit => &mut self.drop_stream_limit,
            Rejection::BadStreamKey => &mut self.drop_bad_key,
            Rejection::ManifestMissing => &mut self.drop_manifest_missing,
            Rejection::Unproven => &mut self.drop_unproven,
        };
        *c += 1;
    }

    /// All drops, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.drop_malformed
            + self.drop_forged
            + self.drop_corrupted
            + self.drop_replayed
            + self.drop_stale
            + self.drop_throttled
            + self.drop_wrong_stream
            + self.drop_stream_limit
            + self.drop_bad_key
            + self.drop_manifest_missing
            + self.drop_unproven
            + self.drop_bad_cookie
            + self.drop_not_subscribed
            + self.drop_bad_session
            + self.drop_full
            + self.drop_rate_limited
            + self.drop_token_missing
            + self.drop_token_invalid
            + self.drop_token_expired
            + self.drop_token_scope
            + self.drop_not_allowed
            + self.drop_source_streams
            + self.drop_source_subscriptions
            + self.drop_repair_budget
    }
}
