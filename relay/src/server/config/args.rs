//! The flags of `shoal relay`, as given: text, checked later by
//! [`Settings::load`](super::Settings::load) together with the file.

use std::path::PathBuf;

use crate::io::BackendKind;

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
    /// The relay's web face: its streams (GET /), a page per stream
    /// (GET /watch/ID), JSON (GET /api/streams) and /metrics, on HOST:PORT
    /// such as 0.0.0.0:8080, or "off" [default: off].
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// The web face's public base URL, when the audience reaches it by
    /// another name than --http's address (a DNS name, TLS, a proxy), such
    /// as https://live.example.com/; publishers show it [default: none:
    /// http://RELAY:PORT/, with the address they send to].
    #[arg(long, value_name = "URL")]
    pub http_url: Option<String>,
    /// Per-stream window: chunks (64..=65536), or a time such as 2s taken
    /// at a nominal 1000 chunks/s [default: 2048].
    #[arg(long, value_name = "CHUNKS|TIME")]
    pub window: Option<String>,
    /// Most subscribers over all streams [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_subscribers: Option<usize>,
    /// Most readers of live streams over HTTP (--http) at once [default:
    /// 1000].
    #[arg(long, value_name = "N")]
    pub max_http_readers: Option<usize>,
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
