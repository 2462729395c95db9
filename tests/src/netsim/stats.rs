//! Counters the network keeps: per node, per directed link, per destination
//! address, and overall.

use super::link::DropCause;

/// What one node sent and received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams the node handed to the network.
    pub sent_datagrams: u64,
    /// Bytes in those datagrams.
    pub sent_bytes: u64,
    /// Datagrams delivered to the node.
    pub received_datagrams: u64,
    /// Bytes in those datagrams.
    pub received_bytes: u64,
    /// Times `handle_timeout` was called.
    pub timeouts: u64,
    /// Datagrams for the node that its NAT dropped.
    pub nat_filtered: u64,
    /// Datagrams the node sent that its full uplink dropped.
    pub uplink_dropped: u64,
}

/// What happened on one directed link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams that entered the link (before any tap).
    pub sent_datagrams: u64,
    /// Bytes in those datagrams.
    pub sent_bytes: u64,
    /// Datagrams that came out at the far end, duplicates included, whether
    /// or not a node was there to take them.
    pub arrived_datagrams: u64,
    /// Bytes in those datagrams.
    pub arrived_bytes: u64,
    /// Datagrams lost to independent random loss.
    pub dropped_random: u64,
    /// Datagrams lost to Gilbert-Elliott burst loss.
    pub dropped_burst: u64,
    /// Datagrams dropped because the rate limiter's queue was full.
    pub dropped_queue: u64,
    /// Datagrams a tap dropped.
    pub dropped_tap: u64,
    /// Datagrams whose IP TTL ran out on the way.
    pub dropped_ttl: u64,
    /// Datagrams the sender's full uplink dropped before they entered the
    /// link proper (counted here so that a link's drops and arrivals add
    /// up to what it was sent).
    pub dropped_uplink: u64,
    /// Extra copies the link made.
    pub duplicated: u64,
}

impl LinkStats {
    /// Datagrams dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_random
            + self.dropped_burst
            + self.dropped_queue
            + self.dropped_tap
            + self.dropped_ttl
            + self.dropped_uplink
    }

    pub(super) fn count_drop(&mut self, cause: DropCause) {
        let counter = match cause {
            DropCause::Random => &mut self.dropped_random,
            DropCause::Burst => &mut self.dropped_burst,
            DropCause::Queue => &mut self.dropped_queue,
            DropCause::Tap => &mut self.dropped_tap,
            DropCause::TtlExpired => &mut self.dropped_ttl,
            DropCause::Uplink => &mut self.dropped_uplink,
        };
        *counter += 1;
    }
}

/// Traffic toward one destination address, from any source, including
/// injected datagrams.
///
/// `sent_*` counts at the moment of sending, before the link; so it is what
/// senders aimed at the address (the measure for amplification), whatever
/// the link then lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddrStats {
    /// Datagrams sent toward the address.
    pub sent_datagrams: u64,
    /// Bytes in those datagrams.
    pub sent_bytes: u64,
    /// Datagrams handed to a node bound to the address.
    pub delivered_datagrams: u64,
    /// Bytes in those datagrams.
    pub delivered_bytes: u64,
    /// Datagrams that arrived while no node was bound to the address.
    pub undeliverable_datagrams: u64,
    /// Bytes in those datagrams.
    pub undeliverable_bytes: u64,
    /// Datagrams that arrived but the NAT of the node behind the address
    /// dropped.
    pub nat_filtered_datagrams: u64,
    /// Bytes in those datagrams.
    pub nat_filtered_bytes: u64,
}

impl AddrStats {
    pub(super) fn add(&mut self, other: &Self) {
        self.sent_datagrams += other.sent_datagrams;
        self.sent_bytes += other.sent_bytes;
        self.delivered_datagrams += other.delivered_datagrams;
        self.delivered_bytes += other.delivered_bytes;
        self.undeliverable_datagrams += other.undeliverable_datagrams;
        self.undeliverable_bytes += other.undeliverable_bytes;
        self.nat_filtered_datagrams += other.nat_filtered_datagrams;
        self.nat_filtered_bytes += other.nat_filtered_bytes;
    }
}

/// Network-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Events processed: deliveries, undeliverable or NAT-filtered arrivals
    /// and timeouts fired (stale timeouts not included).
    pub events: u64,
    /// Datagrams handed to a node.
    pub delivered: u64,
    /// Datagrams that arrived where no node was bound.
    pub undeliverable: u64,
    /// Datagrams that arrived but a node's NAT dropped.
    pub nat_filtered: u64,
    /// Datagrams dropped on links, for any reason (a TTL that ran out
    /// included).
    pub dropped: u64,
    /// Timeouts fired.
    pub timeouts: u64,
    /// Timeout events skipped because the node had since moved its timeout.
    pub stale_timeouts: u64,
}

impl NetStats {
    pub(super) fn add(&mut self, other: &Self) {
        self.events += other.events;
        self.delivered += other.delivered;
        self.undeliverable += other.undeliverable;
        self.nat_filtered += other.nat_filtered;
        self.dropped += other.dropped;
        self.timeouts += other.timeouts;
        self.stale_timeouts += other.stale_timeouts;
    }
}
