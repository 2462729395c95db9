//! The streams a relay carries, as its pages show them: the workers'
//! summaries merged by stream (a stream's subscribers are spread over the
//! workers, each of which carries the stream).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use serde::Serialize;
use shoal_proto::StreamId;

use super::WebState;

/// One stream, over all workers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct StreamView {
    /// The stream id, as text.
    pub(super) id: String,
    /// Whether a verified DESCRIPTOR has come: the relay can serve it.
    pub(super) live: bool,
    /// Its bitrate, from the DESCRIPTOR.
    pub(super) bitrate_bps: Option<u64>,
    /// UDP subscribers now (viewers, peers and downstream relays; the web
    /// face's own viewer of a stream read over HTTP among them).
    pub(super) subscribers: u64,
    /// HTTP readers of `/streams/<id>.ts` now.
    pub(super) http_readers: u64,
    /// Jumps HTTP readers made after falling behind, since the stream's
    /// feed started.
    pub(super) http_reader_jumps: u64,
    /// Of those, ordinary peers that forward clubs.
    pub(super) peers: u64,
    /// The upload those peers still have room for, kbit/s (see
    /// `shoal_proto::relay::StreamSummary::peer_upload_kbps`).
    pub(super) peer_upload_kbps: u64,
    /// That room over the stream's rate across all subscribers (how much
    /// more of the fan-out peers could take on); `None` before the
    /// bitrate is known or with no subscribers.
    pub(super) peer_upload_share: Option<f64>,
}

impl StreamView {
    /// `id`, with nothing counted yet.
    fn new(id: &StreamId) -> Self {
        Self {
            id: id.to_string(),
            live: false,
            bitrate_bps: None,
            subscribers: 0,
            http_readers: 0,
            http_reader_jumps: 0,
            peers: 0,
            peer_upload_kbps: 0,
            peer_upload_share: None,
        }
    }
}

/// Every stream carried, by id.
pub(super) fn views(state: &WebState) -> Vec<StreamView> {
    let readers = state
        .feeds
        .as_ref()
        .map(|f| f.readers())
        .unwrap_or_default();
    let mut by_id: BTreeMap<String, StreamView> = BTreeMap::new();
    for snap in state.hub.snapshots() {
        for s in &snap.stream_summaries {
            let view = by_id
                .entry(s.id.to_string())
                .or_insert_with(|| StreamView::new(&s.id));
            view.live |= s.bitrate_bps.is_some();
            view.bitrate_bps = view.bitrate_bps.max(s.bitrate_bps);
            view.subscribers += u64::from(s.subscribers);
            view.peers += u64::from(s.peers);
            view.peer_upload_kbps += s.peer_upload_kbps;
        }
    }
    // A local viewer's one stream (`shoal watch --http`).
    if let Some(feeds) = state.feeds.as_ref().filter(|f| f.is_local()) {
        for id in readers.keys() {
            let view = StreamView {
                live: feeds.running(id).is_some_and(|f| f.started()),
                ..StreamView::new(id)
            };
            by_id.insert(view.id.clone(), view);
        }
    }
    for (id, &(n, jumps)) in &readers {
        if let Some(view) = by_id.get_mut(&id.to_string()) {
            view.http_readers = n;
            view.http_reader_jumps = jumps;
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
pub(super) fn find(state: &WebState, id: &StreamId) -> Option<StreamView> {
    let text = id.to_string();
    views(state).into_iter().find(|v| v.id == text)
}

/// The web face's own counters, appended to the metrics text.
pub(super) fn render_http(state: &WebState, out: &mut String) {
    let readers = state
        .feeds
        .as_ref()
        .map(|f| f.readers())
        .unwrap_or_default();
    let (now, jumps) = readers
        .values()
        .fold((0, 0), |(n, j), (rn, rj)| (n + rn, j + rj));
    let refused = state.refused.load(Ordering::Relaxed);
    let stalled = state.stalled.load(Ordering::Relaxed);
    let _ = write!(
        out,
        "# HELP shoal_http_readers Readers of live streams over HTTP now.\n\
         # TYPE shoal_http_readers gauge\n\
         shoal_http_readers {now}\n\
         # HELP shoal_http_reader_jumps_total Jumps to a newer keyframe by HTTP readers that fell behind (of feeds running now).\n\
         # TYPE shoal_http_reader_jumps_total counter\n\
         shoal_http_reader_jumps_total {jumps}\n\
         # HELP shoal_http_readers_refused_total HTTP readers refused for max_http_readers.\n\
         # TYPE shoal_http_readers_refused_total counter\n\
         shoal_http_readers_refused_total {refused}\n\
         # HELP shoal_http_stalled_closed_total HTTP connections closed for taking no bytes for the write time (10 s).\n\
         # TYPE shoal_http_stalled_closed_total counter\n\
         shoal_http_stalled_closed_total {stalled}\n"
    );
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
