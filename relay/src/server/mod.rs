//! The relay server, `shoal relay`: [`Server`] starts and stops a relay
//! (sockets, workers, metrics); [`worker`] is the per-core loop,
//! [`config`] its settings, [`metrics`] its Prometheus endpoint, and
//! [`supervise`] what happens when a worker dies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, bail};
use shoal_proto::relay::{Relay, WebFace};

pub mod config;
pub mod metrics;
pub mod supervise;
pub mod worker;

use self::config::Settings;
use self::metrics::MetricsHub;
use self::supervise::{ExitNotice, WorkerPanic};
use self::worker::{Mailbox, Owners, Router, ToWorker, Worker};
use crate::dht::announce::Announcer;
use crate::io::{self, BackendKind, IoConfig, Waker, socket};
use crate::os::{self, random_bytes};
use crate::sys::cpu;

/// Queue depth between two workers: enough for a burst of a few thousand
/// chunks, and a bound on memory (at most this many datagrams of 1452
/// bytes wait per worker) whatever arrives.
const HANDOFF_QUEUE: usize = 16_384;

/// A running relay.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    backend: &'static str,
    mailboxes: Vec<Mailbox>,
    workers: Vec<JoinHandle<()>>,
    hub: MetricsHub,
    metrics_addr: Option<SocketAddr>,
    /// The web face's address (`--http`), if on.
    http_addr: Option<SocketAddr>,
    /// With `--announce`: the DHT node announcing this relay.
    announcer: Option<Announcer>,
    /// A worker's id when its thread ends, however it ends.
    exits: crossbeam_channel::Receiver<usize>,
}

impl Server {
    /// Binds the sockets, starts one worker per configured core and the
    /// metrics endpoint. Returns once every worker is running.
    pub fn start(settings: &Settings) -> anyhow::Result<Self> {
        let workers = settings.workers.max(1);
        let kind = resolve_backend(settings.backend)?;
        let first = socket::bind_reuseport(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(
                socket::bind_reuseport(addr)
                    .with_context(|| format!("cannot add a worker socket on {addr}"))?,
            );
        }
        let hub = MetricsHub::new(workers);
        let (metrics_addr, http_addr) = serve_web(settings, &hub, addr)?;
        let mut inboxes = Vec::new();
        let mut mailboxes = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = crossbeam_channel::bounded(HANDOFF_QUEUE);
            let waker = Arc::new(Waker::new().context("eventfd")?);
            mailboxes.push(Mailbox { tx, waker });
            inboxes.push(rx);
        }
        let owners = Owners::default();
        let secret: [u8; 32] =
            random_bytes().context("cannot read /dev/urandom for the cookie secret")?;
        let cpus = cpu::allowed_cpus();
        let io_config = IoConfig {
            gso: settings.gso,
            ..IoConfig::default()
        };
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(workers);
        let (exit_tx, exits) = crossbeam_channel::bounded(workers);
        let test_panic_at = supervise::test_panic_after()?.map(|after| Instant::now() + after);
        let mut handles = Vec::new();
        for (id, (socket, inbox)) in sockets.into_iter().zip(inboxes).enumerate() {
            let mut config = settings.relay_config();
            // Each worker owns the subscribers the kernel steers to it, so
            // the limit is shared out; the hash spreads them about evenly.
            config.max_subscribers = settings.max_subscribers.div_ceil(workers);
            config.max_subscriptions_per_ip = settings.max_subscriptions_per_ip.div_ceil(workers);
            config.cookie_secret = secret;
            config.web = web_face(http_addr, settings.http_url.as_deref());
            config.nonce_seed = u64::from_le_bytes(
                random_bytes().context("cannot read /dev/urandom for a nonce seed")?,
            );
            let mailboxes_w = mailboxes.clone();
            let hub_w = hub.clone();
            let owners_w = owners.clone();
            let ready = ready_tx.clone();
            let upstreams = settings.upstreams.clone();
            let streams = settings.streams.clone();
            let cpu = settings
                .pin
                .then(|| cpus.get(id % cpus.len().max(1)).copied())
                .flatten();
            let notice = ExitNotice {
                worker: id,
                tx: exit_tx.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("shoal-worker-{id}"))
                .spawn(move || {
                    let _notice = notice;
                    if let Some(cpu) = cpu
                        && let Err(e) = cpu::pin_to(&[cpu])
                    {
                        tracing::warn!(cpu, "cannot pin worker: {e}");
                    }
                    // The ring is created on the thread that submits to it
                    // (io_uring's single-issuer mode requires it).
                    let waker = Arc::clone(&mailboxes_w[id].waker);
                    let backend = match io::open(kind, socket, &waker, io_config) {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = ready.send(Err(format!("worker {id}: {e}")));
                            return;
                        }
                    };
                    let mut relay = Relay::new(config);
                    relay.set_export(mailboxes_w.len() > 1);
                    // proto's time is monotonic; token expiry and the
                    // freshness of signed times need the wall clock, which
                    // the worker refreshes as it runs.
                    relay.set_wall_clock(os::wall_clock());
                    let mut worker = Worker::new(
                        id,
                        relay,
                        backend,
                        Router::new(id, owners_w),
                        mailboxes_w,
                        inbox,
                        upstreams.clone(),
                        hub_w,
                    );
                    if id == 0 {
                        let now = os::now();
                        for stream in &streams {
                            if let Err(e) = worker.relay.add_upstreams(now, &upstreams, *stream) {
                                let _ = ready.send(Err(format!("stream {stream}: {e}")));
                                return;
                            }
                            worker.own(*stream);
                        }
                        worker.test_panic_at = test_panic_at;
                    }
                    let _ = ready.send(Ok(worker.backend.name()));
                    worker.run();
                })
                .context("cannot start a worker thread")?;
            handles.push(handle);
        }
        drop(ready_tx);
        let mut backend = "";
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(name)) => backend = name,
                Ok(Err(e)) => {
                    stop(&mailboxes, handles);
                    bail!(e);
                }
                Err(_) => {
                    stop(&mailboxes, handles);
                    bail!("a worker stopped while starting");
                }
            }
        }
        let announcer = match &settings.announce {
            Some(options) => match Announcer::start(options, addr, hub.clone()) {
                Ok(a) => Some(a),
                Err(e) => {
                    stop(&mailboxes, handles);
                    return Err(e.context("--announce"));
                }
            },
            None => None,
        };
        tracing::info!(
            %addr,
            workers,
            backend,
            metrics = ?metrics_addr,
            http = ?http_addr,
            "relay listening"
        );
        if let Some(http) = http_addr {
            match &settings.http_url {
                Some(public) => tracing::info!(
                    "web face: streams at {} (announced to publishers as {public})",
                    crate::web::page_url(http)
                ),
                None => tracing::info!("web face: streams at {}", crate::web::page_url(http)),
            }
        }
        Ok(Self {
            addr,
            backend,
            mailboxes,
            workers: handles,
            hub,
            metrics_addr,
            http_addr,
            announcer,
            exits,
        })
    }

    /// Calls `f` (once, on a thread of its own) when any worker thread
    /// ends: after [`Server::shutdown`], or when one panics. The main
    /// thread uses it to stop waiting for a signal (see [`supervise`]).
    pub fn on_worker_exit(&self, f: impl FnOnce() + Send + 'static) -> anyhow::Result<()> {
        let exits = self.exits.clone();
        std::thread::Builder::new()
            .name("shoal-supervisor".to_owned())
            .spawn(move || {
                if exits.recv().is_ok() {
                    f();
                }
            })
            .context("cannot start the supervisor thread")?;
        Ok(())
    }

    /// The address subscribers and publishers use.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The backend in use: "uring" or "mmsg".
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Where the metrics endpoint listens, if it does.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The web face's bound address (`--http`), if on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The workers' latest counters.
    pub fn metrics(&self) -> &MetricsHub {
        &self.hub
    }

    /// Stops intake, tells every subscriber (LEAVE), and waits for the
    /// workers to exit. Returns the workers that had panicked, each logged
    /// as an error.
    pub fn shutdown(self) -> Vec<WorkerPanic> {
        if let Some(a) = self.announcer {
            a.stop();
        }
        stop(&self.mailboxes, self.workers)
    }
}

fn stop(mailboxes: &[Mailbox], workers: Vec<JoinHandle<()>>) -> Vec<WorkerPanic> {
    for p in mailboxes {
        let _ = p.tx.send(ToWorker::Shutdown);
        p.waker.wake();
    }
    let mut panics = Vec::new();
    for w in workers {
        let thread = w.thread().name().unwrap_or("a worker").to_owned();
        if let Err(payload) = w.join() {
            let message = supervise::panic_message(&*payload);
            tracing::error!(thread, panic = message, "worker panicked");
            panics.push(WorkerPanic { thread, message });
        }
    }
    panics
}

/// `auto` becomes a concrete backend once, with one log line when io_uring
/// is not usable here.
fn resolve_backend(kind: BackendKind) -> anyhow::Result<BackendKind> {
    match kind {
        BackendKind::Auto => match io::uring::probe() {
            Ok(()) => Ok(BackendKind::Uring),
            Err(why) => {
                tracing::warn!("io_uring is not usable here ({why}); using the mmsg backend");
                Ok(BackendKind::Mmsg)
            }
        },
        BackendKind::Uring => match io::uring::probe() {
            Ok(()) => Ok(BackendKind::Uring),
            Err(why) => bail!(
                "--backend uring: io_uring is not usable here ({why}); use --backend auto or mmsg"
            ),
        },
        BackendKind::Mmsg => Ok(BackendKind::Mmsg),
    }
}

/// What ABOUT announces (SPEC §6.15): the operator's URL if given; else,
/// for a web face on one address, its URL; for one on every address, only
/// its port, which a publisher puts after the address it sends to.
fn web_face(http: Option<SocketAddr>, url: Option<&str>) -> WebFace {
    let Some(http) = http else {
        return WebFace::default();
    };
    let page = match url {
        Some(url) => url.to_owned(),
        None if http.ip().is_unspecified() => String::new(),
        None => crate::web::page_url(http),
    };
    WebFace {
        http_port: http.port(),
        page,
    }
}

/// Starts the web face on the metrics address and the `--http` one (one
/// server, one thread, for both); returns their bound addresses.
fn serve_web(
    settings: &Settings,
    hub: &MetricsHub,
    listen: SocketAddr,
) -> anyhow::Result<(Option<SocketAddr>, Option<SocketAddr>)> {
    let addrs: Vec<SocketAddr> = settings.metrics.into_iter().chain(settings.http).collect();
    if addrs.is_empty() {
        return Ok((None, None));
    }
    if settings.metrics.is_some_and(|m| m.port() != 0) && settings.metrics == settings.http {
        anyhow::bail!(
            "--metrics and --http are both {}; give them different ports, or --metrics off (the web face serves /metrics too)",
            addrs[0]
        );
    }
    let state = crate::web::WebState::new(hub.clone(), Some(listen), settings.max_http_readers);
    let (bound, _thread) = crate::web::serve(&addrs, state).with_context(|| {
        format!(
            "cannot serve HTTP on {}; use free ports with --metrics ADDR and --http ADDR, or turn them off",
            addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ")
        )
    })?;
    let mut bound = bound.into_iter();
    let metrics = settings.metrics.and_then(|_| bound.next());
    let http = settings.http.and_then(|_| bound.next());
    Ok((metrics, http))
}
