//! The event queue: events in (time, order) order.
//!
//! The order breaks ties. The network gives each event the number of the
//! node that caused it and that node's count of events caused so far
//! (see `shard::order`), so events at one instant run in an order that does
//! not depend on which thread scheduled them first.
//!
//! Entries are small and fixed-size (32 bytes): a timeout whole, a datagram
//! as an index into a slab of deliveries whose slots are reused.
//!
//! # A calendar of 1 ms buckets
//!
//! One binary heap over every pending event cost a sift through about 17
//! levels per pop at 10,000 peers, most of them cache misses (BENCHMARKS.md,
//! "Issue 20, fourth session"). Almost every event is scheduled some
//! milliseconds ahead (a link's latency, a node's next tick), so the queue
//! is a calendar instead: bucket `b` holds the events with
//! `at / BUCKET_US == b`. The *current* bucket is sorted once when the
//! clock reaches it and popped from its end; an event scheduled into the
//! current bucket (or before it, which a node's timeout at `now` can be
//! once the calendar has moved ahead to the next non-empty bucket) goes to
//! a small heap, `late`, and each pop takes the smaller of the two heads.
//! The next `RING - 1` buckets live in a ring of vectors; events further
//! ahead wait in a heap, `far`, and move into the ring as it turns.
//! Everything before the current bucket has been popped, and every event
//! of a later bucket is later than every event of the current one, so the
//! order is exactly the (time, order) order a single heap gives: the
//! same run, event for event (`tests::pops_as_one_heap_would`).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::net::SocketAddr;

use shoal_proto::Time;
use shoal_proto::transmit::SharedBuf;

use super::shard::LinkRef;

/// Something due at a point in simulated time.
#[derive(Debug)]
pub(super) enum EventKind {
    /// A datagram reaches `to`.
    Deliver {
        from: SocketAddr,
        to: SocketAddr,
        bytes: SharedBuf,
        /// The link it came over, where its sender's shard keeps it; `None`
        /// for injected datagrams, which bypass links.
        link: Option<LinkRef>,
    },
    /// A node's timeout (`node` is its place in its shard); `wanted` is the
    /// time the node asked for, which the network compares with the node's
    /// current wish to skip stale events.
    Timeout { node: usize, wanted: Time },
}

#[derive(Debug)]
pub(super) struct Event {
    pub(super) at: Time,
    /// Its place among events at the same instant (see the module docs).
    pub(super) order: u64,
    pub(super) kind: EventKind,
}

/// What a heap entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// A delivery, at this index of the slab.
    Deliver(u32),
    Timeout {
        node: u32,
        wanted: Time,
    },
}

/// A heap entry: ordered by (time, order) alone.
#[derive(Debug, Clone, Copy)]
struct Key {
    at: Time,
    order: u64,
    entry: Entry,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// Width of a calendar bucket, in microseconds of simulated time.
const BUCKET_US: u64 = 1_000;

/// Buckets in the ring, the current one included: about a second ahead.
const RING: u64 = 1_024;

#[derive(Debug)]
pub(super) struct EventQueue {
    /// The bucket the calendar is at.
    at_bucket: u64,
    /// The current bucket's events as they were when the calendar reached
    /// it, sorted latest first: the next is at the end.
    current: Vec<Key>,
    /// Events scheduled into the current bucket (or before it) after it
    /// was sorted.
    late: BinaryHeap<Reverse<Key>>,
    /// Bucket `b` for `at_bucket < b < at_bucket + RING` is at
    /// `ring[b % RING]`; vectors keep their capacity between turns.
    ring: Vec<Vec<Key>>,
    /// Events in `ring`.
    in_ring: usize,
    /// Events of buckets from `at_bucket + RING` on.
    far: BinaryHeap<Reverse<Key>>,
    /// Deliveries in flight; `None` in free slots.
    slab: Vec<Option<EventKind>>,
    /// Free slots of `slab`.
    free: Vec<u32>,
}

impl Default for EventQueue {
    fn default() -> Self {
        Self {
            at_bucket: 0,
            current: Vec::new(),
            late: BinaryHeap::new(),
            ring: (0..RING).map(|_| Vec::new()).collect(),
            in_ring: 0,
            far: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
        }
    }
}

fn bucket_of(at: Time) -> u64 {
    at.as_micros() / BUCKET_US
}

impl EventQueue {
    /// Queues `kind` at `at`; among events at one instant, lower `order`
    /// first (no two events may share one).
    pub(super) fn push(&mut self, at: Time, order: u64, kind: EventKind) {
        let entry = match kind {
            EventKind::Timeout { node, wanted } => Entry::Timeout {
                node: u32::try_from(node).expect("netsim: fewer than 2^32 nodes"),
                wanted,
            },
            deliver @ EventKind::Deliver { .. } => Entry::Deliver(self.store(deliver)),
        };
        let key = Key { at, order, entry };
        if self.len() == 0 {
            // Nothing pending: the calendar starts over at this event.
            self.at_bucket = bucket_of(at);
        }
        self.file(key);
    }

    /// Puts `key` where its bucket says.
    fn file(&mut self, key: Key) {
        let bucket = bucket_of(key.at);
        if bucket <= self.at_bucket {
            self.late.push(Reverse(key));
        } else if bucket < self.at_bucket + RING {
            self.ring[(bucket % RING) as usize].push(key);
            self.in_ring += 1;
        } else {
            self.far.push(Reverse(key));
        }
    }

    /// The earliest event, if it is due by `deadline`.
    pub(super) fn pop_due(&mut self, deadline: Time) -> Option<Event> {
        if self.next_time()? > deadline {
            return None;
        }
        let from_late = match (self.current.last(), self.late.peek()) {
            (Some(sorted), Some(Reverse(late))) => late < sorted,
            (None, _) => true,
            (Some(_), None) => false,
        };
        let key = if from_late {
            self.late.pop().map(|Reverse(key)| key)
        } else {
            self.current.pop()
        }
        .expect("netsim: the current bucket has the next event");
        if self.current.is_empty() && self.late.is_empty() {
            self.turn();
        }
        let kind = match key.entry {
            Entry::Timeout { node, wanted } => EventKind::Timeout {
                node: node as usize,
                wanted,
            },
            Entry::Deliver(index) => {
                self.free.push(index);
                self.slab[index as usize]
                    .take()
                    .expect("netsim: a queued delivery is in the slab")
            }
        };
        Some(Event {
            at: key.at,
            order: key.order,
            kind,
        })
    }

    /// Moves the calendar to the next bucket that holds an event, if any,
    /// once the current one is empty: so the next event is always in
    /// `current` or `late`.
    fn turn(&mut self) {
        let next = if self.in_ring > 0 {
            (self.at_bucket + 1..self.at_bucket + RING)
                .find(|b| !self.ring[(b % RING) as usize].is_empty())
                .expect("netsim: the ring holds its count of events")
        } else if let Some(Reverse(key)) = self.far.peek() {
            bucket_of(key.at)
        } else {
            return;
        };
        self.at_bucket = next;
        // The emptied vector goes back to the ring, keeping its capacity.
        let slot = &mut self.ring[(next % RING) as usize];
        std::mem::swap(&mut self.current, slot);
        self.in_ring -= self.current.len();
        self.current.sort_unstable_by(|a, b| b.cmp(a));
        while let Some(Reverse(key)) = self.far.peek() {
            if bucket_of(key.at) >= next + RING {
                break;
            }
            let Some(Reverse(key)) = self.far.pop() else {
                break;
            };
            self.file(key);
        }
    }

    pub(super) fn next_time(&self) -> Option<Time> {
        match (self.current.last(), self.late.peek()) {
            (Some(sorted), Some(Reverse(late))) => Some(sorted.min(late).at),
            (Some(key), None) | (None, Some(Reverse(key))) => Some(key.at),
            (None, None) => None,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.current.len() + self.late.len() + self.in_ring + self.far.len()
    }

    fn store(&mut self, kind: EventKind) -> u32 {
        match self.free.pop() {
            Some(index) => {
                self.slab[index as usize] = Some(kind);
                index
            }
            None => {
                let index = u32::try_from(self.slab.len())
                    .expect("netsim: fewer than 2^32 datagrams in flight");
                self.slab.push(Some(kind));
                index
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout(node: usize) -> EventKind {
        EventKind::Timeout {
            node,
            wanted: Time::ZERO,
        }
    }

    fn node_of(event: Event) -> usize {
        match event.kind {
            EventKind::Timeout { node, .. } => node,
            EventKind::Deliver { .. } => panic!("not a timeout"),
        }
    }

    #[test]
    fn pops_in_time_order_then_by_order() {
        let mut queue = EventQueue::default();
        let t = |us| Time::from_micros(us);
        queue.push(t(20), 0, timeout(0));
        queue.push(t(10), 1, timeout(1));
        queue.push(t(20), 2, timeout(2));
        queue.push(t(10), 3, timeout(3));
        assert_eq!(queue.next_time(), Some(t(10)));
        let order: Vec<usize> = std::iter::from_fn(|| queue.pop_due(t(15)))
            .map(node_of)
            .collect();
        assert_eq!(order, [1, 3]);
        assert_eq!(queue.len(), 2);
        let order: Vec<usize> = std::iter::from_fn(|| queue.pop_due(t(20)))
            .map(node_of)
            .collect();
        assert_eq!(order, [0, 2]);
        assert_eq!(queue.next_time(), None);
    }

    #[test]
    fn deliveries_keep_their_payloads_through_reused_slots() {
        let mut queue = EventQueue::default();
        let t = |us| Time::from_micros(us);
        let addr = SocketAddr::from(([192, 0, 2, 1], 9));
        let deliver = |b: u8| EventKind::Deliver {
            from: addr,
            to: addr,
            bytes: std::sync::Arc::new(vec![b; usize::from(b)]),
            link: Some(LinkRef::new(0, 0)),
        };
        let bytes_of = |event: Event| match event.kind {
            EventKind::Deliver { bytes, .. } => bytes.to_vec(),
            EventKind::Timeout { .. } => panic!("not a delivery"),
        };
        queue.push(t(30), 0, deliver(3));
        queue.push(t(10), 1, deliver(1));
        queue.push(t(20), 2, timeout(7));
        assert_eq!(queue.pop_due(t(10)).map(bytes_of), Some(vec![1]));
        // Slot 1 is reused by a later delivery that runs before slot 0's.
        queue.push(t(25), 3, deliver(2));
        assert_eq!(queue.slab.len(), 2);
        assert_eq!(queue.pop_due(t(40)).map(node_of), Some(7));
        assert_eq!(queue.pop_due(t(40)).map(bytes_of), Some(vec![2, 2]));
        assert_eq!(queue.pop_due(t(40)).map(bytes_of), Some(vec![3, 3, 3]));
        assert!(queue.pop_due(t(40)).is_none());
        assert_eq!(queue.len(), 0);
    }

    /// Random pushes (same instant, this bucket, the ring, far ahead) and
    /// pops with random deadlines come out exactly as from one heap.
    #[test]
    fn pops_as_one_heap_would() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut queue = EventQueue::default();
        let mut reference = BinaryHeap::new();
        let mut now = 1_000_000u64;
        let mut popped = 0;
        for step in 0..200_000u32 {
            if rng.random_bool(0.55) {
                let ahead = match rng.random_range(0..10) {
                    0 => 0,
                    1 => rng.random_range(0..BUCKET_US),
                    2 => rng.random_range(0..5 * RING * BUCKET_US),
                    _ => rng.random_range(0..200 * BUCKET_US),
                };
                let at = Time::from_micros(now + ahead);
                queue.push(at, u64::from(step), timeout(step as usize));
                reference.push(Reverse((at, step)));
            } else {
                let deadline = now + rng.random_range(0..3 * BUCKET_US);
                loop {
                    let want = reference
                        .peek()
                        .filter(|Reverse((at, _))| at.as_micros() <= deadline)
                        .map(|Reverse((at, node))| (*at, *node as usize));
                    let got = queue
                        .pop_due(Time::from_micros(deadline))
                        .map(|event| (event.at, node_of(event)));
                    assert_eq!(got, want, "step {step}");
                    if want.is_none() {
                        break;
                    }
                    reference.pop();
                    popped += 1;
                }
                // Like the network's clock: it moves to the deadline.
                now = deadline;
            }
            assert_eq!(queue.len(), reference.len());
            assert_eq!(
                queue.next_time(),
                reference.peek().map(|Reverse((at, _))| *at)
            );
        }
        assert!(popped > 50_000, "the test popped {popped} events");
    }
}
