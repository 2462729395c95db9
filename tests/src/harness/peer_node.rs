//! An ordinary peer as a simulator node.

use std::net::SocketAddr;
use std::time::Duration;

use shoal_proto::Time;
use shoal_proto::peer::{LinkUp, Peer, PeerConfig};
use shoal_proto::transmit::SharedBuf;
use shoal_proto::viewer::ViewerEvent;

use crate::netsim::{Node, Outgoing};

/// Width of a latency histogram bucket.
pub const LATENCY_BUCKET: Duration = Duration::from_millis(10);
/// Buckets; the last one holds everything later.
pub const LATENCY_BUCKETS: usize = 1000;

/// A peer that counts what it plays (and keeps it, if asked).
#[derive(Debug)]
pub struct PeerNode {
    /// The state machine.
    pub peer: Peer,
    /// When it joined.
    pub joined: Time,
    /// Chunks played, by latency bucket.
    pub latency: Box<[u32; LATENCY_BUCKETS]>,
    /// Every byte output, if kept.
    pub output: Option<Vec<u8>>,
    /// Gaps signalled.
    pub gaps: u64,
    /// Saw the end of the stream.
    pub ended: bool,
    /// Every download link that formed, and when.
    pub links: Vec<(Time, LinkUp)>,
}

impl PeerNode {
    /// A peer with `config`, joining at `now`; `keep_output` keeps the
    /// bytes it plays.
    pub fn new(config: PeerConfig, now: Time, keep_output: bool) -> Self {
        Self {
            peer: Peer::new(config, now).expect("valid stream id"),
            joined: now,
            latency: Box::new([0; LATENCY_BUCKETS]),
            output: keep_output.then(Vec::new),
            gaps: 0,
            ended: false,
            links: Vec::new(),
        }
    }

    fn drain(&mut self, now: Time) {
        while let Some(link) = self.peer.poll_link() {
            self.links.push((now, link));
        }
        while let Some(e) = self.peer.poll_event() {
            match e {
                ViewerEvent::Chunk {
                    payload, latency, ..
                } => {
                    let b = (latency.as_micros() / LATENCY_BUCKET.as_micros()) as usize;
                    self.latency[b.min(LATENCY_BUCKETS - 1)] += 1;
                    if let Some(out) = &mut self.output {
                        out.extend_from_slice(&payload);
                    }
                }
                ViewerEvent::Gap { .. } => self.gaps += 1,
                ViewerEvent::EndOfStream => self.ended = true,
                ViewerEvent::Subscribed { .. }
                | ViewerEvent::Rejected(_)
                | ViewerEvent::RelayChanged { .. }
                | ViewerEvent::NewRun { .. } => {}
            }
        }
    }
}

impl Node for PeerNode {
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.peer.handle_datagram(now, from, bytes);
        self.drain(now);
    }

    fn handle_shared(&mut self, now: Time, from: SocketAddr, bytes: &SharedBuf) {
        self.peer.handle_datagram_shared(now, from, bytes);
        self.drain(now);
    }

    fn handle_timeout(&mut self, now: Time) {
        self.peer.handle_timeout(now);
        self.drain(now);
    }

    fn poll_transmit(&mut self, _now: Time) -> Option<Outgoing> {
        self.peer.poll_transmit_shared().map(Outgoing::from)
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.peer.poll_timeout()
    }
}
