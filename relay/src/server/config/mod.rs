//! `shoal relay` settings: built-in defaults, then a TOML file, then flags.
//!
//! Every setting is a key of the file (snake_case; unknown keys are
//! refused) and a flag of the same name in kebab-case. A flag overrides the
//! file only when it is given; a repeatable flag (`--upstream`, `--stream`)
//! replaces the file's whole list rather than adding to it.
//!
//! [`Settings::load`] resolves and checks everything once, at start. Every
//! error is one line that names the flag (`--window 10: ...`) or the file
//! and key (`config file relay.toml: window 10: ...`) and says what to
//! write instead. [`EXAMPLE_TOML`] is the commented file with every key at
//! its default.
//!
//! The flags are `args.rs`, the file `file.rs`; `layers.rs` picks a
//! setting from one or the other and names it in errors; `parse.rs` reads
//! one value; `resolve.rs` turns them all into [`Settings`].

mod args;
mod file;
mod layers;
mod parse;
mod resolve;

pub use args::RelayArgs;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::anyhow;
use shoal_proto::StreamId;
use shoal_proto::relay::RelayConfig;
use shoal_proto::window::WindowConfig;

use crate::dht::DhtOptions;
use crate::io::BackendKind;

/// The UDP port a relay listens on unless told otherwise. The default
/// listen address is `0.0.0.0:7400`: this port on every IPv4 interface
/// (give `--listen [::]:7400` for IPv6).
pub const DEFAULT_PORT: u16 = 7400;

/// The default Prometheus endpoint: loopback only, so metrics are not
/// exposed to the network unless asked for.
pub const DEFAULT_METRICS: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464));

/// The rate at which a window given as a time (`--window 2s`) becomes a
/// chunk count: a nominal 1000 chunks/s, about 10 Mbit/s of 1316-byte
/// chunks (seven MPEG-TS packets each). The window itself counts chunks, so
/// a stream at a higher rate gets a proportionally shorter window in time;
/// give a chunk count when the rate is known.
pub const NOMINAL_CHUNKS_PER_SEC: u32 = 1000;

/// Allowed window sizes, in chunks: below 64 the window cannot hold one
/// FEC block's worth of repair; above 65536 one stream's window alone is
/// about 90 MB.
pub const WINDOW_CHUNKS: RangeInclusive<usize> = 64..=65536;

/// Most worker threads; `0` asks for one per available core.
pub const MAX_WORKERS: usize = 1024;

/// A `relay.toml` with every key, commented, at its default.
pub const EXAMPLE_TOML: &str = include_str!("relay.toml");

const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, DEFAULT_PORT));
const DEFAULT_WINDOW: usize = 2048;
const DEFAULT_MAX_SUBSCRIBERS: usize = 10_000;
const DEFAULT_MAX_HTTP_READERS: usize = 1000;
const DEFAULT_MAX_STREAMS: usize = 64;
const DEFAULT_HANDSHAKE_RATE: u32 = 20;
const DEFAULT_MAX_STREAMS_PER_SOURCE: usize = 4;
const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_SUBSCRIPTIONS_PER_IP: usize = 64;
/// The shortest `stream_idle_timeout`: a live stream sends a DESCRIPTOR
/// each second, so a shorter one could remove a stream between two.
pub const MIN_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(3);
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(1);
const DEFAULT_SUBSCRIBER_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_LOG: &str = "info";

/// Everything `shoal relay` runs with, resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// UDP address served.
    pub listen: SocketAddr,
    /// Worker threads (`0` in the input has become the core count).
    pub workers: usize,
    /// IO backend.
    pub backend: BackendKind,
    /// Prometheus endpoint; `None` when turned off.
    pub metrics: Option<SocketAddr>,
    /// The web face (`--http`); `None` when off, the default.
    pub http: Option<SocketAddr>,
    /// The web face's public base URL (`--http-url`), ending in `/`, if
    /// given; what ABOUT announces (SPEC §6.15).
    pub http_url: Option<String>,
    /// Per-stream window, in chunks, within [`WINDOW_CHUNKS`].
    pub window_chunks: usize,
    /// Most subscribers over all streams.
    pub max_subscribers: usize,
    /// Most readers of live streams over HTTP at once.
    pub max_http_readers: usize,
    /// Most streams carried.
    pub max_streams: usize,
    /// The only streams that may be created; empty: any.
    pub publishers: Vec<StreamId>,
    /// Streams one source host may create and hold.
    pub max_streams_per_source: usize,
    /// A stream with no verified data this long is removed.
    pub stream_idle_timeout: Duration,
    /// Subscriptions one source host may hold.
    pub max_subscriptions_per_ip: usize,
    /// Subscriber handshakes per source IP per second.
    pub handshake_rate: u32,
    /// Handshakes one source IP may make at once (twice the rate).
    pub handshake_burst: u32,
    /// Relays to pull from, in failover order; empty exactly when
    /// `streams` is.
    pub upstreams: Vec<SocketAddr>,
    /// Streams to pull from the upstreams, without repeats.
    pub streams: Vec<StreamId>,
    /// Access tokens for the upstreams (bytes; each names its stream).
    pub upstream_tokens: Vec<Vec<u8>>,
    /// Refuse subscribers without a valid access token.
    pub require_token: bool,
    /// With `--announce`: how to join the DHT to announce the relay.
    pub announce: Option<DhtOptions>,
    /// Keepalive interval asked of subscribers.
    pub keepalive: Duration,
    /// A subscriber silent this long is dropped; longer than `keepalive`.
    pub subscriber_timeout: Duration,
    /// Pin each worker thread to a core.
    pub pin: bool,
    /// Send UDP GSO trains where the kernel supports them.
    pub gso: bool,
    /// Log filter (tracing EnvFilter syntax), known to parse.
    pub log: String,
}

impl Settings {
    /// Defaults, overridden by the file named by `--config` (if any), then
    /// by the flags given. Errors are one line naming the flag or the file
    /// and key, and the fix.
    pub fn load(args: &RelayArgs) -> anyhow::Result<Settings> {
        match &args.config {
            None => Self::resolve(args, None),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow!(
                        "config file {}: cannot read it ({e}); check the path given to --config",
                        path.display()
                    )
                })?;
                Self::resolve(args, Some((path, &text)))
            }
        }
    }

    /// The relay core's settings: window, limits, keepalive and timeout
    /// from here; everything else, including `cookie_secret` and `web`, at
    /// its default (the server fills the secret from the OS, and the web
    /// face once it is bound, at start).
    pub fn relay_config(&self) -> RelayConfig {
        RelayConfig {
            window: WindowConfig {
                capacity: self.window_chunks,
                ..WindowConfig::default()
            },
            max_subscribers: self.max_subscribers,
            max_streams: self.max_streams,
            publishers: self.publishers.clone(),
            max_streams_per_source: self.max_streams_per_source,
            stream_idle_timeout: self.stream_idle_timeout,
            max_subscriptions_per_ip: self.max_subscriptions_per_ip,
            keepalive_interval: self.keepalive,
            subscriber_timeout: self.subscriber_timeout,
            handshake_rate: self.handshake_rate,
            handshake_burst: self.handshake_burst,
            require_token: self.require_token,
            upstream_tokens: self.upstream_tokens.clone(),
            ..RelayConfig::default()
        }
    }
}

#[cfg(test)]
mod tests;
