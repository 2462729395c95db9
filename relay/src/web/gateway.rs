//! The feeds: for each stream someone reads over HTTP, a viewer that
//! subscribes to the relay over UDP on loopback, exactly as `shoal watch`
//! would, and plays into the stream's [`Feed`]. So HTTP readers get what a
//! viewer plays (verified chunks, in order, FEC and NACK repair, gaps
//! skipped after the latency budget, a keyframe start) and the data plane
//! only gains one UDP subscriber per watched stream.
//!
//! A feed's viewer starts with its first reader and stops when the stream
//! ends or [`IDLE`] after its last reader left.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use shoal_proto::StreamId;
use shoal_proto::viewer::{Viewer, ViewerConfig, ViewerEvent};

use super::feed::Feed;
use crate::os;

/// How long a feed's viewer goes on without readers.
pub const IDLE: Duration = Duration::from_secs(10);
/// The playout budget of a feed's viewer: as `shoal watch`'s default.
const LATENCY: Duration = Duration::from_millis(500);

/// Every stream's feed, made on demand.
#[derive(Debug)]
pub struct Feeds {
    /// The relay's UDP address, as a local viewer reaches it; `None` for
    /// a single local feed (`shoal watch --http`), filled by its owner.
    relay: Option<SocketAddr>,
    feeds: Mutex<HashMap<StreamId, Arc<Feed>>>,
}

impl Feeds {
    /// Feeds from the relay listening on `listen` (a wildcard address is
    /// reached on loopback).
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            relay: Some(super::local_to(listen)),
            feeds: Mutex::new(HashMap::new()),
        }
    }

    /// One feed of `stream`, filled by its owner (a local viewer) rather
    /// than by a viewer of a relay.
    pub fn local(stream: StreamId) -> (Self, Arc<Feed>) {
        let feed = Arc::new(Feed::default());
        let feeds = HashMap::from([(stream, Arc::clone(&feed))]);
        (
            Self {
                relay: None,
                feeds: Mutex::new(feeds),
            },
            feed,
        )
    }

    /// Whether the feeds are one local stream's.
    pub fn is_local(&self) -> bool {
        self.relay.is_none()
    }

    /// `stream`'s feed, its viewer started if it was not running. Must be
    /// called on the web runtime.
    pub fn feed(self: &Arc<Self>, stream: StreamId) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(feed) = feeds.get(&stream) {
            return Arc::clone(feed);
        }
        let feed = Arc::new(Feed::default());
        let Some(relay) = self.relay else {
            // A local feed serves its one stream; this one stays empty.
            return feed;
        };
        feeds.insert(stream, Arc::clone(&feed));
        let this = Arc::clone(self);
        let running = Arc::clone(&feed);
        tokio::spawn(async move {
            if let Err(e) = play(relay, stream, &running).await {
                tracing::warn!(%stream, "web feed: {e}");
            }
            running.end();
            this.feeds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&stream);
        });
        feed
    }

    /// `stream`'s feed if its viewer runs.
    pub fn running(&self, stream: &StreamId) -> Option<Arc<Feed>> {
        self.feeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream)
            .cloned()
    }

    /// Readers now, per stream.
    pub fn readers(&self) -> HashMap<StreamId, (u64, u64)> {
        self.feeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, f)| {
                (
                    *id,
                    (
                        f.readers.load(Ordering::Relaxed),
                        f.jumps.load(Ordering::Relaxed),
                    ),
                )
            })
            .collect()
    }
}

/// Runs a viewer of `stream` at `relay` into `feed` until the stream ends
/// or nobody has read it for [`IDLE`].
async fn play(relay: SocketAddr, stream: StreamId, feed: &Feed) -> std::io::Result<()> {
    let local: SocketAddr = if relay.is_ipv4() {
        (Ipv4Addr::LOCALHOST, 0).into()
    } else {
        (Ipv6Addr::LOCALHOST, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    let mut config = ViewerConfig::new(relay, stream);
    config.latency = LATENCY;
    config.nonce_seed = u64::from_le_bytes(os::random_bytes()?);
    config.window.wall_clock = os::wall_clock();
    let Ok(mut viewer) = Viewer::new(config, os::now()) else {
        return Err(std::io::Error::other("not a valid stream id"));
    };
    let mut buf = vec![0u8; 2048];
    let mut unread_since = None;
    loop {
        while let Some(t) = viewer.poll_transmit() {
            // Loopback: a failed send is retried by the viewer's timers.
            let _ = socket.send_to(t.payload, t.dst).await;
        }
        while let Some(event) = viewer.poll_event() {
            match event {
                ViewerEvent::Chunk {
                    payload,
                    keyframe,
                    latency,
                    ..
                } => feed.push(payload.to_vec(), keyframe, latency),
                ViewerEvent::EndOfStream => return Ok(()),
                _ => {}
            }
        }
        let stats = viewer.stats();
        feed.repaired
            .store(stats.fec_repaired + stats.nack_repaired, Ordering::Relaxed);
        feed.lost.store(stats.lost, Ordering::Relaxed);
        let now = os::now();
        if feed.readers.load(Ordering::Relaxed) == 0 {
            let since = *unread_since.get_or_insert(now);
            if now.saturating_since(since) >= IDLE {
                viewer.close();
                while let Some(t) = viewer.poll_transmit() {
                    let _ = socket.send_to(t.payload, t.dst).await;
                }
                return Ok(());
            }
        } else {
            unread_since = None;
        }
        let wait = viewer
            .poll_timeout()
            .map_or(Duration::from_secs(1), |at| at.saturating_since(now))
            .min(Duration::from_secs(1));
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (n, from) = received?;
                viewer.handle_datagram(os::now(), from, buf.get(..n).unwrap_or_default());
            }
            () = tokio::time::sleep(wait) => viewer.handle_timeout(os::now()),
        }
    }
}
