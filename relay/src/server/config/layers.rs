//! Flag over file: which layer gave a setting, and how an error names it
//! (`--window 10: ...` or `config file relay.toml: window 10: ...`).

use std::fmt;
use std::path::Path;

use anyhow::anyhow;

/// Where a value came from, for naming it in an error.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin<'a> {
    Flag,
    File(&'a Path),
}

/// A setting's two names: flag and file key.
#[derive(Debug, Clone, Copy)]
pub(super) struct Key {
    flag: &'static str,
    key: &'static str,
}

impl Key {
    pub(super) const LISTEN: Key = Key::new("listen", "listen");
    pub(super) const WORKERS: Key = Key::new("workers", "workers");
    pub(super) const METRICS: Key = Key::new("metrics", "metrics");
    pub(super) const HTTP: Key = Key::new("http", "http");
    pub(super) const HTTP_URL: Key = Key::new("http-url", "http_url");
    pub(super) const WINDOW: Key = Key::new("window", "window");
    pub(super) const MAX_SUBSCRIBERS: Key = Key::new("max-subscribers", "max_subscribers");
    pub(super) const MAX_HTTP_READERS: Key = Key::new("max-http-readers", "max_http_readers");
    pub(super) const MAX_STREAMS: Key = Key::new("max-streams", "max_streams");
    pub(super) const PUBLISHERS: Key = Key::new("publisher", "publishers");
    pub(super) const MAX_STREAMS_PER_SOURCE: Key =
        Key::new("max-streams-per-source", "max_streams_per_source");
    pub(super) const STREAM_IDLE_TIMEOUT: Key =
        Key::new("stream-idle-timeout", "stream_idle_timeout");
    pub(super) const MAX_SUBSCRIPTIONS_PER_IP: Key =
        Key::new("max-subscriptions-per-ip", "max_subscriptions_per_ip");
    pub(super) const HANDSHAKE_RATE: Key = Key::new("handshake-rate", "handshake_rate");
    pub(super) const UPSTREAMS: Key = Key::new("upstream", "upstreams");
    pub(super) const STREAMS: Key = Key::new("stream", "streams");
    pub(super) const UPSTREAM_TOKENS: Key = Key::new("upstream-token", "upstream_tokens");
    pub(super) const ANNOUNCE: Key = Key::new("announce", "announce");
    pub(super) const DHT_BOOTSTRAP: Key = Key::new("dht-bootstrap", "dht_bootstrap");
    pub(super) const KEEPALIVE: Key = Key::new("keepalive", "keepalive");
    pub(super) const SUBSCRIBER_TIMEOUT: Key = Key::new("subscriber-timeout", "subscriber_timeout");
    pub(super) const LOG: Key = Key::new("log", "log");

    const fn new(flag: &'static str, key: &'static str) -> Self {
        Self { flag, key }
    }

    /// `--flag` or `config file PATH: key`.
    pub(super) fn name(self, origin: Origin<'_>) -> String {
        match origin {
            Origin::Flag => format!("--{}", self.flag),
            Origin::File(path) => format!("config file {}: {}", path.display(), self.key),
        }
    }

    /// `--flag` or `key`, for the second setting named in one message.
    pub(super) fn bare_name(self, origin: Origin<'_>) -> String {
        match origin {
            Origin::Flag => format!("--{}", self.flag),
            Origin::File(_) => self.key.to_owned(),
        }
    }
}

/// Text shown without quotes in errors (`--window 10`, not `"10"`).
#[derive(Clone, Copy)]
pub(super) struct Bare<'a>(pub(super) &'a str);

impl fmt::Debug for Bare<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The file (if any) under the flags.
pub(super) struct Layers<'a> {
    pub(super) path: Option<&'a Path>,
}

impl<'a> Layers<'a> {
    pub(super) fn origin_of(&self, flag_given: bool) -> Origin<'a> {
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
    pub(super) fn one<T: Copy + fmt::Debug, R>(
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
    pub(super) fn list<R>(
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

pub(super) fn file_prefix(origin: Origin<'_>) -> String {
    match origin {
        Origin::Flag => String::new(),
        Origin::File(path) => format!("config file {}: ", path.display()),
    }
}

pub(super) fn add_fix(origin: Origin<'_>, flag: &str, key: &str) -> String {
    match origin {
        Origin::Flag => flag.to_owned(),
        Origin::File(_) => format!("{key} to the file, or {flag}"),
    }
}
