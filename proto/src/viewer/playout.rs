//! Playout: the stream's window, read out in order.
//!
//! Playout starts at the first keyframe at or after the relay's start
//! sequence number (the relay starts a new subscriber at its latest
//! keyframe and sends the window from there). Chunks are released in order
//! as soon as they are contiguous; a missing chunk holds the output back
//! until its deadline, its publisher timestamp (estimated from the next
//! chunk that did arrive) plus the latency budget, and is then given up as
//! a gap. A new run of the publisher gives up what the old one owed and
//! starts again at the new run's first keyframe, so the output never
//! mixes two runs.
//!
//! Playout also holds what its owner is told: the [`ViewerEvent`]s and the
//! [`ViewerStats`]. What is missing is handed to [`Repair`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use super::{Payload, Repair, ViewerConfig, ViewerEvent, ViewerStats};
use crate::integrity::{Rejection, StreamKey};
use crate::transmit::SharedBuf;
use crate::window::{Adopt, Incoming, Ingested, Ready, Window};
use crate::wire::Keepalive;
use crate::{Time, WallTime};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Playout {
    pub(super) window: Window,
    latency: Duration,
    resume_live: bool,
    /// How far below the newest chunk missing ones are noted.
    span: u64,
    /// The newest chunk at the last [`Playout::advance`]: every chunk
    /// missing below it was noted then (and stays noted until played or
    /// given up), so the next one looks only from there.
    noted: Option<u64>,
    start_seq: Option<u64>,
    pub(super) next_play: Option<u64>,
    started: bool,
    ended: bool,
    events: VecDeque<ViewerEvent>,
    stats: ViewerStats,
}

impl Playout {
    pub(crate) fn new(key: StreamKey, config: &ViewerConfig) -> Self {
        Self {
            window: Window::new(key, config.window),
            latency: config.latency,
            resume_live: config.resume_live,
            span: config.window.capacity as u64 / 2,
            noted: None,
            start_seq: None,
            next_play: None,
            started: false,
            ended: false,
            events: VecDeque::new(),
            stats: ViewerStats::default(),
        }
    }

    /// The stream's window.
    pub(crate) fn window(&self) -> &Window {
        &self.window
    }

    /// The newest chunk held, if any.
    pub(crate) fn newest_seq(&self) -> Option<u64> {
        self.window.newest_seq()
    }

    pub(crate) fn stats(&self) -> ViewerStats {
        self.stats
    }

    /// Whether the stream has ended (or its owner left).
    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    pub(crate) fn poll_event(&mut self) -> Option<ViewerEvent> {
        self.events.pop_front()
    }

    pub(crate) fn push_event(&mut self, event: ViewerEvent) {
        self.events.push_back(event);
    }

    /// A datagram was refused before ingest (unreadable, or not from the
    /// relay in use).
    pub(crate) fn count_rejected(&mut self) {
        self.stats.rejected += 1;
    }

    /// A NACK datagram went out.
    pub(crate) fn count_nack(&mut self) {
        self.stats.nacks_sent += 1;
    }

    /// The relay accepted the subscription, starting at `start_seq`.
    pub(crate) fn accepted(&mut self, start_seq: u64) {
        if self.start_seq.is_none() {
            self.start_seq = Some(start_seq);
            self.next_play = Some(start_seq);
        }
        self.events.push_back(ViewerEvent::Subscribed { start_seq });
    }

    /// The owner moved to the next relay in its list.
    pub(crate) fn relay_changed(&mut self, from: SocketAddr, to: SocketAddr) {
        self.stats.relay_changes += 1;
        self.events
            .push_back(ViewerEvent::RelayChanged { from, to });
    }

    /// Where a (re)subscription starts: the next chunk to play, or the
    /// live edge with `resume_live` once playout has begun.
    pub(crate) fn resume_seq(&self) -> Option<u64> {
        if self.resume_live && self.started {
            return self
                .window
                .newest_seq()
                .map(|n| n.saturating_add(1))
                .or(self.next_play);
        }
        self.next_play
    }

    /// The report a KEEPALIVE carries in session `session`.
    pub(crate) fn report(&self, session: u64) -> Keepalive {
        let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Keepalive {
            stream: self.window.stream(),
            session,
            highest_seq: self.window.newest_seq().unwrap_or(0),
            lost: sat(self.stats.lost),
            fec_repaired: sat(self.stats.fec_repaired),
            nack_repaired: sat(self.stats.nack_repaired),
            latency_us: sat(self.stats.last_latency_us),
        }
    }

    /// Hands a DATA, PARITY, MANIFEST or DESCRIPTOR to the window
    /// (`trusted`: from a source allowed to prove new data), passes each
    /// item it verifies to `export`, and returns what ingest did.
    pub(crate) fn ingest(
        &mut self,
        now: Time,
        datagram: Incoming<'_>,
        trusted: bool,
        repair: &mut Repair,
        export: &mut impl FnMut(Adopt, &SharedBuf),
    ) -> Result<Ingested, Rejection> {
        let result = self.window.ingest_incoming(now, datagram, trusted);
        if result == Ok(Ingested::Descriptor)
            && let Some(d) = self.window.descriptor_buf()
        {
            export(Adopt::Descriptor, d);
        }
        if let Err(r) = result {
            self.stats.rejected += 1;
            if matches!(r, Rejection::Forged | Rejection::Corrupted) {
                self.stats.rejected_integrity += 1;
            }
        }
        self.drain(now, repair, export);
        result
    }

    /// Runs the window's timers.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Time,
        repair: &mut Repair,
        export: &mut impl FnMut(Adopt, &SharedBuf),
    ) {
        self.window.handle_timeout(now);
        self.drain(now, repair, export);
    }

    /// When a missing chunk at the play point is given up, if one is.
    pub(crate) fn poll_timeout(&self) -> Option<Time> {
        let play = self
            .next_play
            .filter(|&n| self.window.chunk(n).is_none())
            .and_then(|n| self.deadline(n));
        [self.window.poll_timeout(), play]
            .into_iter()
            .flatten()
            .min()
    }

    fn drain(
        &mut self,
        now: Time,
        repair: &mut Repair,
        export: &mut impl FnMut(Adopt, &SharedBuf),
    ) {
        while let Some(r) = self.window.poll_ready() {
            match r {
                Ready::AwaitingManifest { block } => repair.awaiting_manifest(block, now),
                Ready::Manifest { block } => repair.manifest_came(block),
                Ready::Reset {
                    epoch,
                    floor_seq,
                    previous,
                } => self.reset(epoch, floor_seq, previous, repair),
                Ready::Data { seq, rebuilt } => {
                    let clubs = self.window.descriptor().map_or(1, |(d, _)| d.clubs.max(1));
                    repair.came(seq, clubs, now);
                    if !rebuilt && let Some(c) = self.window.chunk(seq) {
                        let stamped = self.stamped_at(c.timestamp_us);
                        repair.arrived(seq, clubs, now.saturating_since(stamped));
                    }
                }
                Ready::Parity { .. } => {}
            }
            if !matches!(r, Ready::AwaitingManifest { .. })
                && let Some(buf) = self.window.ready_buf(r)
            {
                export(Adopt::Ready(r), buf);
            }
        }
    }

    /// The window moved to a later run of the publisher (or jumped ahead):
    /// what the old run still owed is a gap, and playout starts again at
    /// the new run's first keyframe, so the output never mixes two runs.
    fn reset(&mut self, epoch: u64, floor_seq: u64, previous: Option<u64>, repair: &mut Repair) {
        self.stats.resets += 1;
        repair.clear();
        self.noted = None;
        let Some(next) = self.next_play.filter(|&n| n < floor_seq) else {
            self.events.push_back(ViewerEvent::NewRun { epoch });
            return;
        };
        if self.started {
            // Everything of the old run from the play point on is lost.
            self.stats.lost += previous.map_or(0, |p| (p + 1).saturating_sub(next));
            self.events.push_back(ViewerEvent::Gap {
                from: next,
                to: floor_seq,
            });
        }
        self.next_play = Some(floor_seq);
        self.started = false;
        self.events.push_back(ViewerEvent::NewRun { epoch });
    }

    /// The deadline of a missing chunk: the timestamp of the next chunk
    /// that did arrive, plus the budget.
    pub(crate) fn deadline(&self, seq: u64) -> Option<Time> {
        self.stamped_by(seq).map(|t| t + self.latency)
    }

    /// The latency budget: a chunk is due this long after its stamp.
    pub(crate) fn budget(&self) -> Duration {
        self.latency
    }

    /// When a missing chunk was cut at the latest, on this host's clock:
    /// the stamp of the next chunk that did arrive.
    pub(crate) fn stamped_by(&self, seq: u64) -> Option<Time> {
        let newest = self.window.newest_seq()?;
        // Sequence numbers are the publisher's word, up to u64::MAX.
        (seq.saturating_add(1)..=newest.min(seq.saturating_add(4096)))
            .find_map(|s| self.window.chunk(s))
            .map(|c| self.stamped_at(c.timestamp_us))
    }

    /// A publisher's stamp on this host's monotonic clock.
    fn stamped_at(&self, timestamp_us: u64) -> Time {
        self.window
            .wall_clock()
            .time_at(WallTime::from_micros(timestamp_us))
    }

    /// Releases what can be released, gives up what is too late, and
    /// notes what is missing. True if the stream has just ended: its
    /// owner leaves its relay.
    pub(crate) fn advance(&mut self, now: Time, repair: &mut Repair) -> bool {
        let Some(mut next) = self.next_play else {
            return false;
        };
        if !self.started && self.window.newest_seq().is_some() {
            // Before the first keyframe (at the start, or after a new run
            // began long ago) nothing below the window can come any more.
            next = next.max(self.window.oldest_seq());
        }
        loop {
            if self.ended {
                break;
            }
            if let Some(c) = self.window.chunk(next) {
                if !self.started {
                    if !c.keyframe {
                        next += 1;
                        continue;
                    }
                    self.started = true;
                }
                let latency = (self.window.wall_clock().wall_at(now))
                    .saturating_since(WallTime::from_micros(c.timestamp_us));
                let payload = Payload::of(c.datagram);
                let eos = c.end_of_stream;
                let keyframe = c.keyframe;
                self.stats.played += 1;
                self.stats.played_bytes += payload.len() as u64;
                if c.rebuilt {
                    self.stats.fec_repaired += 1;
                } else if repair.was_nacked(next) {
                    self.stats.nack_repaired += 1;
                }
                let us = latency.as_micros() as u64;
                self.stats.last_latency_us = us;
                self.stats.max_latency_us = self.stats.max_latency_us.max(us);
                self.events.push_back(ViewerEvent::Chunk {
                    seq: next,
                    payload,
                    latency,
                    keyframe,
                });
                repair.forget(next..next + 1);
                next += 1;
                if eos {
                    self.next_play = Some(next);
                    return self.end();
                }
                continue;
            }
            // `next` is missing. Give it up once its deadline has passed.
            match self.deadline(next) {
                Some(deadline) if now >= deadline => {
                    let newest = self.window.newest_seq().unwrap_or(next);
                    let mut to = next + 1;
                    while to <= newest
                        && self.window.chunk(to).is_none()
                        && self.deadline(to).is_some_and(|d| now >= d)
                    {
                        to += 1;
                    }
                    if self.started {
                        self.stats.lost += to - next;
                        self.events.push_back(ViewerEvent::Gap { from: next, to });
                    }
                    repair.forget(next..to);
                    next = to;
                }
                _ => break,
            }
        }
        self.next_play = Some(next);
        // Note what is missing between the play point and the newest
        // chunk: below the newest of the last call it was noted then.
        let held = self.window.newest_seq();
        if let Some(newest) = held {
            let lo = next.max(newest.saturating_sub(self.span));
            let from = match self.noted {
                Some(n) if n <= newest => n.max(lo),
                _ => lo,
            };
            for s in from..newest {
                if self.window.chunk(s).is_none() {
                    repair.missing(s, now);
                }
            }
            self.noted = Some(newest);
        }
        // And what a MANIFEST lists beyond it: nothing newer may come to
        // show those missing (the stream's last chunks).
        let listed = self.window.newest_listed_seq();
        repair.set_tail(listed.filter(|&l| held.is_none_or(|n| l > n)));
        repair.forget_below(next);
        repair.schedule(now, self);
        false
    }

    /// The stream ended: true the first time (its owner then leaves its
    /// relay).
    pub(crate) fn end(&mut self) -> bool {
        if self.ended {
            return false;
        }
        self.ended = true;
        self.events.push_back(ViewerEvent::EndOfStream);
        true
    }

    /// The owner left: nothing more is played.
    pub(crate) fn close(&mut self) {
        self.ended = true;
    }
}
