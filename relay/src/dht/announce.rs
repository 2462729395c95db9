//! `shoal relay --announce`: the relay takes part in the DHT as a full
//! node and announces itself (BEP 5 `announce_peer`) under each stream it
//! can serve, so that viewers find it with the stream id alone, even when
//! the publisher is offline.
//!
//! The announcer runs on its own thread, away from the workers: once a
//! second it reads the streams the workers hold a verified DESCRIPTOR for
//! (from their metrics snapshots) and announces each new one at once, and
//! each one again every [`ANNOUNCE_EVERY`], inside the half hour for which
//! DHT nodes commonly keep an announcement. A stream the relay no longer
//! carries is simply not announced again. Only the relay's address goes
//! on the DHT, never stream data.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use shoal_proto::StreamId;

use super::chore::Chore;
use super::{DhtOptions, announce_target};
use crate::server::metrics::MetricsHub;

/// How often a stream's announcement is renewed.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(15 * 60);
/// How soon a failed announcement is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// How often the workers' streams are looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The running announcer; [`Announcer::stop`] ends it.
#[derive(Debug)]
pub struct Announcer(Chore);

impl Announcer {
    /// Joins the DHT as a full node and starts announcing `relay` (the
    /// address viewers use; the DHT nodes store the IP they see us from,
    /// with its port) for the streams the workers report to `hub`.
    pub fn start(options: &DhtOptions, relay: SocketAddr, hub: MetricsHub) -> anyhow::Result<Self> {
        let dht = options.start(true)?.as_async();
        let mut due: HashMap<StreamId, Instant> = HashMap::new();
        Chore::spawn(move || {
            let now = Instant::now();
            let live: Vec<StreamId> = hub
                .snapshots()
                .iter()
                .flat_map(|s| s.live_streams.iter().copied())
                .collect();
            due.retain(|s, _| live.contains(s));
            for stream in live {
                if due.get(&stream).is_some_and(|&t| now < t) {
                    continue;
                }
                let target = announce_target(&stream);
                let next = match block_on(dht.announce_peer(target, Some(relay.port()))) {
                    Ok(_) => {
                        tracing::info!(%stream, %relay, "announced on the DHT");
                        ANNOUNCE_EVERY
                    }
                    Err(e) => {
                        tracing::warn!(
                            %stream,
                            "cannot announce on the DHT ({e}); retrying in {RETRY_AFTER:?}"
                        );
                        RETRY_AFTER
                    }
                };
                due.insert(stream, Instant::now() + next);
            }
            Some(LOOK_EVERY)
        })
        .map(Self)
    }

    /// Stops announcing (the announcements age out of the DHT) and leaves
    /// the DHT.
    pub fn stop(self) {
        self.0.stop();
    }
}
