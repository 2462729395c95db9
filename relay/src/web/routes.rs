//! The routes: what each path answers.
//!
//! | path | answer |
//! |---|---|
//! | `GET /` | the streams this relay carries, each linking to its page |
//! | `GET /watch/<STREAM_ID>` | the stream's page; 404 for a stream not carried, 400 for a malformed id |
//! | `GET /api/streams` | JSON: per stream its id, bitrate, subscribers, HTTP readers, peers and their offered upload |
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
        Some(view) => Html(html::watch(&view)).into_response(),
        None => (StatusCode::NOT_FOUND, Html(html::unknown_stream(&stream))).into_response(),
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
