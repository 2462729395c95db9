//! Fan-out: what became ready, sent to every subscriber that wants it.
//!
//! Items that become ready while a pass is running wait for the next pass,
//! so a caller that stops draining half-way never makes a subscriber miss
//! anything. A pass runs subscriber by subscriber, and for each subscriber
//! through every item of the pass: consecutive transmits to one
//! destination can be sent as one GSO train.
//!
//! A pass visits the subscribers that forward what they get (members of a
//! club they take from us: ordinary peers feeding their club's tree) before
//! the rest, each round in slot order. A peer's uplink sends one datagram
//! after another, so whoever comes first in a pass gets the chunk first;
//! a forwarder that comes first passes it on sooner, and every hop below
//! it gains that, where a last-hop viewer's wait ends with it (300 peers
//! x 20 s: p50 540 -> 510 ms, p99 1,040 -> 1,020; 1,000 peers x 20 s,
//! seeds 1-3: p99 20-40 ms lower; BENCHMARKS.md, "Issue 20, thirteenth
//! session"). Peers' upload sides are relays too, and their subscribers
//! declare their clubs to them (MEMBER), so every hop of a club's tree
//! does the same. A pass makes two rounds only if the one before saw a
//! forwarder, so a relay serving viewers alone pays nothing for it.
//!
//! Within a pass, items go out chunks first (by sequence number), then
//! manifests, then parity, then descriptors. A GSO train needs every
//! datagram but the last to be of one length: DATA datagrams are, and a
//! (shorter) manifest can close their train, so a block costs a subscriber
//! two sends ([DATA.., MANIFEST], [PARITY..]) instead of three. A receiver
//! holds the chunks that precede their manifest in the same train for the
//! microseconds until it arrives.

use std::net::SocketAddr;

use super::Relay;
use super::subscribers::Subscriber;
use crate::transmit::SharedBuf;
use crate::window::{Ready, Window};

/// One item to fan out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    /// A verified chunk, manifest or parity symbol.
    Ready(Ready),
    /// The stream's (new) descriptor.
    Descriptor,
}

/// Where an item goes in a pass (see the module docs).
fn order(stream: usize, item: Item) -> (u8, usize, u64, u8) {
    match item {
        Item::Ready(Ready::Data { seq, .. }) => (0, stream, seq, 0),
        Item::Ready(Ready::Manifest { block }) => (1, stream, block, 0),
        Item::Ready(Ready::Parity { block, index }) => (2, stream, block, index),
        Item::Ready(Ready::AwaitingManifest { block }) => (3, stream, block, 0),
        Item::Ready(Ready::Reset { floor_seq, .. }) => (3, stream, floor_seq, 0),
        Item::Descriptor => (4, stream, 0, 0),
    }
}

#[derive(Debug, Default)]
pub(crate) struct Fanout {
    pass: Vec<(usize, Item)>,
    next: Vec<(usize, Item)>,
    sub: usize,
    item: usize,
    round: Round,
    /// A forwarder was seen in this pass: the next one makes two rounds.
    seen_forwarder: bool,
}

/// Which subscribers a pass is visiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Round {
    /// Every subscriber (no forwarder was seen in the pass before).
    #[default]
    All,
    /// Only those that forward.
    Forwarders,
    /// Those that do not, after the forwarders.
    Rest,
}

impl Round {
    /// Whether a subscriber that does (or does not) forward is visited.
    pub(crate) fn visits(self, forwards: bool) -> bool {
        match self {
            Round::All => true,
            Round::Forwarders => forwards,
            Round::Rest => !forwards,
        }
    }
}

impl Fanout {
    pub(crate) fn push(&mut self, stream: usize, item: Item) {
        self.next.push((stream, item));
    }

    /// The next (subscriber index, stream, item) to consider, over
    /// `subscribers` slots, and the round that visits it (see the module
    /// docs); `None` when both passes are done.
    pub(crate) fn next(&mut self, subscribers: usize) -> Option<(usize, usize, Item, Round)> {
        if self.item >= self.pass.len() {
            self.item = 0;
            self.sub += 1;
        }
        if self.sub >= subscribers && self.round == Round::Forwarders && !self.pass.is_empty() {
            self.round = Round::Rest;
            self.sub = 0;
        }
        if self.pass.is_empty() || self.sub >= subscribers {
            self.pass.clear();
            std::mem::swap(&mut self.pass, &mut self.next);
            // Unstable sort does not allocate; the key makes it deterministic.
            self.pass
                .sort_unstable_by_key(|&(stream, item)| order(stream, item));
            self.sub = 0;
            self.item = 0;
            if self.pass.is_empty() || subscribers == 0 {
                self.pass.clear();
                return None;
            }
            // Only a pass that runs forgets what the last one saw.
            self.round = if self.seen_forwarder {
                Round::Forwarders
            } else {
                Round::All
            };
            self.seen_forwarder = false;
        }
        let (stream, item) = *self.pass.get(self.item)?;
        self.item += 1;
        Some((self.sub, stream, item, self.round))
    }

    /// Notes a subscriber that forwards: the next pass serves such first.
    pub(crate) fn saw_forwarder(&mut self) {
        self.seen_forwarder = true;
    }

    /// Skips the rest of the current subscriber's items.
    pub(crate) fn skip_subscriber(&mut self) {
        self.item = self.pass.len();
    }
}

impl Relay {
    /// Whether chunk `seq` belongs to one of the clubs in the mask `clubs`
    /// (club 0 until a descriptor says how many there are).
    pub(super) fn in_clubs(window: &Window, clubs: u64, seq: u64) -> bool {
        let club = window.descriptor().map_or(0, |(d, _)| d.club_of(seq));
        clubs & 1u64.checked_shl(u32::from(club)).unwrap_or(0) != 0
    }

    /// Whether a subscriber wants an item of its stream.
    fn wants(window: &Window, sub: &Subscriber, item: Item, manifests: bool) -> bool {
        match item {
            // The DESCRIPTOR is repeated (each second) with the MANIFESTs:
            // a subscriber that takes those from its relay takes it there
            // too (it had one in its ACCEPT).
            Item::Descriptor => manifests,
            Item::Ready(Ready::Data { seq, .. }) => {
                seq >= sub.start_seq
                    && Self::in_clubs(window, sub.clubs, seq)
                    && !sub.have.is_some_and(|h| h.holds(seq))
                    && window.chunk(seq).is_some()
            }
            Item::Ready(Ready::Manifest { block }) => {
                manifests
                    && window
                        .block_span(block)
                        .is_some_and(|(first, k)| first + u64::from(k) > sub.start_seq)
            }
            Item::Ready(Ready::Parity { block, index }) => {
                sub.clubs == u64::MAX
                    && window.parity(block, index).is_some()
                    && window
                        .block_span(block)
                        .is_some_and(|(first, k)| first + u64::from(k) > sub.start_seq)
            }
            Item::Ready(Ready::AwaitingManifest { .. } | Ready::Reset { .. }) => false,
        }
    }

    pub(super) fn item_buf(window: &Window, item: Item) -> Option<&SharedBuf> {
        match item {
            Item::Descriptor => window.descriptor_buf(),
            Item::Ready(r) => window.ready_buf(r),
        }
    }

    /// The next fan-out item that some subscriber wants.
    pub(super) fn next_fanout(&mut self) -> Option<(SocketAddr, usize, Item)> {
        loop {
            let (si, stream, item, round) = self.fanout.next(self.subs.len())?;
            let Some(sub) = &self.subs[si] else {
                self.fanout.skip_subscriber();
                continue;
            };
            let forwards = sub.forwards();
            if forwards {
                self.fanout.saw_forwarder();
            }
            if !round.visits(forwards) {
                self.fanout.skip_subscriber();
                continue;
            }
            let manifests = self.config.forward_manifests;
            if sub.stream == stream
                && Self::wants(&self.streams[stream].window, sub, item, manifests)
            {
                return Some((sub.addr, stream, item));
            }
        }
    }
}
