//! Ingest: stream datagrams (DATA, PARITY, MANIFEST, DESCRIPTOR) into
//! the stream's window, and what became verified out to fan-out and the
//! mirrors.
//!
//! Each stream has one [`Window`] that verifies it (a signature per block,
//! a hash per chunk). A DESCRIPTOR for a stream not carried yet is checked
//! before anything is created for it, within the relay's budget for checks
//! that fail. In a multi-threaded relay one worker ingests a stream and
//! hands each verified item to the others ([`Relay::poll_export`]), which
//! adopt it without checking it again ([`Relay::handle_adopt`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::fanout::Item;
use super::host::Host;
use super::sources::ProvenSources;
use super::upstream::{Awaiting, MANIFEST_NACK_AFTER, MAX_AWAITING, Upstream};
use super::{Relay, RelayEvent};
use crate::integrity::{Rejection, StreamKey, VerifiedDescriptor};
use crate::transmit::SharedBuf;
use crate::window::{Adopt, Ingested, Ready, Window};
use crate::wire::{Descriptor, MessageType, StreamHeader};
use crate::{StreamId, Time};

/// A stream carried: its window and where its datagrams come from.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) window: Window,
    pub(super) upstream: Option<Upstream>,
    /// Fed by [`Relay::handle_adopt`] from the relay worker that ingests
    /// it, rather than by ingest here.
    pub(super) mirror: bool,
    /// Blocks whose chunks came from the upstream without their manifest.
    pub(super) awaiting: BTreeMap<u64, Awaiting>,
    /// Who may send chunks ahead of their manifest.
    pub(super) sources: ProvenSources,
    /// Verified data last came (or, for a stream never live, a subscriber
    /// last waited).
    pub(super) last_active: Option<Time>,
    /// The host that created it, counted against its stream limit.
    pub(super) creator: Option<Host>,
    /// Pulled from upstreams by configuration: never idle.
    pub(super) configured: bool,
    /// A free slot: see [`Relay::remove_stream`].
    pub(super) vacant: bool,
}

/// A verified item for the mirrors of a stream: see [`Relay::poll_export`].
#[derive(Debug, Clone)]
pub struct Export {
    /// The stream.
    pub stream: StreamId,
    /// What it is.
    pub item: Adopt,
    /// Its datagram, shared.
    pub buf: SharedBuf,
}

/// A stream datagram on its way in: its header, read once (see
/// [`StreamHeader`]), and for the first DESCRIPTOR of a new stream the
/// proof that its signature verified (see [`Relay::prove_new_stream`]).
#[derive(Debug, Clone, Copy)]
pub struct StreamDatagram<'a> {
    header: StreamHeader<'a>,
    proven: Option<VerifiedDescriptor<'a>>,
}

impl<'a> From<StreamHeader<'a>> for StreamDatagram<'a> {
    fn from(header: StreamHeader<'a>) -> Self {
        Self {
            header,
            proven: None,
        }
    }
}

impl Relay {
    /// Handles a stream datagram (DATA, PARITY, MANIFEST, DESCRIPTOR) whose
    /// header the IO shell read to route it: as
    /// [`Relay::handle_datagram`], without reading the header again.
    pub fn handle_stream(&mut self, now: Time, from: SocketAddr, datagram: StreamDatagram<'_>) {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += datagram.header.as_bytes().len() as u64;
        if self.shutting_down {
            return;
        }
        self.ingest(now, from, datagram);
    }

    /// Checks a DESCRIPTOR for a stream not carried here, before anything
    /// is created for it: the cheap admission checks first (a refused
    /// stream costs no signature check), then the signature, within the
    /// relay's budget for checks that fail (forged descriptors for streams
    /// it does not carry). Counts what it refuses.
    fn check_new_stream<'a>(
        &mut self,
        now: Time,
        from: SocketAddr,
        header: StreamHeader<'a>,
    ) -> Option<VerifiedDescriptor<'a>> {
        let (id, bytes) = (header.stream(), header.as_bytes());
        if let Err(r) = self.may_create(&id, Some(Host::of(from.ip()))) {
            self.stats.count_refusal(r);
            return None;
        }
        let parsed = Descriptor::parse(bytes).map_err(Rejection::from);
        if parsed.is_ok() && !self.new_streams.may_check(now, None, false) {
            self.stats.count(Rejection::Throttled);
            return None;
        }
        let valid = parsed.and_then(|d| self.stream_key(id)?.verified_descriptor(bytes, d));
        match valid {
            Ok(v) => Some(v),
            Err(r) => {
                if r == Rejection::Forged {
                    self.new_streams.failed(None);
                }
                self.stats.count(r);
                None
            }
        }
    }

    /// For the IO shell, before it takes the lock under which a worker
    /// claims a stream nobody carries: checks a DESCRIPTOR for a stream
    /// not carried here (see `check_new_stream`), so that the signature
    /// check runs outside the lock and only once. `None`: the datagram was
    /// refused and counted, and creates nothing; otherwise hand what it
    /// returns to [`Relay::handle_stream`] (under the lock), which takes
    /// the DESCRIPTOR as verified. Any other datagram passes unchecked.
    pub fn prove_new_stream<'a>(
        &mut self,
        now: Time,
        from: SocketAddr,
        header: StreamHeader<'a>,
    ) -> Option<StreamDatagram<'a>> {
        let unchecked = StreamDatagram::from(header);
        if header.message_type() != MessageType::Descriptor
            || !self.config.accept_publishers
            || self.stream_index.contains(&header.stream())
            || self.shutting_down
        {
            return Some(unchecked);
        }
        let len = header.as_bytes().len() as u64;
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += len;
        let proven = self.check_new_stream(now, from, header)?;
        self.stats.datagrams_in -= 1;
        self.stats.bytes_in -= len;
        Some(StreamDatagram {
            proven: Some(proven),
            ..unchecked
        })
    }

    pub(super) fn ingest(&mut self, now: Time, from: SocketAddr, datagram: StreamDatagram<'_>) {
        let StreamDatagram { header, proven } = datagram;
        let (id, ty) = (header.stream(), header.message_type());
        let (index, proven) = match self.stream_index.get(&id) {
            Some(i) => (i, proven),
            None if ty == MessageType::Descriptor && self.config.accept_publishers => {
                let Some(proven) = proven.or_else(|| self.check_new_stream(now, from, header))
                else {
                    return;
                };
                match self.create_stream(now, id, Some(Host::of(from.ip()))) {
                    Ok(i) => (i, Some(proven)),
                    Err(r) => {
                        self.stats.count_refusal(r);
                        return;
                    }
                }
            }
            None => {
                self.stats.count(Rejection::WrongStream);
                return;
            }
        };
        let stream = &mut self.streams[index];
        if stream.mirror {
            // The worker that ingests this stream verifies it; datagrams
            // for it do not belong here (the IO shell routes them there).
            self.stats.count(Rejection::WrongStream);
            return;
        }
        let mut trusted = stream.sources.contains(from, now);
        if let Some(up) = &mut stream.upstream
            && up.server() == from
        {
            up.heard(now);
            trusted = true;
        }
        let ingested = match proven {
            Some(d) => stream.window.ingest_verified(now, d),
            None => stream.window.ingest_header(now, header, trusted),
        };
        if matches!(ingested, Ok(Ingested::Descriptor | Ingested::Verified)) {
            stream.last_active = Some(now);
        }
        match ingested {
            Ok(Ingested::Descriptor) => {
                stream.sources.prove(from, now);
                self.fanout.push(index, Item::Descriptor);
                self.export_item(index, Adopt::Descriptor);
            }
            Ok(Ingested::Verified) if ty == MessageType::Manifest => {
                stream.sources.prove(from, now);
            }
            Ok(Ingested::Duplicate) => self.stats.duplicates += 1,
            Ok(_) => {}
            Err(r) => self.stats.count(r),
        }
        self.drain_ready(now, index);
    }

    pub(super) fn drain_ready(&mut self, now: Time, index: usize) {
        while let Some(ready) = self.streams[index].window.poll_ready() {
            let stream = &mut self.streams[index];
            match ready {
                // Taken from an upstream relay: ask it for a lost manifest.
                Ready::AwaitingManifest { block } if stream.upstream.is_some() => {
                    if stream.awaiting.len() >= MAX_AWAITING
                        && let Some((&oldest, _)) = stream.awaiting.iter().next()
                    {
                        stream.awaiting.remove(&oldest);
                    }
                    stream.awaiting.entry(block).or_insert(Awaiting {
                        noticed: now,
                        last_nack: None,
                        nacks: 0,
                    });
                    let due = now + MANIFEST_NACK_AFTER;
                    self.next_manifest_nack =
                        Some(self.next_manifest_nack.map_or(due, |t| t.min(due)));
                }
                Ready::Manifest { block } => {
                    stream.awaiting.remove(&block);
                }
                // A later run (or a jump ahead): what was awaited is gone.
                // Subscribers follow by themselves, as the new run's items
                // reach them; mirrors by the items they adopt.
                Ready::Reset { .. } => {
                    stream.awaiting.clear();
                    continue;
                }
                _ => {}
            }
            if !matches!(ready, Ready::AwaitingManifest { .. }) {
                self.fanout.push(index, Item::Ready(ready));
                self.export_item(index, Adopt::Ready(ready));
            }
        }
    }

    /// The key for stream `id`, sharing the configured memo.
    pub(super) fn stream_key(&self, id: StreamId) -> Result<StreamKey, Rejection> {
        Ok(StreamKey::new(id)?.with_memo(self.config.verify_memo.clone()))
    }

    pub(super) fn add_stream(&mut self, id: StreamId) -> Result<usize, Rejection> {
        if let Some(i) = self.stream_index.get(&id) {
            return Ok(i);
        }
        if self.stream_count() >= self.config.max_streams {
            return Err(Rejection::StreamLimit);
        }
        let key = self.stream_key(id)?;
        let stream = Stream {
            window: Window::new(key, self.config.window),
            upstream: None,
            mirror: false,
            awaiting: Default::default(),
            sources: ProvenSources::default(),
            last_active: None,
            creator: None,
            configured: false,
            vacant: false,
        };
        let i = match self.free_streams.pop() {
            Some(i) => {
                self.streams[i] = stream;
                i
            }
            None => {
                self.streams.push(stream);
                self.streams.len() - 1
            }
        };
        self.stream_index.insert(id, i);
        self.event(RelayEvent::StreamAdded(id));
        Ok(i)
    }

    /// Makes the relay hand every item it verifies to [`Relay::poll_export`],
    /// for the other workers of a multi-threaded relay to adopt.
    pub fn set_export(&mut self, on: bool) {
        self.export = on;
    }

    /// The next verified item to hand to the mirrors.
    pub fn poll_export(&mut self) -> Option<Export> {
        self.exports.pop_front()
    }

    fn export_item(&mut self, index: usize, item: Adopt) {
        let stream = &self.streams[index];
        if !self.export || stream.mirror {
            return;
        }
        let buf = match item {
            Adopt::Descriptor => stream.window.descriptor_buf(),
            Adopt::Ready(r) => stream.window.ready_buf(r),
        };
        if let Some(buf) = buf {
            self.exports.push_back(Export {
                stream: stream.window.stream(),
                item,
                buf: SharedBuf::clone(buf),
            });
        }
    }

    /// Takes an item verified by the worker that ingests `stream` (see
    /// [`Window::adopt`]) and fans it out to this relay's subscribers.
    pub fn handle_adopt(&mut self, now: Time, export: Export) {
        let index = match self.add_stream(export.stream) {
            Ok(i) => i,
            Err(r) => {
                self.stats.count(r);
                return;
            }
        };
        let stream = &mut self.streams[index];
        stream.mirror = true;
        let descriptor = export.item == Adopt::Descriptor;
        match stream.window.adopt(now, export.item, export.buf) {
            Ok(()) if descriptor => self.fanout.push(index, Item::Descriptor),
            Ok(()) => {}
            Err(r) => self.stats.count(r),
        }
        self.drain_ready(now, index);
    }
}
