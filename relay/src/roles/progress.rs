//! What `shoal watch` and `shoal peer` share about their relay: how its
//! refusals are told or turned into errors, and when a silent relay or a
//! stream that never starts is given up.

use std::time::Duration;

use shoal_proto::Time;
use shoal_proto::wire::RejectReason;

/// How long a silent relay, or one that keeps refusing the stream, is given.
pub(crate) const GIVE_UP: Duration = Duration::from_secs(5);

/// The relay's answers so far, for errors that name it and the stream.
#[derive(Debug)]
pub(crate) struct Progress {
    relay_text: String,
    stream_text: String,
    quiet: bool,
    started: Time,
    /// Longest wait for the first chunk (zero: no limit).
    wait: Duration,
    /// Any datagram came from the relay.
    pub(crate) heard: bool,
    /// A chunk was output.
    pub(crate) got_chunk: bool,
    /// First UNKNOWN_STREAM refusal since the last acceptance.
    unknown_since: Option<Time>,
    /// The last transient refusal told on stderr, so it is told once.
    noted: Option<RejectReason>,
}

impl Progress {
    pub(crate) fn new(
        relay_text: &str,
        stream_text: &str,
        quiet: bool,
        started: Time,
        wait: Duration,
    ) -> Self {
        Self {
            relay_text: relay_text.to_owned(),
            stream_text: stream_text.to_owned(),
            quiet,
            started,
            wait,
            heard: false,
            got_chunk: false,
            unknown_since: None,
            noted: None,
        }
    }

    pub(crate) fn relay_text(&self) -> &str {
        &self.relay_text
    }

    pub(crate) fn stream_text(&self) -> &str {
        &self.stream_text
    }

    /// The viewer moved from relay `from`, which stopped serving, to
    /// `to`: says so (unless quiet); errors name the new one, and its
    /// refusals start afresh.
    pub(crate) fn moved(&mut self, from: std::net::SocketAddr, to: std::net::SocketAddr) {
        if !self.quiet {
            eprintln!("shoal: relay {from} stopped serving; moved to relay {to}");
        }
        self.relay_text = to.to_string();
        self.unknown_since = None;
        self.noted = None;
    }

    /// The stream's publisher restarted (a new run, SPEC §8.1), or the
    /// stream jumped ahead: says so once (unless quiet).
    pub(crate) fn new_run(&mut self, epoch: u64) {
        if !self.quiet {
            eprintln!(
                "shoal: the publisher restarted (run {epoch}); output continues at its first \
                 keyframe after a gap"
            );
        }
    }

    /// The relay accepted: earlier refusals are forgotten.
    pub(crate) fn subscribed(&mut self) {
        self.unknown_since = None;
        self.noted = None;
    }

    /// A refusal: the ones the client retries are noted, the others are
    /// errors naming the fix.
    pub(crate) fn rejected(&mut self, now: Time, reason: RejectReason) -> anyhow::Result<()> {
        match reason {
            // Retried: a live stream may reach the relay later, a full or
            // busy relay may make room.
            RejectReason::UnknownStream => {
                self.unknown_since.get_or_insert(now);
            }
            RejectReason::Full | RejectReason::RateLimited | RejectReason::ShuttingDown => {
                if !self.quiet && self.noted != Some(reason) {
                    eprintln!(
                        "shoal: relay {} refused for now ({reason:?}); retrying",
                        self.relay_text
                    );
                }
                self.noted = Some(reason);
            }
            RejectReason::TokenRequired => anyhow::bail!(
                "relay {} requires an access token for stream {}: pass --token TOKEN (the \
                 stream's owner makes one with `shoal token --key KEY`)",
                self.relay_text,
                self.stream_text
            ),
            RejectReason::TokenExpired => anyhow::bail!(
                "relay {} refused stream {}: the access token has expired by the relay's \
                 clock; ask the stream's owner for a new one",
                self.relay_text,
                self.stream_text
            ),
            RejectReason::TokenInvalid => anyhow::bail!(
                "relay {} refused stream {}: the access token is not valid for it (not \
                 signed by the stream's key, or without the watch scope)",
                self.relay_text,
                self.stream_text
            ),
            RejectReason::UnsupportedVersion => anyhow::bail!(
                "relay {} speaks another protocol version; run the same shoal version on both",
                self.relay_text
            ),
            other => anyhow::bail!(
                "relay {} refused stream {} ({other:?})",
                self.relay_text,
                self.stream_text
            ),
        }
        Ok(())
    }

    /// Gives up on a silent relay or one that does not carry the stream;
    /// `subscribed` is whether the relay accepts the subscription now.
    pub(crate) fn check(&self, now: Time, subscribed: bool) -> anyhow::Result<()> {
        if !self.heard && now.saturating_since(self.started) >= GIVE_UP {
            anyhow::bail!(
                "no answer from relay {} in {} s; is shoal relay running there?",
                self.relay_text,
                GIVE_UP.as_secs()
            );
        }
        if self.heard
            && !self.got_chunk
            && !self.wait.is_zero()
            && now.saturating_since(self.started) >= self.wait
        {
            anyhow::bail!(
                "stream {} has not started on relay {} in {:?}; check the id (shoal keygen prints it) and that a publisher sends there, or wait longer with --wait 60s",
                self.stream_text,
                self.relay_text,
                self.wait
            );
        }
        if let Some(since) = self.unknown_since
            && !subscribed
            && now.saturating_since(since) >= GIVE_UP
        {
            anyhow::bail!(
                "relay {} does not carry stream {}; check the id, or that the stream is being published there",
                self.relay_text,
                self.stream_text
            );
        }
        Ok(())
    }
}
