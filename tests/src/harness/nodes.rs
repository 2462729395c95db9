//! The real proto state machines as simulator nodes.

use std::net::SocketAddr;
use std::time::Duration;

use shoal_proto::Time;
use shoal_proto::integrity::PublisherKey;
use shoal_proto::publisher::{Publisher, PublisherConfig};
use shoal_proto::relay::{Relay, RelayConfig};
use shoal_proto::transmit::SharedBuf;
use shoal_proto::viewer::{Viewer, ViewerConfig, ViewerEvent};
use shoal_proto::wire::peek_type;

use super::source::TestStream;
use crate::netsim::{Node, Outgoing};

/// A publisher fed a [`TestStream`] frame by frame in real (virtual) time.
#[derive(Debug)]
pub struct PublisherNode {
    /// The state machine.
    pub publisher: Publisher,
    stream: TestStream,
    start: Time,
    next_frame: usize,
}

impl PublisherNode {
    /// Publishes `stream` to `relays`, starting at `start`.
    pub fn new(
        key: PublisherKey,
        config: PublisherConfig,
        relays: Vec<SocketAddr>,
        stream: TestStream,
        start: Time,
    ) -> Self {
        let publisher = Publisher::new(key, config, relays, start).expect("valid publisher config");
        Self {
            publisher,
            stream,
            start,
            next_frame: 0,
        }
    }

    fn frame_time(&self, i: usize) -> Time {
        self.start + self.stream.frame_interval * i as u32
    }
}

impl Node for PublisherNode {
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.publisher.handle_datagram(now, from, bytes);
    }

    fn handle_timeout(&mut self, now: Time) {
        while self.next_frame < self.stream.frames.len() && self.frame_time(self.next_frame) <= now
        {
            let frame = self.stream.frame(self.next_frame).to_vec();
            self.publisher.handle_input(now, &frame);
            self.next_frame += 1;
        }
        if self.next_frame == self.stream.frames.len() && !self.publisher.is_finished() {
            self.publisher.finish(now);
        }
        self.publisher.handle_timeout(now);
    }

    fn poll_transmit(&mut self, _now: Time) -> Option<Outgoing> {
        self.publisher.poll_transmit().map(Outgoing::from)
    }

    fn poll_timeout(&self) -> Option<Time> {
        let next =
            (self.next_frame < self.stream.frames.len()).then(|| self.frame_time(self.next_frame));
        let finish = (self.next_frame == self.stream.frames.len() && !self.publisher.is_finished())
            .then_some(self.start);
        [next, finish, self.publisher.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}

/// A relay.
#[derive(Debug)]
pub struct RelayNode {
    /// The state machine.
    pub relay: Relay,
    /// Bytes sent, by message type (the wire's type byte).
    pub sent_by_type: [u64; 32],
}

impl RelayNode {
    /// A relay with `config`.
    pub fn new(config: RelayConfig) -> Self {
        Self {
            relay: Relay::new(config),
            sent_by_type: [0; 32],
        }
    }
}

impl Node for RelayNode {
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.relay.handle_datagram(now, from, bytes);
        while self.relay.poll_event().is_some() {}
    }

    fn handle_timeout(&mut self, now: Time) {
        self.relay.handle_timeout(now);
        while self.relay.poll_event().is_some() {}
    }

    fn poll_transmit(&mut self, _now: Time) -> Option<Outgoing> {
        let t = self.relay.poll_transmit()?;
        if let Ok(ty) = peek_type(t.payload) {
            self.sent_by_type[usize::from(ty as u8) & 31] += t.payload.len() as u64;
        }
        Some(Outgoing::from(t))
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.relay.poll_timeout()
    }
}

/// A viewer that records what it plays.
#[derive(Debug)]
pub struct ViewerNode {
    /// The state machine.
    pub viewer: Viewer,
    /// Every byte output, in order.
    pub output: Vec<u8>,
    /// Sequence number of the first chunk output.
    pub first_seq: Option<u64>,
    /// When the first chunk was output.
    pub first_output_at: Option<Time>,
    /// Gaps signalled.
    pub gaps: Vec<(u64, u64)>,
    /// Latency of every chunk output.
    pub latencies: Vec<Duration>,
    /// Saw the end of the stream.
    pub ended: bool,
}

impl ViewerNode {
    /// A viewer with `config`, starting its handshake at `now`.
    pub fn new(config: ViewerConfig, now: Time) -> Self {
        Self {
            viewer: Viewer::new(config, now).expect("valid stream id"),
            output: Vec::new(),
            first_seq: None,
            first_output_at: None,
            gaps: Vec::new(),
            latencies: Vec::new(),
            ended: false,
        }
    }

    fn drain(&mut self, now: Time) {
        while let Some(e) = self.viewer.poll_event() {
            match e {
                ViewerEvent::Chunk {
                    seq,
                    payload,
                    latency,
                    ..
                } => {
                    self.first_seq.get_or_insert(seq);
                    self.first_output_at.get_or_insert(now);
                    self.output.extend_from_slice(&payload);
                    self.latencies.push(latency);
                }
                ViewerEvent::Gap { from, to } => self.gaps.push((from, to)),
                ViewerEvent::EndOfStream => self.ended = true,
                ViewerEvent::Subscribed { .. }
                | ViewerEvent::Rejected(_)
                | ViewerEvent::RelayChanged { .. }
                | ViewerEvent::NewRun { .. } => {}
            }
        }
    }
}

impl Node for ViewerNode {
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.viewer.handle_datagram(now, from, bytes);
        self.drain(now);
    }

    fn handle_shared(&mut self, now: Time, from: SocketAddr, bytes: &SharedBuf) {
        self.viewer.handle_datagram_shared(now, from, bytes);
        self.drain(now);
    }

    fn handle_timeout(&mut self, now: Time) {
        self.viewer.handle_timeout(now);
        self.drain(now);
    }

    fn poll_transmit(&mut self, _now: Time) -> Option<Outgoing> {
        self.viewer.poll_transmit().map(Outgoing::from)
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.viewer.poll_timeout()
    }
}
