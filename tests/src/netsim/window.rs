//! A window's events, node by node.
//!
//! # Why
//!
//! At 100,000 peers the nodes' state is gigabytes, and in time order each
//! event lands on a different node from the one before: nearly every event
//! began with cache misses on its node's slot and the node's own structures
//! (BENCHMARKS.md, "Issue 20, tenth session"). A peer has about eight
//! events in a window of 45 ms (the swarm's links: 50 ms less 5 of jitter).
//!
//! # Why it is the same run
//!
//! Nothing a node sends in a window arrives within it (the window is no
//! longer than any link's latency less its jitter, which `Shard::post`
//! asserts). So within a window no node's events depend on another's, and
//! the shard may run them grouped: each group's events in their own (time,
//! order) order, one group after another. A node's events are all in one
//! group: a group is an IP, and every address a node receives at is on its
//! IP (its bound address and its NAT's mappings). Nodes that share an IP
//! share a group, so the NAT registry's hand-outs on that IP keep their
//! order too. What spans nodes is per link end, per node, or a sum (the
//! counters, the trace's multiset), so the run is the same event for event
//! as in time order (`tests::windows_node_by_node_give_the_same_trace`).
//! Taps are the exception the [module docs](super#threads) already make:
//! taps on links from different IPs must not share state whose order
//! matters.
//!
//! A timeout a node asks for within the window waits in `Shard::soon`
//! rather than the calendar, and runs before the group's next event that
//! comes after it.

use std::cmp::Reverse;

use shoal_proto::Time;

use super::event::EventKind;
use super::shard::{Shard, Shared, ip_key};

/// A timeout due within the running window, ordered by (time, order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Soon {
    pub(super) at: Time,
    pub(super) order: u64,
    pub(super) node: usize,
    pub(super) wanted: Time,
}

impl Shard {
    /// Runs the events due by `upto`, the end of a window nothing sent in
    /// it reaches, group by group (see the [module docs](self)).
    pub(super) fn run_window(&mut self, shared: &Shared, upto: Time) {
        self.horizon = Some(upto);
        let mut batch = std::mem::take(&mut self.batch);
        let mut groups = std::mem::take(&mut self.groups);
        while let Some(event) = self.events.pop_due(upto) {
            // A group is an IP (two folding together only merge groups,
            // which keeps each in order).
            let group = match &event.kind {
                EventKind::Deliver { to, .. } => ip_key(*to),
                EventKind::Timeout { node, .. } => ip_key(self.nodes[*node].addr),
            };
            let index =
                u32::try_from(batch.len()).expect("netsim: fewer than 2^32 events a window");
            groups.push((group, index));
            batch.push(Some(event));
        }
        // By group, then as popped: in (time, order) order.
        groups.sort_unstable();
        let mut current = None;
        for &(group, index) in &groups {
            if current != Some(group) {
                self.run_soon(shared, None);
                current = Some(group);
            }
            let event = batch[index as usize]
                .take()
                .expect("netsim: each event of a window runs once");
            self.run_soon(shared, Some((event.at, event.order)));
            self.run_event(shared, event);
        }
        self.run_soon(shared, None);
        batch.clear();
        groups.clear();
        self.batch = batch;
        self.groups = groups;
        self.now = self.now.max(upto);
        self.horizon = None;
    }

    /// Fires the window's pending timeouts that come before `before` (all
    /// of them if `None`).
    fn run_soon(&mut self, shared: &Shared, before: Option<(Time, u64)>) {
        while let Some(&Reverse(soon)) = self.soon.peek() {
            if before.is_some_and(|next| (soon.at, soon.order) > next) {
                return;
            }
            self.soon.pop();
            self.now = soon.at;
            self.fire_timeout(shared, soon.node, soon.wanted);
        }
    }
}
