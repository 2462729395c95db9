//! The event queue: a min-heap on (time, insertion sequence number).
//!
//! The sequence number breaks ties, so events at the same instant run in the
//! order they were scheduled, on every run.
//!
//! The heap holds small fixed-size entries (32 bytes): a timeout whole, a
//! datagram as an index into a slab of deliveries whose slots are reused.
//! Sifting then moves a quarter of the bytes it moved when every entry
//! carried its addresses and payload, and the heap's own storage stops
//! growing once the run reaches its steady number of events in flight.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::net::SocketAddr;

use shoal_proto::Time;
use shoal_proto::transmit::SharedBuf;

/// Something due at a point in simulated time.
#[derive(Debug)]
pub(super) enum EventKind {
    /// A datagram reaches `to`.
    Deliver {
        from: SocketAddr,
        to: SocketAddr,
        bytes: SharedBuf,
        /// False for injected datagrams, which bypass links.
        via_link: bool,
    },
    /// A node's timeout; `wanted` is the time the node asked for, which the
    /// network compares with the node's current wish to skip stale events.
    Timeout { node: usize, wanted: Time },
}

#[derive(Debug)]
pub(super) struct Event {
    pub(super) at: Time,
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

/// A heap entry: ordered by (time, sequence number) alone.
#[derive(Debug, Clone, Copy)]
struct Key {
    at: Time,
    seq: u64,
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
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Debug, Default)]
pub(super) struct EventQueue {
    /// `Reverse`: `BinaryHeap` is a max-heap, and the earliest comes first.
    heap: BinaryHeap<Reverse<Key>>,
    /// Deliveries in flight; `None` in free slots.
    slab: Vec<Option<EventKind>>,
    /// Free slots of `slab`.
    free: Vec<u32>,
    next_seq: u64,
}

impl EventQueue {
    pub(super) fn push(&mut self, at: Time, kind: EventKind) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = match kind {
            EventKind::Timeout { node, wanted } => Entry::Timeout {
                node: u32::try_from(node).expect("netsim: fewer than 2^32 nodes"),
                wanted,
            },
            deliver @ EventKind::Deliver { .. } => Entry::Deliver(self.store(deliver)),
        };
        self.heap.push(Reverse(Key { at, seq, entry }));
    }

    /// The earliest event, if it is due by `deadline`.
    pub(super) fn pop_due(&mut self, deadline: Time) -> Option<Event> {
        if self.heap.peek()?.0.at > deadline {
            return None;
        }
        let Reverse(key) = self.heap.pop()?;
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
        Some(Event { at: key.at, kind })
    }

    pub(super) fn next_time(&self) -> Option<Time> {
        self.heap.peek().map(|key| key.0.at)
    }

    pub(super) fn len(&self) -> usize {
        self.heap.len()
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
    fn pops_in_time_order_then_insertion_order() {
        let mut queue = EventQueue::default();
        let t = |us| Time::from_micros(us);
        queue.push(t(20), timeout(0));
        queue.push(t(10), timeout(1));
        queue.push(t(20), timeout(2));
        queue.push(t(10), timeout(3));
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
            via_link: true,
        };
        let bytes_of = |event: Event| match event.kind {
            EventKind::Deliver { bytes, .. } => bytes.to_vec(),
            EventKind::Timeout { .. } => panic!("not a delivery"),
        };
        queue.push(t(30), deliver(3));
        queue.push(t(10), deliver(1));
        queue.push(t(20), timeout(7));
        assert_eq!(queue.pop_due(t(10)).map(bytes_of), Some(vec![1]));
        // Slot 1 is reused by a later delivery that runs before slot 0's.
        queue.push(t(25), deliver(2));
        assert_eq!(queue.slab.len(), 2);
        assert_eq!(queue.pop_due(t(40)).map(node_of), Some(7));
        assert_eq!(queue.pop_due(t(40)).map(bytes_of), Some(vec![2, 2]));
        assert_eq!(queue.pop_due(t(40)).map(bytes_of), Some(vec![3, 3, 3]));
        assert!(queue.pop_due(t(40)).is_none());
        assert_eq!(queue.len(), 0);
    }
}
