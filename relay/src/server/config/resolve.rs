//! Resolving the layers into [`Settings`]: each setting parsed, checked
//! against its range and against the settings it depends on (a subscriber
//! timeout longer than the keepalive, `--stream` with `--upstream`).

use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use super::file::FileConfig;
use super::layers::{Bare, Key, Layers, add_fix, file_prefix};
use super::*;
use crate::units;

impl Settings {
    /// [`Self::load`] with the file's text already read.
    pub(super) fn resolve(
        args: &RelayArgs,
        file: Option<(&Path, &str)>,
    ) -> anyhow::Result<Settings> {
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
        let http = layers
            .one(Key::HTTP, args.http.as_deref(), f.http.as_deref(), |t| {
                if t.trim().eq_ignore_ascii_case("off") {
                    Ok(None)
                } else {
                    parse::address(t, "0.0.0.0:8080 (or off)").map(Some)
                }
            })?
            .flatten();
        let http_url = layers
            .one(
                Key::HTTP_URL,
                args.http_url.as_deref(),
                f.http_url.as_deref(),
                parse::page_url,
            )?
            .flatten();
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
        let max_http_readers = layers
            .one(
                Key::MAX_HTTP_READERS,
                args.max_http_readers,
                f.max_http_readers,
                at_least_one,
            )?
            .unwrap_or(DEFAULT_MAX_HTTP_READERS);
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
            http,
            http_url,
            window_chunks,
            max_subscribers,
            max_http_readers,
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
