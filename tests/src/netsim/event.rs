//! The event queue: a min-heap on (time, insertion sequence number).
//!
//! The sequence number breaks ties, so events at the same instant run in the
//! order they were scheduled, on every run.

use std::cmp::Ordering;
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
    seq: u64,
    pub(super) kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Event {}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Debug, Default)]
pub(super) struct EventQueue {
    heap: BinaryHeap<Event>,
    next_seq: u64,
}

impl EventQueue {
    pub(super) fn push(&mut self, at: Time, kind: EventKind) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Event { at, seq, kind });
    }

    /// The earliest event, if it is due by `deadline`.
    pub(super) fn pop_due(&mut self, deadline: Time) -> Option<Event> {
        if self.heap.peek()?.at > deadline {
            return None;
        }
        self.heap.pop()
    }

    pub(super) fn next_time(&self) -> Option<Time> {
        self.heap.peek().map(|event| event.at)
    }

    pub(super) fn len(&self) -> usize {
        self.heap.len()
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
}
