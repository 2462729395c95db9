//! The routes: what each path answers.
//!
//! | path | answer |
//! |---|---|
//! | `GET /` | the streams this relay carries, each linking to its page |
//! | `GET /watch/<STREAM_ID>` | the stream's page; 404 for a stream not carried, 400 for a malformed id |
//! | `GET /api/streams` | JSON: per stream its id, bitrate, subscribers, HTTP readers, peers and the upload they still have room for |
//! | `GET /streams/<STREAM_ID>/status` | JSON for the page: live, latency_ms, repaired, lost (of the relay's own viewer of the stream) |
//! | `GET /assets/<name>` | the page's scripts (mpegts.js, vendored), style and licences |
//! | `GET /streams/<STREAM_ID>.ts` | the live MPEG-TS (`live.rs`): 404 for a stream not carried, 503 before it starts or beyond `max_http_readers` |
//! | `GET /metrics` | the Prometheus text exposition |
//!
//! `HEAD` is answered wherever `GET` is (axum does); other methods get 405.

use std::str::FromStr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use shoal_proto::StreamId;

use super::WebState;
use super::assets;
use super::html;
use super::streams::{self, StreamView};

/// Prometheus' text format.
const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/watch/{id}", get(watch))
        .route("/api/streams", get(api_streams))
        .route("/streams/{file}", get(live_stream))
        .route("/streams/{id}/status", get(status))
        .route("/assets/{name}", get(asset))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn index(State(state): State<WebState>) -> Html<String> {
    Html(html::index(&streams::views(&state)))
}

async fn watch(State(state): State<WebState>, Path(id): Path<String>) -> Response {
    let Ok(stream) = StreamId::from_str(&id) else {
        return (StatusCode::BAD_REQUEST, Html(html::bad_stream_id(&id))).into_response();
    };
    match streams::find(&state, &stream) {
        // The page learns its stream from its URL.
        Some(_) => Html(assets::WATCH_HTML).into_response(),
        None => (StatusCode::NOT_FOUND, Html(assets::not_found_page(&id))).into_response(),
    }
}

/// `GET /streams/<ID>/status`: what the page shows beside the picture.
async fn status(State(state): State<WebState>, Path(id): Path<String>) -> Response {
    let Ok(stream) = StreamId::from_str(&id) else {
        return (StatusCode::BAD_REQUEST, "not a stream id\n").into_response();
    };
    let Some(view) = streams::find(&state, &stream) else {
        return (
            StatusCode::NOT_FOUND,
            "this relay does not carry that stream\n",
        )
            .into_response();
    };
    let feed = state.feeds.as_ref().and_then(|f| f.running(&stream));
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let body = serde_json::json!({
        "live": view.live,
        "latency_ms": feed.as_ref().map(|f| load(&f.latency_ms)).filter(|&ms| ms != u64::MAX),
        "repaired": feed.as_ref().map_or(0, |f| load(&f.repaired)),
        "lost": feed.as_ref().map_or(0, |f| load(&f.lost)),
    });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// `GET /assets/<name>`: the page's scripts, style and licences, built in.
async fn asset(Path(name): Path<String>) -> Response {
    match assets::asset(&name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            a.body,
        )
            .into_response(),
        None => not_found().await,
    }
}

async fn api_streams(State(state): State<WebState>) -> Response {
    let views: Vec<StreamView> = streams::views(&state);
    (
        [(header::CONTENT_TYPE, "application/json")],
        streams::json(&views),
    )
        .into_response()
}

async fn live_stream(State(state): State<WebState>, Path(file): Path<String>) -> Response {
    super::live::answer(&state, &file)
}

async fn metrics(State(state): State<WebState>) -> Response {
    let mut text = state.hub.render();
    streams::render_http(&state, &mut text);
    ([(header::CONTENT_TYPE, METRICS_TYPE)], text).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found; the streams are listed at /, metrics are at /metrics\n",
    )
        .into_response()
}
