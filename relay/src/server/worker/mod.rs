//! One worker: a thread pinned to a core, with its own socket and
//! backend, its own subscribers (those whose datagrams the kernel's
//! reuseport hash brings it), and a proto [`Relay`].
//!
//! Each loop turn: read the clock once, take messages from the other
//! workers, run timers, hand newly verified items to the mirrors, drain the
//! relay's sends into GSO trains, then let the backend submit them and wait
//! for the next datagrams.
//!
//! Streams are ingested (verified, FEC-rebuilt) by one worker, their owner
//! ([`route`]). The owner hands each verified item to every other worker as
//! a shared buffer ([`Relay::poll_export`]), which they adopt into their
//! mirror of the window without copying: every worker sends to its
//! subscribers from the same memory, and a slot is reused only once no
//! worker (and no send in flight) holds it.

mod route;

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use hdrhistogram::Histogram;
use shoal_proto::Time;
use shoal_proto::relay::{Export, Relay, RelayEvent};
use shoal_proto::wire::StreamHeader;

use crate::io::{Backend, Sink, Train, Waker};
use crate::os;
use crate::server::metrics::{MetricsHub, WorkerSnapshot, latency_histogram};
pub(crate) use route::{Owners, Router};

thread_local! {
    /// True on relay worker threads: lets tests count the allocations the
    /// data plane makes.
    pub static IN_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// How often a worker publishes its counters for the metrics endpoint.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Untold removals kept per mirror worker (see `Worker::forgets`); past
/// it, the oldest is dropped and counted as a hand-off drop.
const MAX_FORGETS: usize = 256;

/// What one worker sends another.
#[derive(Debug)]
pub(crate) enum ToWorker {
    /// A verified item of a stream the sender ingests.
    Adopt { export: Export, born: Instant },
    /// A datagram that belongs to the receiving worker: ingest of a stream
    /// it owns, or a reply from an upstream it subscribes to.
    Datagram {
        from: SocketAddr,
        bytes: Vec<u8>,
        born: Instant,
    },
    /// The sender, the stream's owner, removed it (idle): remove the
    /// mirror and tell its subscribers.
    Forget(shoal_proto::StreamId),
    /// Stop intake, tell subscribers, exit.
    Shutdown,
}

/// How to reach a worker: the sending end of its inbox and its waker.
#[derive(Debug, Clone)]
pub(crate) struct Mailbox {
    pub(crate) tx: Sender<ToWorker>,
    pub(crate) waker: Arc<Waker>,
}

/// A worker's state. See the module docs.
pub(crate) struct Worker {
    pub(crate) id: usize,
    pub(crate) relay: Relay,
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) router: Router,
    pub(crate) mailboxes: Vec<Mailbox>,
    pub(crate) inbox: Receiver<ToWorker>,
    /// Datagrams from these addresses go to worker 0, which holds the
    /// upstream sessions.
    pub(crate) upstreams: Vec<SocketAddr>,
    pub(crate) hub: MetricsHub,
    /// The GSO train being built from the relay's sends.
    train: Train,
    latency: Histogram<u64>,
    wake: Vec<bool>,
    /// Items or datagrams another worker's queue had no room for.
    pub(crate) handoff_drops: u64,
    /// Test-only: panic at this time ([`crate::server::supervise::TEST_PANIC_ENV`]).
    pub(crate) test_panic_at: Option<Instant>,
    /// Streams this worker removed that a mirror (worker, stream) has not
    /// been told of yet, its queue having been full: retried each turn. A
    /// mirror is only removed on its owner's word, so this is not given
    /// up while there is room: at most [`MAX_FORGETS`] per worker.
    forgets: Vec<(usize, shoal_proto::StreamId)>,
}

impl Worker {
    #[expect(clippy::too_many_arguments, reason = "assembled once, by the server")]
    pub(crate) fn new(
        id: usize,
        relay: Relay,
        backend: Box<dyn Backend>,
        router: Router,
        mailboxes: Vec<Mailbox>,
        inbox: Receiver<ToWorker>,
        upstreams: Vec<SocketAddr>,
        hub: MetricsHub,
    ) -> Self {
        let wake = vec![false; mailboxes.len()];
        Self {
            id,
            relay,
            backend,
            router,
            mailboxes,
            inbox,
            upstreams,
            hub,
            train: Train::default(),
            latency: latency_histogram(),
            wake,
            handoff_drops: 0,
            test_panic_at: None,
            forgets: Vec::new(),
        }
    }

    /// Makes this worker the ingest owner of the streams it pulls.
    pub(crate) fn own(&mut self, stream: shoal_proto::StreamId) {
        self.router.own(stream);
    }

    /// Runs until told to shut down.
    pub(crate) fn run(mut self) {
        IN_WORKER.with(|w| w.set(true));
        let mut born: Option<Instant> = None;
        let mut next_publish = Instant::now();
        let mut stopping = false;
        loop {
            let now = os::now();
            let instant = Instant::now();
            while let Ok(msg) = self.inbox.try_recv() {
                match msg {
                    ToWorker::Adopt { export, born: b } => {
                        born = Some(born.map_or(b, |x| x.min(b)));
                        self.relay.handle_adopt(now, export);
                    }
                    ToWorker::Datagram {
                        from,
                        bytes,
                        born: b,
                    } => {
                        born = Some(born.map_or(b, |x| x.min(b)));
                        self.handed(now, from, bytes, b);
                    }
                    ToWorker::Forget(stream) => self.relay.remove_stream(&stream),
                    ToWorker::Shutdown => {
                        stopping = true;
                        self.relay.shutdown();
                    }
                }
            }
            if self.relay.poll_timeout().is_some_and(|t| t <= now) {
                self.relay.handle_timeout(now);
            }
            self.log_events();
            self.tell_forgets();
            self.flush(born.take().unwrap_or(instant));
            if instant >= next_publish || stopping {
                self.publish();
                next_publish = instant + PUBLISH_EVERY;
                if self.test_panic_at.is_some_and(|t| instant >= t) {
                    panic!(
                        "{}: the panic a test asked for",
                        crate::server::supervise::TEST_PANIC_ENV
                    );
                }
            }
            let timeout = if stopping {
                Duration::ZERO
            } else {
                let timer = self
                    .relay
                    .poll_timeout()
                    .map_or(PUBLISH_EVERY, |t| t.saturating_since(now));
                timer.min(next_publish.saturating_duration_since(instant))
            };
            let mut turn = Turn {
                id: self.id,
                relay: &mut self.relay,
                router: &mut self.router,
                mailboxes: &self.mailboxes,
                wake: &mut self.wake,
                upstreams: &self.upstreams,
                latency: &mut self.latency,
                clock: None,
                born: &mut born,
                handoff_drops: &mut self.handoff_drops,
            };
            if let Err(e) = self.backend.turn(Some(timeout), &mut turn) {
                tracing::warn!(worker = self.id, "backend turn failed: {e}");
            }
            self.wake_workers();
            if stopping {
                // Whatever the last turn produced (LEAVEs) goes out too.
                self.flush(Instant::now());
                let _ = self.backend.turn(Some(Duration::ZERO), &mut NullSink);
                break;
            }
        }
        tracing::debug!(worker = self.id, "worker stopped");
    }

    /// A datagram another worker handed over. Ingest is routed again: the
    /// stream may have been removed here and claimed elsewhere since the
    /// sender looked it up.
    fn handed(&mut self, now: Time, from: SocketAddr, bytes: Vec<u8>, born: Instant) {
        let owner = match StreamHeader::new(&bytes) {
            Some(header) => route_ingest(&mut self.relay, &mut self.router, now, from, header),
            None => {
                self.relay.handle_datagram(now, from, &bytes);
                None
            }
        };
        if let Some(w) = owner
            && let Some(mailbox) = self.mailboxes.get(w)
        {
            match mailbox
                .tx
                .try_send(ToWorker::Datagram { from, bytes, born })
            {
                Ok(()) => self.wake[w] = true,
                Err(_) => self.handoff_drops += 1,
            }
        }
    }

    /// Logs what the relay core reports (and so keeps its queue empty), and
    /// tells the mirrors when this worker let a stream it owned go.
    fn log_events(&mut self) {
        let id = self.id;
        while let Some(event) = self.relay.poll_event() {
            match event {
                RelayEvent::StreamAdded(s) => {
                    tracing::info!(worker = id, stream = %s, "stream added")
                }
                RelayEvent::StreamRemoved(s) => {
                    tracing::info!(worker = id, stream = %s, "stream removed");
                    if self.router.forget(&s) {
                        for w in (0..self.mailboxes.len()).filter(|&w| w != id) {
                            if self.forgets.contains(&(w, s)) {
                                continue;
                            }
                            if self.forgets.len() >= MAX_FORGETS * self.mailboxes.len() {
                                self.forgets.remove(0);
                                self.handoff_drops += 1;
                            }
                            self.forgets.push((w, s));
                        }
                    }
                }
                RelayEvent::UpstreamSubscribed(from, s) => {
                    tracing::info!(worker = id, upstream = %from, stream = %s, "subscribed upstream");
                }
                RelayEvent::UpstreamRejected(from, why) => {
                    tracing::warn!(worker = id, upstream = %from, reason = ?why, "upstream refused");
                }
                RelayEvent::SubscriberJoined(from, s) => {
                    tracing::debug!(worker = id, subscriber = %from, stream = %s, "subscriber joined");
                }
                RelayEvent::SubscriberLeft(from, why) => {
                    tracing::debug!(worker = id, subscriber = %from, reason = ?why, "subscriber left");
                }
            }
        }
    }

    /// Tells the mirrors of the streams this worker removed, as far as
    /// their queues have room.
    fn tell_forgets(&mut self) {
        let (mailboxes, wake) = (&self.mailboxes, &mut self.wake);
        self.forgets.retain(|&(w, stream)| {
            let Some(mailbox) = mailboxes.get(w) else {
                return false;
            };
            match mailbox.tx.try_send(ToWorker::Forget(stream)) {
                Ok(()) => {
                    wake[w] = true;
                    false
                }
                Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
    }

    /// Hands verified items to the mirrors and sends what the relay has.
    fn flush(&mut self, born: Instant) {
        while let Some(export) = self.relay.poll_export() {
            for (w, mailbox) in self.mailboxes.iter().enumerate() {
                if w == self.id {
                    continue;
                }
                let msg = ToWorker::Adopt {
                    export: export.clone(),
                    born,
                };
                match mailbox.tx.try_send(msg) {
                    Ok(()) => self.wake[w] = true,
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                        self.handoff_drops += 1;
                    }
                }
            }
        }
        self.wake_workers();
        while let Some(t) = self.relay.poll_transmit() {
            let (dst, buf) = (t.dst, Arc::clone(t.payload));
            self.train.add(&mut *self.backend, dst, buf, born);
        }
        self.train.flush(&mut *self.backend, born);
    }

    fn wake_workers(&mut self) {
        for (w, flag) in self.wake.iter_mut().enumerate() {
            if std::mem::take(flag) {
                self.mailboxes[w].waker.wake();
            }
        }
    }

    /// Hands a snapshot of the counters to the metrics endpoint. Periodic,
    /// not per packet; its allocations (a histogram copy) are marked as
    /// outside the data plane for the allocation test.
    fn publish(&mut self) {
        IN_WORKER.with(|w| w.set(false));
        // Token expiry is wall time, proto's `now` is not: re-pair them so a
        // wall-clock step reaches token checks within one snapshot period.
        self.relay.set_wall_clock(os::wall_clock());
        self.publish_snapshot();
        IN_WORKER.with(|w| w.set(true));
    }

    fn publish_snapshot(&mut self) {
        let relay = self.relay.stats();
        let upstreams = self.relay.upstreams().collect();
        self.hub.publish(WorkerSnapshot {
            worker: self.id,
            backend: self.backend.name(),
            relay,
            window: self.relay.window_stats(),
            io: self.backend.stats(),
            subscribers: self.relay.subscriber_count() as u64,
            streams: self.relay.stream_count() as u64,
            live_streams: self.relay.live_streams().collect(),
            stream_summaries: self.relay.stream_summaries(),
            upstreams,
            latency_us: self.latency.clone(),
            handshakes_rate_limited: relay.drop_rate_limited,
            handoffs_dropped: self.handoff_drops,
        });
    }
}

/// The backend's view of a worker during one turn.
struct Turn<'a> {
    id: usize,
    relay: &'a mut Relay,
    router: &'a mut Router,
    mailboxes: &'a [Mailbox],
    wake: &'a mut [bool],
    upstreams: &'a [SocketAddr],
    latency: &'a mut Histogram<u64>,
    /// The clock, read once per turn on the first datagram.
    clock: Option<(Time, Instant)>,
    born: &'a mut Option<Instant>,
    handoff_drops: &'a mut u64,
}

impl Turn<'_> {
    fn hand_to(&mut self, w: usize, from: SocketAddr, bytes: &[u8], born: Instant) {
        let Some(mailbox) = self.mailboxes.get(w) else {
            return;
        };
        let msg = ToWorker::Datagram {
            from,
            bytes: bytes.to_vec(),
            born,
        };
        match mailbox.tx.try_send(msg) {
            Ok(()) => self.wake[w] = true,
            Err(_) => *self.handoff_drops += 1,
        }
    }
}

impl Sink for Turn<'_> {
    fn datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        let (now, instant) = *self
            .clock
            .get_or_insert_with(|| (os::now(), Instant::now()));
        self.born.get_or_insert(instant);
        if let Some(header) = StreamHeader::new(bytes) {
            if let Some(w) = route_ingest(self.relay, self.router, now, from, header) {
                self.hand_to(w, from, bytes, instant);
            }
        } else if self.id != 0 && self.upstreams.contains(&from) {
            self.hand_to(0, from, bytes, instant);
        } else {
            self.relay.handle_datagram(now, from, bytes);
        }
    }

    fn sent(&mut self, born: Instant, _segments: usize, result: std::io::Result<usize>) {
        match result {
            Ok(_) => {
                let us = u64::try_from(born.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.latency.saturating_record(us.max(1));
            }
            Err(e) => tracing::trace!("send failed: {e}"),
        }
    }
}

/// Ingests a stream datagram here if this worker owns the stream, or
/// claims the stream if nobody does and it takes; otherwise returns the
/// worker to hand it to.
fn route_ingest(
    relay: &mut Relay,
    router: &mut Router,
    now: Time,
    from: SocketAddr,
    header: StreamHeader<'_>,
) -> Option<usize> {
    let stream = header.stream();
    match router.route(&stream) {
        route::Route::Here => {
            relay.handle_stream(now, from, header.into());
            None
        }
        route::Route::To(w) => Some(w),
        // A DESCRIPTOR of a stream nobody carries is checked (signature
        // and admission) before the shared table is locked, so that a
        // flood of them does not hold every worker's routing up; under
        // the lock it is taken as verified.
        route::Route::Unknown => {
            let datagram = relay.prove_new_stream(now, from, header)?;
            router.claim_with(stream, || {
                relay.handle_stream(now, from, datagram);
                // Not a mirror left over from a previous owner.
                relay.ingests(&stream)
            })
        }
    }
}

/// Ignores everything: for the last turn of a stopping worker.
struct NullSink;

impl Sink for NullSink {
    fn datagram(&mut self, _: SocketAddr, _: &[u8]) {}
    fn sent(&mut self, _: Instant, _: usize, _: std::io::Result<usize>) {}
}
