//! The relay's web face: one HTTP/1.1 server (hyper, routed with axum) on
//! a thread and a one-thread tokio runtime of its own, never on a
//! data-plane thread. It reads only what the workers publish to the
//! [`MetricsHub`] (about every 250 ms), so a page view or a scrape costs
//! the data plane nothing.
//!
//! It listens on every address it is given: `--http` (the public face)
//! and `--metrics` (Prometheus, loopback by default) get the same routes
//! (`routes.rs`). Slow clients are bounded: a request head must arrive
//! within [`HEADER_TIME`] (on every request of a kept-alive connection
//! too), a client that takes no bytes of an answer for [`WRITE_TIME`] is
//! closed (`write_timeout.rs`), and at most [`max_connections`] connections
//! are open at once (more are closed at accept): enough for
//! `max_http_readers` readers and the pages beside them. Malformed requests
//! get hyper's 400; unknown paths 404, other methods 405.

pub mod assets;
mod feed;
mod gateway;
mod html;
mod live;
mod routes;
mod streams;
mod write_timeout;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

use crate::server::metrics::MetricsHub;
pub use feed::Feed;
use gateway::Feeds;
use shoal_proto::StreamId;
use write_timeout::WriteTimeout;

/// Time a client has to send a request head, on a new connection and
/// between the requests of a kept-alive one.
pub const HEADER_TIME: Duration = Duration::from_secs(5);
/// Time a client may take no bytes at all of an answer (a stalled reader
/// of a live stream) before its connection is closed.
pub const WRITE_TIME: Duration = Duration::from_secs(10);
/// Most connections open at once, unless `max_http_readers` asks for more.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections kept for pages, status and scrapes beside the most HTTP
/// readers, so a full house of readers still answers `/metrics`.
pub const PAGE_CONNECTIONS: usize = 64;

/// Most connections open at once for a web face serving up to
/// `max_http_readers` readers: [`MAX_CONNECTIONS`], or the readers plus
/// [`PAGE_CONNECTIONS`] when that is more. A reader over
/// `max_http_readers` then gets its 503 rather than a closed connection.
pub fn max_connections(max_http_readers: usize) -> usize {
    MAX_CONNECTIONS.max(max_http_readers.saturating_add(PAGE_CONNECTIONS))
}

/// What the pages are made of.
#[derive(Debug, Clone)]
pub struct WebState {
    /// The workers' snapshots.
    pub hub: MetricsHub,
    /// The live streams over HTTP, from the relay at this UDP address;
    /// `None`: no `/streams/<ID>.ts`.
    pub feeds: Option<Arc<Feeds>>,
    /// Most HTTP readers of live streams at once, over all streams; more
    /// get 503.
    pub max_http_readers: usize,
    /// Readers refused for [`WebState::max_http_readers`], since start.
    pub refused: Arc<AtomicU64>,
    /// How long a client may take nothing before it is closed
    /// ([`WRITE_TIME`]).
    pub write_time: Duration,
    /// Connections closed for taking nothing that long, since start.
    pub stalled: Arc<AtomicU64>,
}

impl WebState {
    /// Pages and metrics from `hub`; live streams from the relay at `relay`
    /// (its UDP address), if given.
    pub fn new(hub: MetricsHub, relay: Option<SocketAddr>, max_http_readers: usize) -> Self {
        Self {
            hub,
            feeds: relay.map(|r| Arc::new(Feeds::new(r))),
            max_http_readers,
            refused: Arc::new(AtomicU64::new(0)),
            write_time: WRITE_TIME,
            stalled: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The pages and live stream of one local viewer's `stream`
    /// (`shoal watch --http`): the viewer's owner fills the feed returned.
    pub fn local(stream: StreamId, max_http_readers: usize) -> (Self, Arc<Feed>) {
        let (feeds, feed) = Feeds::local(stream);
        let state = Self {
            hub: MetricsHub::new(0),
            feeds: Some(Arc::new(feeds)),
            max_http_readers,
            refused: Arc::new(AtomicU64::new(0)),
            write_time: WRITE_TIME,
            stalled: Arc::new(AtomicU64::new(0)),
        };
        (state, feed)
    }
}

/// Where a local client reaches a socket bound to `addr`: a wildcard
/// address (0.0.0.0, ::) becomes loopback.
pub fn local_to(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// The URL of the streams page of a server bound to `addr`, for the user
/// on this machine (a browser cannot open 0.0.0.0).
pub fn page_url(addr: SocketAddr) -> String {
    format!("http://{}/", local_to(addr))
}

/// Serves the routes on every address in `addrs` (port 0 picks a free
/// port) from a thread of its own, named `shoal-http`. Returns the bound
/// addresses, in order, and the thread, which runs until the process
/// exits. Binding happens before this returns, so a taken port is an
/// error here, not later.
pub fn serve(
    addrs: &[SocketAddr],
    state: WebState,
) -> io::Result<(Vec<SocketAddr>, JoinHandle<()>)> {
    let mut listeners = Vec::new();
    let mut bound = Vec::new();
    for &addr in addrs {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        bound.push(listener.local_addr()?);
        listeners.push(listener);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let thread = thread::Builder::new()
        .name("shoal-http".to_owned())
        .spawn(move || runtime.block_on(run(listeners, state)))?;
    Ok((bound, thread))
}

async fn run(listeners: Vec<TcpListener>, state: WebState) {
    let stall = Stall {
        budget: state.write_time,
        closed: state.stalled.clone(),
    };
    let connections = max_connections(state.max_http_readers).min(Semaphore::MAX_PERMITS);
    let router = routes::router(state);
    let slots = Arc::new(Semaphore::new(connections));
    let mut accepting = tokio::task::JoinSet::new();
    for listener in listeners {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                accepting.spawn(accept_loop(
                    listener,
                    router.clone(),
                    slots.clone(),
                    stall.clone(),
                    connections,
                ));
            }
            Err(e) => tracing::error!("http: cannot use a listener: {e}"),
        }
    }
    while accepting.join_next().await.is_some() {}
}

/// The write budget of each connection, and the count of those closed
/// for running out of it.
#[derive(Debug, Clone)]
struct Stall {
    budget: Duration,
    closed: Arc<AtomicU64>,
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    slots: Arc<Semaphore>,
    stall: Stall,
    connections: usize,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: back off rather than spin.
                tracing::debug!("http accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "http: {connections} connections open; closed");
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let io = WriteTimeout::new(stream, stall.budget, stall.closed.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIME)
                .serve_connection(TokioIo::new(io), service);
            if let Err(e) = connection.await {
                tracing::debug!(%peer, "http connection: {e}");
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests;
