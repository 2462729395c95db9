//! Who may create a stream, and when a stream is let go.
//!
//! A relay that takes publishers creates a stream for any DESCRIPTOR that
//! verifies, and (so that viewers can wait for a stream to go live) for a
//! SUBSCRIBE to a stream it does not carry. Stream ids are free: anyone can
//! make a key and sign a DESCRIPTOR. Without limits, 64 throwaway keys fill
//! the stream table until restart. So:
//!
//! - `publishers`, when not empty, is the list of streams that may be
//!   created at all; anything else is refused before its signature is
//!   checked (`not_allowed`).
//! - One source host (IPv4 address or IPv6 /64, [`Host`]) may have created
//!   at most `max_streams_per_source` of the streams held
//!   (`source_streams`); a stream counts against the host that created it,
//!   by DESCRIPTOR or by SUBSCRIBE, until it is removed.
//! - A stream with no verified DESCRIPTOR, MANIFEST or DATA for
//!   `stream_idle_timeout` is removed, its subscribers told LEAVE
//!   END_OF_STREAM, its window freed and its slot reused. A stream that
//!   never went live (no DESCRIPTOR held) is kept while subscribers wait
//!   for it, so the timeout counts from its last subscriber. Streams pulled
//!   from an upstream by configuration are never removed: the relay keeps
//!   asking its upstreams for them, as it was told to (an upstream that
//!   removed the stream says LEAVE END_OF_STREAM, and the upstream session
//!   subscribes again).
//!
//! Mirrors (streams adopted from the worker that ingests them) and
//! configured streams are created without these checks: the owner, or the
//! operator, already admitted them. A mirror is not timed out here either:
//! it goes when its owner says so ([`Relay::remove_stream`]), so that a
//! mirror never outlives or undercuts its owner's view, and a relay that
//! only mirrors (an ordinary peer's upload side) runs no idle timer.

use super::host::Host;
use super::{Relay, RelayEvent, Stream};
use crate::integrity::StreamKey;
use crate::window::{Window, WindowConfig};

use crate::wire::{LeaveReason, RejectReason};
use crate::{StreamId, Time};

/// Why a stream was not created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not in the `publishers` list.
    NotAllowed,
    /// Its source host already created `max_streams_per_source` streams.
    SourceLimit,
    /// The stream table is full.
    Full,
    /// The id is not an ed25519 key.
    BadKey,
}

impl Refusal {
    /// What a SUBSCRIBE that would have created the stream is told.
    pub(crate) fn reject_reason(self) -> RejectReason {
        match self {
            Self::NotAllowed | Self::BadKey => RejectReason::UnknownStream,
            Self::SourceLimit => RejectReason::RateLimited,
            Self::Full => RejectReason::Full,
        }
    }
}

impl Relay {
    /// Whether `creator` may create stream `id` now (see the module docs).
    pub(super) fn may_create(&self, id: &StreamId, creator: Option<Host>) -> Result<(), Refusal> {
        if !self.config.publishers.is_empty() && !self.config.publishers.contains(id) {
            return Err(Refusal::NotAllowed);
        }
        if let Some(host) = creator
            && self.stream_hosts.get(host) as usize >= self.config.max_streams_per_source
        {
            return Err(Refusal::SourceLimit);
        }
        if self.stream_count() >= self.config.max_streams {
            return Err(Refusal::Full);
        }
        Ok(())
    }

    /// Creates stream `id` for `creator`, if [`Self::may_create`] allows.
    pub(super) fn create_stream(
        &mut self,
        now: Time,
        id: StreamId,
        creator: Option<Host>,
    ) -> Result<usize, Refusal> {
        self.may_create(&id, creator)?;
        let i = self.add_stream(id).map_err(|_| Refusal::BadKey)?;
        let stream = &mut self.streams[i];
        stream.last_active = Some(now);
        stream.creator = creator;
        if let Some(host) = creator {
            self.stream_hosts.add(host);
        }
        if self.next_idle_sweep.is_none() {
            self.next_idle_sweep = Some(now + self.idle_sweep_every());
        }
        Ok(i)
    }

    /// Removes the idle streams (see the module docs) and plans the next
    /// look.
    pub(super) fn sweep_idle_streams(&mut self, now: Time) {
        if self.next_idle_sweep.is_none_or(|t| now < t) {
            return;
        }
        let timeout = self.config.stream_idle_timeout;
        let mut subscribed = vec![false; self.streams.len()];
        for s in self.subs.iter().flatten() {
            if let Some(flag) = subscribed.get_mut(s.stream) {
                *flag = true;
            }
        }
        let mut watched = false;
        for (i, &subscribed) in subscribed.iter().enumerate() {
            let stream = &mut self.streams[i];
            let waiting = subscribed && stream.window.descriptor().is_none();
            if stream.vacant || stream.configured || stream.mirror {
                continue;
            }
            if waiting || stream.last_active.is_none() {
                stream.last_active = Some(now);
            }
            if stream.last_active.is_some_and(|t| now - t >= timeout) {
                self.stats.streams_removed += 1;
                self.remove_stream_at(i, LeaveReason::EndOfStream);
            } else {
                watched = true;
            }
        }
        self.next_idle_sweep = watched.then(|| now + self.idle_sweep_every());
    }

    /// A quarter of the timeout between looks: a stream goes at most 1.25
    /// timeouts after its last data.
    fn idle_sweep_every(&self) -> std::time::Duration {
        (self.config.stream_idle_timeout / 4).max(IDLE_SWEEP_MIN)
    }

    /// Removes `stream` (another worker, its owner, let it go): its
    /// subscribers are told LEAVE END_OF_STREAM. Configured streams stay.
    pub fn remove_stream(&mut self, stream: &StreamId) {
        if let Some(i) = self.stream_index.get(stream)
            && !self.streams[i].configured
        {
            self.remove_stream_at(i, LeaveReason::EndOfStream);
        }
    }

    /// Tells the subscribers of stream `i`, frees its window and its slot.
    fn remove_stream_at(&mut self, i: usize, reason: LeaveReason) {
        let id = self.streams[i].window.stream();
        for s in 0..self.subs.len() {
            if self.subs[s].as_ref().is_some_and(|sub| sub.stream == i) {
                self.remove_subscriber(s, reason, true);
            }
        }
        let Some(stream) = self.streams.get_mut(i) else {
            return;
        };
        // What the window counted stays counted.
        let w = stream.window.stats();
        self.retired.chunks_verified += w.chunks_verified;
        self.retired.chunks_rebuilt += w.chunks_rebuilt;
        self.retired.manifests_verified += w.manifests_verified;
        self.retired.manifest_missing += w.manifest_missing;
        self.stats.drop_manifest_missing += w.manifest_missing;
        if let Some(host) = stream.creator {
            self.stream_hosts.remove(host);
        }
        match StreamKey::new(id) {
            Ok(key) => *stream = Stream::vacant(key),
            // Not reached: the key was valid when the stream was made.
            Err(_) => stream.vacant = true,
        }
        self.stream_index.remove(&id);
        self.free_streams.push(i);
        self.event(RelayEvent::StreamRemoved(id));
    }
}

/// The shortest time between two idle sweeps.
const IDLE_SWEEP_MIN: std::time::Duration = std::time::Duration::from_millis(100);

impl Stream {
    /// An empty slot: the smallest window there is (of any valid key),
    /// with nothing in it.
    fn vacant(key: StreamKey) -> Self {
        let config = WindowConfig {
            capacity: 0,
            ..WindowConfig::default()
        };
        Self {
            window: Window::new(key, config),
            upstream: None,
            mirror: false,
            awaiting: Default::default(),
            sources: Default::default(),
            last_active: None,
            creator: None,
            configured: false,
            vacant: true,
        }
    }
}
