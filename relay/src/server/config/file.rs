//! The config file's shape: every key optional, unknown keys refused.

use std::fmt;
use std::path::Path;

use anyhow::anyhow;
use serde::Deserialize;

use crate::io::BackendKind;

/// The file's keys, all optional. Times and the window may be written as
/// numbers or strings; both are read as text and checked with the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) listen: Option<String>,
    pub(super) workers: Option<usize>,
    pub(super) backend: Option<BackendKind>,
    pub(super) metrics: Option<String>,
    pub(super) http: Option<String>,
    pub(super) http_url: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) window: Option<String>,
    pub(super) max_subscribers: Option<usize>,
    pub(super) max_http_readers: Option<usize>,
    pub(super) max_streams: Option<usize>,
    pub(super) publishers: Option<Vec<String>>,
    pub(super) max_streams_per_source: Option<usize>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) stream_idle_timeout: Option<String>,
    pub(super) max_subscriptions_per_ip: Option<usize>,
    pub(super) handshake_rate: Option<u32>,
    pub(super) upstreams: Option<Vec<String>>,
    pub(super) streams: Option<Vec<String>>,
    pub(super) upstream_tokens: Option<Vec<String>>,
    pub(super) require_token: Option<bool>,
    pub(super) announce: Option<bool>,
    pub(super) dht_bootstrap: Option<Vec<String>>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) keepalive: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) subscriber_timeout: Option<String>,
    pub(super) pin: Option<bool>,
    pub(super) gso: Option<bool>,
    pub(super) log: Option<String>,
}

impl FileConfig {
    /// The file's keys, or one line naming the file, line and key.
    pub(super) fn parse(path: &Path, text: &str) -> anyhow::Result<Self> {
        toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|span| {
                    let line = text
                        .get(..span.start)
                        .map_or(0, |before| before.matches('\n').count());
                    format!(" line {}:", line + 1)
                })
                .unwrap_or_default();
            let message = e.message().trim().replace('\n', "; ");
            anyhow!("config file {}:{at} {message}", path.display())
        })
    }
}

/// Reads a TOML string, integer or float as its text.
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or a string such as \"2s\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(Visitor).map(Some)
}
