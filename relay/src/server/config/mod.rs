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

mod file;
mod parse;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};
use shoal_proto::StreamId;
use shoal_proto::relay::RelayConfig;
use shoal_proto::window::WindowConfig;

use crate::dht::DhtOptions;
use crate::io::BackendKind;
use crate::units;
use file::FileConfig;

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

/// Flags of `shoal relay`. Each overrides the config file's key of the same
/// name (in snake_case) when given, and only then; see [`Settings::load`].
#[derive(clap::Args, Debug, Default, Clone)]
pub struct RelayArgs {
    /// TOML file with any of these settings (keys in snake_case, e.g.
    /// max_subscribers); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// UDP address to serve on [default: 0.0.0.0:7400].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Worker threads, each with its own socket; 0 = one per available
    /// core [default: 0].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// IO backend [default: auto].
    #[arg(long, value_enum, value_name = "KIND")]
    pub backend: Option<BackendKind>,
    /// Prometheus endpoint (GET /metrics), or "off" [default:
    /// 127.0.0.1:9464].
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Per-stream window: chunks (64..=65536), or a time such as 2s taken
    /// at a nominal 1000 chunks/s [default: 2048].
    #[arg(long, value_name = "CHUNKS|TIME")]
    pub window: Option<String>,
    /// Most subscribers over all streams [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_subscribers: Option<usize>,
    /// Most streams carried [default: 64].
    #[arg(long, value_name = "N")]
    pub max_streams: Option<usize>,
    /// Carry only this stream (id as printed by shoal keygen), from its
    /// publisher or an upstream; repeatable. Without any, every stream
    /// whose DESCRIPTOR verifies may be created.
    #[arg(long = "publisher", value_name = "ID")]
    pub publishers: Vec<String>,
    /// Streams one source host (IPv4 address, IPv6 /64) may create, by
    /// DESCRIPTOR or by SUBSCRIBE, and still hold [default: 4].
    #[arg(long, value_name = "N")]
    pub max_streams_per_source: Option<usize>,
    /// Remove a stream with no verified data for this long (not those of
    /// --stream) [default: 30s].
    #[arg(long, value_name = "TIME")]
    pub stream_idle_timeout: Option<String>,
    /// Subscriptions one source host (IPv4 address, IPv6 /64) may hold
    /// [default: 64].
    #[arg(long, value_name = "N")]
    pub max_subscriptions_per_ip: Option<usize>,
    /// Subscriber handshakes allowed per source host (IPv4 address, IPv6
    /// /64) per second, in bursts of up to twice that [default: 20].
    #[arg(long, value_name = "N")]
    pub handshake_rate: Option<u32>,
    /// Relay to pull --stream from; repeat for failover, in order.
    #[arg(long = "upstream", value_name = "ADDR")]
    pub upstreams: Vec<String>,
    /// Stream to pull from the upstreams (id as printed by shoal keygen);
    /// repeatable.
    #[arg(long = "stream", value_name = "ID")]
    pub streams: Vec<String>,
    /// Access token to present to the upstreams (made by `shoal token`
    /// for the stream); repeatable, one per stream.
    #[arg(long = "upstream-token", value_name = "TOKEN")]
    pub upstream_tokens: Vec<String>,
    /// Refuse subscribers without a valid access token for the stream
    /// (made by `shoal token` with the stream's key).
    #[arg(long)]
    pub require_token: bool,
    /// Take part in the BitTorrent Mainline DHT as a full node and announce
    /// this relay under every stream it carries, so viewers find it by the
    /// stream id alone.
    #[arg(long)]
    pub announce: bool,
    /// A DHT node to join the DHT through (with --announce), HOST:PORT;
    /// repeatable; replaces the default public bootstrap nodes.
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// Keepalive interval asked of subscribers [default: 1s].
    #[arg(long, value_name = "TIME")]
    pub keepalive: Option<String>,
    /// A subscriber silent this long is dropped [default: 5s].
    #[arg(long, value_name = "TIME")]
    pub subscriber_timeout: Option<String>,
    /// Do not pin worker threads to cores.
    #[arg(long)]
    pub no_pin: bool,
    /// Do not send UDP GSO trains, one datagram per send instead.
    #[arg(long)]
    pub no_gso: bool,
    /// Log filter in tracing's EnvFilter syntax [default: info].
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}

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
    /// Per-stream window, in chunks, within [`WINDOW_CHUNKS`].
    pub window_chunks: usize,
    /// Most subscribers over all streams.
    pub max_subscribers: usize,
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
    /// from here; everything else, including `cookie_secret`, at its
    /// default (the server fills the secret from the OS at start).
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

    /// [`Self::load`] with the file's text already read.
    fn resolve(args: &RelayArgs, file: Option<(&Path, &str)>) -> anyhow::Result<Settings> {
        let (path, file) = match file {
            Some((path, text)) => (Some(path), FileConfig::parse(path, text)?),
            None => (None, FileConfig::default()),
        };
        let layers = Layers { path };
        let f = &file;

        let listen = layers
            .one(
                Key::LISTEN,
                args.listen.as_deref(),
                f.listen.as_deref(),
                |t| parse::address(t, "0.0.0.0:7400"),
            )?
            .unwrap_or(DEFAULT_LISTEN);
        let workers = layers
            .one(Key::WORKERS, args.workers, f.workers, |n| {
                if n > MAX_WORKERS {
                    Err(format!(
                        "at most {MAX_WORKERS}; use 0 for one per available core"
                    ))
                } else {
                    Ok(n)
                }
            })?
            .unwrap_or(0);
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            workers
        };
        let backend = args.backend.or(f.backend).unwrap_or_default();
        let metrics = layers
            .one(
                Key::METRICS,
                args.metrics.as_deref(),
                f.metrics.as_deref(),
                |t| {
                    if t.trim().eq_ignore_ascii_case("off") {
                        Ok(None)
                    } else {
                        parse::address(t, "127.0.0.1:9464 (or off)").map(Some)
                    }
                },
            )?
            .unwrap_or(Some(DEFAULT_METRICS));
        let window_chunks = layers
            .one(
                Key::WINDOW,
                args.window.as_deref().map(Bare),
                f.window.as_deref().map(Bare),
                |t| parse::window(t.0),
            )?
            .unwrap_or(DEFAULT_WINDOW);
        let max_subscribers = layers
            .one(
                Key::MAX_SUBSCRIBERS,
                args.max_subscribers,
                f.max_subscribers,
                at_least_one,
            )?
            .unwrap_or(DEFAULT_MAX_SUBSCRIBERS);
        let max_streams = layers
            .one(
                Key::MAX_STREAMS,
                args.max_streams,
                f.max_streams,
                at_least_one,
            )?
            .unwrap_or(DEFAULT_MAX_STREAMS);
        let (publishers, _) = layers.list(
            Key::PUBLISHERS,
            &args.publishers,
            f.publishers.as_deref(),
            parse::stream,
        )?;
        let max_streams_per_source = layers
            .one(
                Key::MAX_STREAMS_PER_SOURCE,
                args.max_streams_per_source,
                f.max_streams_per_source,
                at_least_one,
            )?
            .unwrap_or(DEFAULT_MAX_STREAMS_PER_SOURCE);
        let stream_idle_timeout = layers
            .one(
                Key::STREAM_IDLE_TIMEOUT,
                args.stream_idle_timeout.as_deref().map(Bare),
                f.stream_idle_timeout.as_deref().map(Bare),
                |t| {
                    let time = units::duration(t.0)?;
                    if time < MIN_STREAM_IDLE_TIMEOUT {
                        return Err(format!(
                            "must be at least {MIN_STREAM_IDLE_TIMEOUT:?} (a live stream sends a \
                             DESCRIPTOR each second); use a time such as 30s"
                        ));
                    }
                    Ok(time)
                },
            )?
            .unwrap_or(DEFAULT_STREAM_IDLE_TIMEOUT);
        let max_subscriptions_per_ip = layers
            .one(
                Key::MAX_SUBSCRIPTIONS_PER_IP,
                args.max_subscriptions_per_ip,
                f.max_subscriptions_per_ip,
                at_least_one,
            )?
            .unwrap_or(DEFAULT_MAX_SUBSCRIPTIONS_PER_IP);
        let handshake_rate = layers
            .one(
                Key::HANDSHAKE_RATE,
                args.handshake_rate,
                f.handshake_rate,
                |n| {
                    if n == 0 {
                        Err("must be at least 1 per second".to_owned())
                    } else {
                        Ok(n)
                    }
                },
            )?
            .unwrap_or(DEFAULT_HANDSHAKE_RATE);
        let keepalive = layers
            .one(
                Key::KEEPALIVE,
                args.keepalive.as_deref().map(Bare),
                f.keepalive.as_deref().map(Bare),
                |t| positive_time(t.0),
            )?
            .unwrap_or(DEFAULT_KEEPALIVE);
        let keepalive_from = layers.origin_of(args.keepalive.is_some());
        let subscriber_timeout = layers.one(
            Key::SUBSCRIBER_TIMEOUT,
            args.subscriber_timeout.as_deref().map(Bare),
            f.subscriber_timeout.as_deref().map(Bare),
            |t| longer_than(t.0, keepalive),
        )?;
        let subscriber_timeout = match subscriber_timeout {
            Some(t) => t,
            None if DEFAULT_SUBSCRIBER_TIMEOUT > keepalive => DEFAULT_SUBSCRIBER_TIMEOUT,
            None => bail!(
                "{} {keepalive:?}: not shorter than the default subscriber timeout \
                 ({DEFAULT_SUBSCRIBER_TIMEOUT:?}); set {} too, to at least three times it",
                Key::KEEPALIVE.name(keepalive_from),
                Key::SUBSCRIBER_TIMEOUT.bare_name(keepalive_from),
            ),
        };

        let (upstreams, upstreams_from) = layers.list(
            Key::UPSTREAMS,
            &args.upstreams,
            f.upstreams.as_deref(),
            |t| parse::address(t, "203.0.113.7:7400"),
        )?;
        let (streams, streams_from) = layers.list(
            Key::STREAMS,
            &args.streams,
            f.streams.as_deref(),
            parse::stream,
        )?;
        match (upstreams.is_empty(), streams.is_empty()) {
            (true, false) => bail!(
                "{}{} given without {}: add {}",
                file_prefix(streams_from),
                Key::STREAMS.bare_name(streams_from),
                Key::UPSTREAMS.bare_name(streams_from),
                add_fix(
                    streams_from,
                    "--upstream ADDR",
                    "upstreams = [\"HOST:PORT\"]"
                ),
            ),
            (false, true) => bail!(
                "{}{} given without {}: add {}",
                file_prefix(upstreams_from),
                Key::UPSTREAMS.bare_name(upstreams_from),
                Key::STREAMS.bare_name(upstreams_from),
                add_fix(upstreams_from, "--stream ID", "streams = [\"ID\"]"),
            ),
            _ => {}
        }

        let (upstream_tokens, _) = layers.list(
            Key::UPSTREAM_TOKENS,
            &args.upstream_tokens,
            f.upstream_tokens.as_deref(),
            parse::token,
        )?;
        let require_token = args.require_token || f.require_token.unwrap_or(false);
        let (dht_bootstrap, bootstrap_from) = layers.list(
            Key::DHT_BOOTSTRAP,
            &args.dht_bootstrap,
            f.dht_bootstrap.as_deref(),
            crate::dht::bootstrap_node,
        )?;
        let announce = args.announce || f.announce.unwrap_or(false);
        if !announce && !dht_bootstrap.is_empty() {
            bail!(
                "{}{} given without {}: add {} (a relay joins the DHT only to announce itself)",
                file_prefix(bootstrap_from),
                Key::DHT_BOOTSTRAP.bare_name(bootstrap_from),
                Key::ANNOUNCE.bare_name(bootstrap_from),
                add_fix(bootstrap_from, "--announce", "announce = true"),
            );
        }
        let announce = announce.then(|| DhtOptions::with_bootstrap(dht_bootstrap));
        let pin = !args.no_pin && f.pin.unwrap_or(true);
        let gso = !args.no_gso && f.gso.unwrap_or(true);
        let log = layers
            .one(
                Key::LOG,
                args.log.as_deref(),
                f.log.as_deref(),
                parse::log_filter,
            )?
            .unwrap_or_else(|| DEFAULT_LOG.to_owned());

        Ok(Settings {
            listen,
            workers,
            backend,
            metrics,
            window_chunks,
            max_subscribers,
            max_streams,
            publishers: dedup(publishers),
            max_streams_per_source,
            stream_idle_timeout,
            max_subscriptions_per_ip,
            handshake_rate,
            handshake_burst: handshake_rate.saturating_mul(2),
            upstreams: dedup(upstreams),
            streams: dedup(streams),
            upstream_tokens,
            require_token,
            announce,
            keepalive,
            subscriber_timeout,
            pin,
            gso,
            log,
        })
    }
}

/// Where a value came from, for naming it in an error.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    Flag,
    File(&'a Path),
}

/// A setting's two names: flag and file key.
#[derive(Debug, Clone, Copy)]
struct Key {
    flag: &'static str,
    key: &'static str,
}

impl Key {
    const LISTEN: Key = Key::new("listen", "listen");
    const WORKERS: Key = Key::new("workers", "workers");
    const METRICS: Key = Key::new("metrics", "metrics");
    const WINDOW: Key = Key::new("window", "window");
    const MAX_SUBSCRIBERS: Key = Key::new("max-subscribers", "max_subscribers");
    const MAX_STREAMS: Key = Key::new("max-streams", "max_streams");
    const PUBLISHERS: Key = Key::new("publisher", "publishers");
    const MAX_STREAMS_PER_SOURCE: Key =
        Key::new("max-streams-per-source", "max_streams_per_source");
    const STREAM_IDLE_TIMEOUT: Key = Key::new("stream-idle-timeout", "stream_idle_timeout");
    const MAX_SUBSCRIPTIONS_PER_IP: Key =
        Key::new("max-subscriptions-per-ip", "max_subscriptions_per_ip");
    const HANDSHAKE_RATE: Key = Key::new("handshake-rate", "handshake_rate");
    const UPSTREAMS: Key = Key::new("upstream", "upstreams");
    const STREAMS: Key = Key::new("stream", "streams");
    const UPSTREAM_TOKENS: Key = Key::new("upstream-token", "upstream_tokens");
    const ANNOUNCE: Key = Key::new("announce", "announce");
    const DHT_BOOTSTRAP: Key = Key::new("dht-bootstrap", "dht_bootstrap");
    const KEEPALIVE: Key = Key::new("keepalive", "keepalive");
    const SUBSCRIBER_TIMEOUT: Key = Key::new("subscriber-timeout", "subscriber_timeout");
    const LOG: Key = Key::new("log", "log");

    const fn new(flag: &'static str, key: &'static str) -> Self {
        Self { flag, key }
    }

    /// `--flag` or `config file PATH: key`.
    fn name(self, origin: Origin<'_>) -> String {
        match origin {
            Origin::Flag => format!("--{}", self.flag),
            Origin::File(path) => format!("config file {}: {}", path.display(), self.key),
        }
    }

    /// `--flag` or `key`, for the second setting named in one message.
    fn bare_name(self, origin: Origin<'_>) -> String {
        match origin {
            Origin::Flag => format!("--{}", self.flag),
            Origin::File(_) => self.key.to_owned(),
        }
    }
}

/// Text shown without quotes in errors (`--window 10`, not `"10"`).
#[derive(Clone, Copy)]
struct Bare<'a>(&'a str);

impl fmt::Debug for Bare<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The file (if any) under the flags.
struct Layers<'a> {
    path: Option<&'a Path>,
}

impl<'a> Layers<'a> {
    fn origin_of(&self, flag_given: bool) -> Origin<'a> {
        match self.path {
            Some(path) if !flag_given => Origin::File(path),
            _ => Origin::Flag,
        }
    }

    /// The flag's value if given, else the file's.
    fn pick<T>(&self, flag: Option<T>, file: Option<T>) -> Option<(T, Origin<'a>)> {
        match (flag, file) {
            (Some(v), _) => Some((v, Origin::Flag)),
            (None, Some(v)) => Some((v, self.origin_of(false))),
            (None, None) => None,
        }
    }

    /// One setting: picked, then parsed; `None` when neither gave it.
    fn one<T: Copy + fmt::Debug, R>(
        &self,
        key: Key,
        flag: Option<T>,
        file: Option<T>,
        parse: impl FnOnce(T) -> Result<R, String>,
    ) -> anyhow::Result<Option<R>> {
        let Some((value, origin)) = self.pick(flag, file) else {
            return Ok(None);
        };
        parse(value)
            .map(Some)
            .map_err(|why| anyhow!("{} {value:?}: {why}", key.name(origin)))
    }

    /// A list setting: the flags' values if any were given, else the
    /// file's; each parsed.
    fn list<R>(
        &self,
        key: Key,
        flag: &[String],
        file: Option<&[String]>,
        parse: impl Fn(&str) -> Result<R, String>,
    ) -> anyhow::Result<(Vec<R>, Origin<'a>)> {
        let flag = (!flag.is_empty()).then_some(flag);
        let Some((items, origin)) = self.pick(flag, file) else {
            return Ok((Vec::new(), Origin::Flag));
        };
        let parsed = items
            .iter()
            .map(|item| parse(item).map_err(|why| anyhow!("{} {item:?}: {why}", key.name(origin))))
            .collect::<anyhow::Result<_>>()?;
        Ok((parsed, origin))
    }
}

fn at_least_one(n: usize) -> Result<usize, String> {
    if n == 0 {
        Err("must be at least 1".to_owned())
    } else {
        Ok(n)
    }
}

fn positive_time(text: &str) -> Result<Duration, String> {
    let time = units::duration(text)?;
    if time.is_zero() {
        return Err("must be longer than zero; use a time such as 1s".to_owned());
    }
    Ok(time)
}

/// A subscriber timeout, which must outlast the keepalive interval.
fn longer_than(text: &str, keepalive: Duration) -> Result<Duration, String> {
    let timeout = positive_time(text)?;
    if timeout <= keepalive {
        return Err(format!(
            "must be longer than the keepalive interval ({keepalive:?}); \
             use at least three times it, such as {:?}",
            keepalive * 3
        ));
    }
    Ok(timeout)
}

fn file_prefix(origin: Origin<'_>) -> String {
    match origin {
        Origin::Flag => String::new(),
        Origin::File(path) => format!("config file {}: ", path.display()),
    }
}

fn add_fix(origin: Origin<'_>, flag: &str, key: &str) -> String {
    match origin {
        Origin::Flag => flag.to_owned(),
        Origin::File(_) => format!("{key} to the file, or {flag}"),
    }
}

/// Drops repeats, keeping the first of each (upstream order matters).
fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests;
