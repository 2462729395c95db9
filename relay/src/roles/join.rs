//! Which relay `watch` and `peer` join: the one `--relay` names, or, with
//! the stream id alone, the entry points the DHT gives (the fastest to
//! answer first, the others to fall back on).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use shoal_proto::StreamId;

use super::args::parse_relay;
use crate::dht::{DhtArgs, DhtOptions, resolve};

/// The relay to join and those to fall back on.
#[derive(Debug, Clone)]
pub(super) struct Join {
    /// The relay to join first.
    pub(super) relay: SocketAddr,
    /// Further relays, fastest first, of the same address family.
    pub(super) fallbacks: Vec<SocketAddr>,
    /// How the relay is named in messages.
    pub(super) relay_text: String,
}

/// Decides where to join: `--relay` skips the DHT; without it the DHT
/// is asked (unless `--no-dht`). Says on stderr what it found and what it
/// ignored (the ignored records always; the rest unless `quiet`).
pub(super) fn plan(
    relay: Option<&str>,
    dht: &DhtArgs,
    stream: &StreamId,
    quiet: bool,
) -> anyhow::Result<Join> {
    if let Some(text) = relay {
        return Ok(Join {
            relay: parse_relay(text)?,
            fallbacks: Vec::new(),
            relay_text: text.to_owned(),
        });
    }
    let Some(options) = DhtOptions::from_args(dht)? else {
        anyhow::bail!(
            "--no-dht without --relay: give --relay ADDR, or drop --no-dht to find the \
             stream's relays on the DHT"
        );
    };
    let started = Instant::now();
    let note: resolve::Note = Arc::new(|line| eprintln!("shoal: {line}"));
    let found = resolve::discover(&options, stream, &note)?;
    let Some(&(best, rtt)) = found.ranked.first() else {
        anyhow::bail!("stream {stream}: the DHT gave no relay that answers");
    };
    let fallbacks: Vec<SocketAddr> = found
        .ranked
        .iter()
        .skip(1)
        .map(|&(a, _)| a)
        .filter(|a| a.is_ipv4() == best.is_ipv4())
        .collect();
    if !quiet {
        eprintln!(
            "shoal: found {} relay(s) for the stream on the DHT in {} ms; joining relay {best} \
             (round trip {:.1} ms, from {}){}",
            found.ranked.len(),
            started.elapsed().as_millis(),
            rtt.as_secs_f64() * 1e3,
            found.source_of(best),
            match fallbacks.len() {
                0 => String::new(),
                n => format!("; {n} more to fall back on"),
            }
        );
    }
    Ok(Join {
        relay: best,
        fallbacks,
        relay_text: best.to_string(),
    })
}
