//! `GET /streams/<STREAM_ID>.ts`: the live MPEG-TS, chunked, from the
//! stream's [`Feed`](super::feed::Feed): a clean start (PAT, PMT, then
//! the newest keyframe), then every chunk as it is played; a reader that
//! falls [`RING`](super::feed::RING) chunks behind jumps to the next
//! keyframe (tables first again). The answer ends when the stream does.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use shoal_proto::StreamId;
use tokio::sync::broadcast::error::RecvError;

use super::WebState;
use super::feed::{Feed, Piece};
use super::streams;

/// The answer to `GET /streams/<file>`.
pub(super) fn answer(state: &WebState, file: &str) -> Response {
    let Some(stream) = file
        .strip_suffix(".ts")
        .and_then(|id| id.parse::<StreamId>().ok())
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "not a stream: ask for /streams/<STREAM_ID>.ts\n",
        );
    };
    let Some(view) = streams::find(state, &stream) else {
        return text(
            StatusCode::NOT_FOUND,
            "this relay does not carry that stream\n",
        );
    };
    if !view.live {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the stream has not started yet; try again in a second\n",
        );
    }
    let Some(feeds) = &state.feeds else {
        return text(StatusCode::NOT_FOUND, "this server has no live streams\n");
    };
    let readers: u64 = feeds.readers().values().map(|(n, _)| n).sum();
    if readers >= state.max_http_readers as u64 {
        state.refused.fetch_add(1, Ordering::Relaxed);
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "this relay has as many HTTP readers as it serves (max_http_readers); try another relay or later\n",
        );
    }
    let feed = feeds.feed(stream);
    (
        [
            (header::CONTENT_TYPE, "video/mp2t"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(reader(feed)),
    )
        .into_response()
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A reader's bytes: its clean start, then the live chunks.
fn reader(
    feed: Arc<Feed>,
) -> impl futures_lite::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let guard = Reader::new(feed);
    let (start, rx) = guard.feed.join();
    // With nothing to start from yet (the feed's first reader, no
    // keyframe or no tables so far), wait for a keyframe and start there,
    // tables first.
    let skipping = start.is_empty();
    futures_lite::stream::unfold(
        (guard, start.into_iter(), rx, skipping),
        |(guard, mut start, mut rx, mut skipping)| async move {
            if let Some(bytes) = start.next() {
                return Some((Ok(bytes), (guard, start, rx, skipping)));
            }
            if guard.feed.ended() && rx.is_empty() {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(piece) if piece.is_end() => return None,
                    Ok(Piece { bytes, keyframe }) => {
                        if skipping && !keyframe {
                            continue;
                        }
                        if skipping {
                            // Back at a keyframe: the tables, then on; a
                            // feed that has not seen them all yet waits
                            // for the next keyframe.
                            let mut again = guard.feed.tables();
                            if again.is_empty() {
                                continue;
                            }
                            skipping = false;
                            again.push(bytes);
                            let mut again = again.into_iter();
                            let first = again.next()?;
                            return Some((Ok(first), (guard, again, rx, skipping)));
                        }
                        return Some((Ok(bytes), (guard, start, rx, skipping)));
                    }
                    Err(RecvError::Lagged(_)) => {
                        guard.feed.jumped();
                        skipping = true;
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    )
}

/// Counts a reader while it lives.
struct Reader {
    feed: Arc<Feed>,
}

impl Reader {
    fn new(feed: Arc<Feed>) -> Self {
        feed.readers.fetch_add(1, Ordering::Relaxed);
        Self { feed }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.feed.readers.fetch_sub(1, Ordering::Relaxed);
    }
}
