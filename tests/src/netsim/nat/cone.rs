//! The connection table of a cone NAT, as Linux `masquerade` keeps it.
//!
//! The node sits at one inside socket, so a flow is named by its remote
//! address alone; what the NAT chooses is the flow's external port. An
//! inbound datagram that matches no flow is dropped but leaves an
//! *inbound-first entry* (remote, external port), and while that entry
//! lives the tuple is taken: a new flow to that remote cannot leave from
//! that port. The order in which a new flow's port is chosen, and why, is in
//! the [network docs](super::super#nat); the lab measurements behind it are
//! in `tests/natlab/README.md`.
//!
//! Entries expire lazily: each lookup compares the entry's last datagram
//! with `now`, so nothing runs on a timer.

use std::collections::BTreeMap;

use crate::netsim::Lookup;
use std::net::SocketAddr;
use std::time::Duration;

use shoal_proto::Time;

/// How long an entry that has seen traffic one way only lives after its
/// last datagram: outbound flows never answered and inbound-first entries
/// (Linux's `nf_conntrack_udp_timeout`).
pub(super) const UNREPLIED_LIFETIME: Duration = Duration::from_secs(30);

/// How long a flow that has seen traffic both ways lives after its last
/// datagram (the order of Linux's UDP stream timeout, 120 s or 180 s
/// depending on the kernel).
pub(super) const REPLIED_LIFETIME: Duration = Duration::from_secs(180);

/// One node's cone NAT.
#[derive(Debug)]
pub(in crate::netsim) struct Cone {
    /// The flows the node opened, by remote address. Lookups only.
    flows: Lookup<SocketAddr, Flow>,
    /// The same flows by when they were made (a counter), newest last:
    /// where a new flow looks for a port to reuse. Iterated, so ordered.
    by_age: BTreeMap<u64, SocketAddr>,
    /// The counter for `by_age`.
    made: u64,
    /// Inbound-first entries, (remote, external port), to the instant of
    /// their last datagram. Lookups only.
    inbound_first: Lookup<(SocketAddr, u16), Time>,
    /// The next port to try when the NAT keeps neither (wider than a port
    /// so that running out is a test, not an overflow).
    next_port: u32,
}

/// An outbound flow: the node sent to its remote first.
#[derive(Clone, Copy, Debug)]
struct Flow {
    /// The external port the NAT gave it.
    port: u16,
    /// Its key in `by_age`.
    made: u64,
    /// The instant of its last datagram, either way.
    last: Time,
    /// Whether the remote has answered.
    replied: bool,
}

impl Flow {
    fn is_live(&self, now: Time) -> bool {
        let lifetime = if self.replied {
            REPLIED_LIFETIME
        } else {
            UNREPLIED_LIFETIME
        };
        now < self.last + lifetime
    }
}

impl Cone {
    pub(super) fn new(first_port: u32) -> Self {
        Self {
            flows: Lookup::default(),
            by_age: BTreeMap::new(),
            made: 0,
            inbound_first: Lookup::default(),
            next_port: first_port,
        }
    }

    /// The external port for a datagram sent `now` from the node's
    /// `own_port` to `to`: its flow's, or a new flow's, chosen as Linux
    /// does: the newest live flow's port, if the tuple (port, `to`) is free;
    /// else `own_port`, if free; else a port from `hand_out`, which is given
    /// the next port to try.
    pub(super) fn outbound(
        &mut self,
        to: SocketAddr,
        own_port: u16,
        now: Time,
        hand_out: impl FnOnce(&mut u32) -> u16,
    ) -> u16 {
        if let Some(flow) = self.live_flow(to, now) {
            flow.last = now;
            return flow.port;
        }
        let port = self
            .newest_port(now)
            .filter(|&port| self.is_free(to, port, now))
            .or_else(|| self.is_free(to, own_port, now).then_some(own_port))
            .unwrap_or_else(|| hand_out(&mut self.next_port));
        let made = self.made;
        self.made += 1;
        self.by_age.insert(made, to);
        let flow = Flow {
            port,
            made,
            last: now,
            replied: false,
        };
        self.flows.insert(to, flow);
        port
    }

    /// Whether a datagram from `from` to external `port`, arriving `now`,
    /// answers a live flow; if not, it makes or refreshes an inbound-first
    /// entry.
    pub(super) fn admit(&mut self, from: SocketAddr, port: u16, now: Time) -> bool {
        if let Some(flow) = self.live_flow(from, now)
            && flow.port == port
        {
            flow.last = now;
            flow.replied = true;
            return true;
        }
        self.inbound_first.insert((from, port), now);
        false
    }

    /// The external port of the live flow toward `to`, if any.
    pub(super) fn port_toward(&self, to: SocketAddr, now: Time) -> Option<u16> {
        self.flows
            .get(&to)
            .filter(|flow| flow.is_live(now))
            .map(|flow| flow.port)
    }

    #[cfg(test)]
    pub(super) fn has_inbound_entry(&self, from: SocketAddr, port: u16, now: Time) -> bool {
        !self.is_free(from, port, now)
    }

    /// The live flow toward `remote`, forgetting it if it has expired.
    fn live_flow(&mut self, remote: SocketAddr, now: Time) -> Option<&mut Flow> {
        let flow = *self.flows.get(&remote)?;
        if !flow.is_live(now) {
            self.flows.remove(&remote);
            self.by_age.remove(&flow.made);
            return None;
        }
        self.flows.get_mut(&remote)
    }

    /// The port of the newest live flow (Linux's by-source lookup walks
    /// the newest first), forgetting expired flows on the way.
    fn newest_port(&mut self, now: Time) -> Option<u16> {
        while let Some((&made, &remote)) = self.by_age.last_key_value() {
            if let Some(flow) = self.flows.get(&remote)
                && flow.is_live(now)
            {
                return Some(flow.port);
            }
            self.flows.remove(&remote);
            self.by_age.remove(&made);
        }
        None
    }

    /// Whether a new flow to `remote` may leave from `port`: no live
    /// inbound-first entry holds the tuple. (A live flow to `remote` would
    /// hold it too, but a new flow is only made when there is none.)
    fn is_free(&self, remote: SocketAddr, port: u16, now: Time) -> bool {
        self.inbound_first
            .get(&(remote, port))
            .is_none_or(|&last| now >= last + UNREPLIED_LIFETIME)
    }
}
