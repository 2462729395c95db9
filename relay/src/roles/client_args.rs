//! The flags `shoal watch` and `shoal peer` share: which stream, from which
//! relay, where it goes, how long to wait for it. Each role flattens
//! [`ClientArgs`] into its own flags and adds its latency (the defaults
//! differ) and whatever else it needs.

use super::client_loop::Flags;
use super::join::{self, Join};
use super::output::Target;
use crate::dht::DhtArgs;

/// Flags of both client roles.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The stream to watch (its id, as printed by shoal keygen).
    #[arg(long, value_name = "ID")]
    pub stream: String,
    /// The relay to join, HOST:PORT (or shoal://HOST:PORT): watch
    /// subscribes to it, peer joins the swarm through it. Without it, the
    /// stream's relays are found on the BitTorrent Mainline DHT by the
    /// stream id, and the fastest to answer is joined.
    #[arg(long, value_name = "ADDR")]
    pub relay: Option<String>,
    #[command(flatten)]
    pub dht: DhtArgs,
    /// Where the stream goes: - for stdout, a file path, or udp://HOST:PORT.
    #[arg(long, value_name = "-|PATH|udp://HOST:PORT", default_value = "-")]
    pub output: String,
    /// How long to wait for the stream's first chunk before saying the
    /// stream is not there (a relay holds a subscription to a stream that
    /// has not started yet, so an unknown id looks like a stream not yet
    /// live); 0 waits for ever.
    #[arg(long, value_name = "TIME", default_value = "10s")]
    pub wait: String,
    /// No status line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Access token for relays that require one, as printed by
    /// `shoal token` (the stream's owner makes it).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

impl ClientArgs {
    /// The stream, wait and token flags, with the role's `latency`.
    pub(super) fn flags(&self, latency: &str) -> anyhow::Result<Flags> {
        Flags::parse(&self.stream, latency, &self.wait, self.token.as_deref())
    }

    /// Where the stream goes, then the relay to join (which may ask the
    /// DHT, so it comes after every flag is known to be good).
    pub(super) fn target_and_join(&self, flags: &Flags) -> anyhow::Result<(Target, Join)> {
        let target = Target::parse(&self.output)?;
        let join = join::plan(self.relay.as_deref(), &self.dht, &flags.stream, self.quiet)?;
        Ok((target, join))
    }
}
