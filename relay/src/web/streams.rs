//! The streams a relay carries, as its pages show them: the workers'
//! summaries merged by stream (a stream's subscribers are spread over the
//! workers, each of which carries the stream).

use std::collections::BTreeMap;

use serde::Serialize;
use shoal_proto::StreamId;

use crate::server::metrics::MetricsHub;

/// One stream, over all workers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct StreamView {
    /// The stream id, as text.
    pub(super) id: String,
    /// Whether a verified DESCRIPTOR has come: the relay can serve it.
    pub(super) live: bool,
    /// Its bitrate, from the DESCRIPTOR.
    pub(super) bitrate_bps: Option<u64>,
    /// UDP subscribers now (viewers, peers and downstream relays).
    pub(super) subscribers: u64,
    /// Of those, ordinary peers that forward clubs.
    pub(super) peers: u64,
    /// The upload those peers offer, kbit/s.
    pub(super) peer_upload_kbps: u64,
    /// The offered upload over the stream's rate across all subscribers
    /// (how much of the fan-out peers could carry); `None` before the
    /// bitrate is known or with no subscribers.
    pub(super) peer_upload_share: Option<f64>,
}

/// Every stream carried, by id.
pub(super) fn views(hub: &MetricsHub) -> Vec<StreamView> {
    let mut by_id: BTreeMap<String, StreamView> = BTreeMap::new();
    for snap in hub.snapshots() {
        for s in &snap.stream_summaries {
            let view = by_id.entry(s.id.to_string()).or_insert_with(|| StreamView {
                id: s.id.to_string(),
                live: false,
                bitrate_bps: None,
                subscribers: 0,
                peers: 0,
                peer_upload_kbps: 0,
                peer_upload_share: None,
            });
            view.live |= s.bitrate_bps.is_some();
            view.bitrate_bps = view.bitrate_bps.max(s.bitrate_bps);
            view.subscribers += u64::from(s.subscribers);
            view.peers += u64::from(s.peers);
            view.peer_upload_kbps += s.peer_upload_kbps;
        }
    }
    let mut out: Vec<StreamView> = by_id.into_values().collect();
    for v in &mut out {
        v.peer_upload_share = match (v.bitrate_bps, v.subscribers) {
            (Some(rate), n) if rate > 0 && n > 0 => {
                Some(v.peer_upload_kbps as f64 * 1000.0 / (rate as f64 * n as f64))
            }
            _ => None,
        };
    }
    out
}

/// The stream `id`, if carried.
pub(super) fn find(hub: &MetricsHub, id: &StreamId) -> Option<StreamView> {
    let text = id.to_string();
    views(hub).into_iter().find(|v| v.id == text)
}

/// `GET /api/streams`: `{"streams": [...]}`.
pub(super) fn json(views: &[StreamView]) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        streams: &'a [StreamView],
    }
    serde_json::to_string(&Body { streams: views }).unwrap_or_else(|e| {
        tracing::error!("cannot encode /api/streams: {e}");
        "{\"streams\":[]}".to_owned()
    })
}
