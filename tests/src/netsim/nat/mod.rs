//! NAT in front of a node: how its outgoing datagrams are translated and
//! which incoming ones are let through.
//!
//! The network keeps one [`NatState`] per node (in its slot, so an open node
//! pays one enum check per datagram) and one [`Nats`] for what spans nodes:
//! the configured kind per address and every mapped address handed out.
//! The cone NAT's connection table is in [`cone`].

mod cone;

use crate::netsim::Lookup;
use std::net::SocketAddr;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use shoal_proto::Time;

use cone::Cone;

/// The NAT a node sits behind. See the [module docs](super#nat) for the
/// exact rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Nat {
    /// No NAT: the node is reachable at its address by anyone.
    #[default]
    Open,
    /// Linux `masquerade`: port-preserving when it can, taking datagrams
    /// only from exactly the sources the node has sent to, and remapping a
    /// flow whose port an earlier inbound datagram has taken.
    Cone,
    /// Linux `masquerade fully-random`: the node appears at a fresh port
    /// toward each destination, and each such port takes datagrams only
    /// from that destination.
    Symmetric,
}

/// The first port a NAT hands out when it does not keep the node's own,
/// per node.
const FIRST_MAPPED_PORT: u32 = 40_000;

/// One node's NAT and what it has learnt.
#[derive(Debug, Default)]
pub(super) enum NatState {
    #[default]
    Open,
    Cone(Box<Cone>),
    Symmetric(Box<Mappings>),
}

/// A symmetric NAT's mappings, both ways. Lookups only.
#[derive(Debug)]
pub(super) struct Mappings {
    /// Destination to the mapped address the node appears as there.
    outbound: Lookup<SocketAddr, SocketAddr>,
    /// Mapped address to the only source it takes datagrams from.
    inbound: Lookup<SocketAddr, SocketAddr>,
    /// The next port to try for a new mapping (wider than a port so that
    /// running out is a test, not an overflow).
    next_port: u32,
}

impl NatState {
    pub(super) fn new(nat: Nat) -> Self {
        match nat {
            Nat::Open => Self::Open,
            Nat::Cone => Self::Cone(Box::new(Cone::new(FIRST_MAPPED_PORT))),
            Nat::Symmetric => Self::Symmetric(Box::new(Mappings {
                outbound: Lookup::default(),
                inbound: Lookup::default(),
                next_port: FIRST_MAPPED_PORT,
            })),
        }
    }

    pub(super) fn is_open(&self) -> bool {
        matches!(self, Self::Open)
    }

    /// Whether a datagram from `from` to `to` arriving `now` passes: `to`
    /// is the node's bound address, or, if `mapped`, one handed out for it.
    /// A cone NAT remembers what it drops (an inbound-first entry).
    pub(super) fn admit(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        mapped: bool,
        now: Time,
    ) -> bool {
        match self {
            Self::Open => !mapped,
            Self::Cone(cone) => cone.admit(from, to.port(), now),
            Self::Symmetric(mappings) => mapped && mappings.inbound.get(&to) == Some(&from),
        }
    }

    /// The address the node bound to `bound` appears as toward `to`, if its
    /// NAT has a live flow or mapping there.
    pub(super) fn mapping(
        &self,
        bound: SocketAddr,
        to: SocketAddr,
        now: Time,
    ) -> Option<SocketAddr> {
        match self {
            Self::Open => None,
            Self::Cone(cone) => cone
                .port_toward(to, now)
                .map(|port| SocketAddr::new(bound.ip(), port)),
            Self::Symmetric(mappings) => mappings.outbound.get(&to).copied(),
        }
    }

    /// Whether a cone NAT holds a live inbound-first entry from `from` to
    /// its external `port`.
    #[cfg(test)]
    pub(super) fn has_inbound_entry(&self, from: SocketAddr, port: u16, now: Time) -> bool {
        match self {
            Self::Cone(cone) => cone.has_inbound_entry(from, port, now),
            Self::Open | Self::Symmetric(_) => false,
        }
    }
}

/// NAT state that spans nodes.
#[derive(Debug, Default)]
pub(super) struct Nats {
    /// The NAT configured per address; absent is [`Nat::Open`]. Lookups only.
    configured: Lookup<SocketAddr, Nat>,
    /// Every mapped address ever handed out, to the node (index) it leads to
    /// and that node's bound address. Never released, so a mapped address
    /// means one thing for the whole run. Lookups only. Behind a lock
    /// because shards hand out mappings while others look (see
    /// `netsim/shard.rs`); only the shard of a mapping's IP adds it.
    mapped: RwLock<Lookup<SocketAddr, (usize, SocketAddr)>>,
}

impl Nats {
    pub(super) fn set(&mut self, addr: SocketAddr, nat: Nat) {
        self.configured.insert(addr, nat);
    }

    pub(super) fn configured(&self, addr: SocketAddr) -> Nat {
        self.configured.get(&addr).copied().unwrap_or_default()
    }

    /// The node a mapped address leads to.
    pub(super) fn node_behind(&self, mapped: SocketAddr) -> Option<usize> {
        self.registry().get(&mapped).map(|&(index, _)| index)
    }

    pub(super) fn is_mapped(&self, addr: SocketAddr) -> bool {
        self.registry().contains_key(&addr)
    }

    fn registry(&self) -> RwLockReadGuard<'_, Lookup<SocketAddr, (usize, SocketAddr)>> {
        self.mapped.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bound address behind `addr` if it is a mapping, else `addr`: what
    /// link rules are looked up by.
    pub(super) fn real(&self, addr: SocketAddr) -> SocketAddr {
        self.registry().get(&addr).map_or(addr, |&(_, real)| real)
    }

    /// Translates the source of a datagram sent `now` from the node `index`,
    /// bound to `bound` behind `state`, to `to`: finds or makes the flow or
    /// mapping. `is_bound` tells which addresses a new mapping must avoid.
    pub(super) fn outbound(
        &self,
        state: &mut NatState,
        index: usize,
        bound: SocketAddr,
        to: SocketAddr,
        now: Time,
        is_bound: impl Fn(SocketAddr) -> bool,
    ) -> SocketAddr {
        match state {
            NatState::Open => bound,
            NatState::Cone(cone) => {
                let port = cone.outbound(to, bound.port(), now, |next_port| {
                    self.hand_out(next_port, index, bound, &is_bound).port()
                });
                SocketAddr::new(bound.ip(), port)
            }
            NatState::Symmetric(mappings) => {
                if let Some(&mapped) = mappings.outbound.get(&to) {
                    return mapped;
                }
                let mapped = self.hand_out(&mut mappings.next_port, index, bound, &is_bound);
                mappings.outbound.insert(to, mapped);
                mappings.inbound.insert(mapped, to);
                mapped
            }
        }
    }

    /// A fresh address on `bound`'s IP for the node `index`: the first port
    /// from `next_port` up that no node is bound to and no NAT has handed
    /// out, reserved for that node for the rest of the run.
    fn hand_out(
        &self,
        next_port: &mut u32,
        index: usize,
        bound: SocketAddr,
        is_bound: impl Fn(SocketAddr) -> bool,
    ) -> SocketAddr {
        let mut registry = self.mapped.write().unwrap_or_else(PoisonError::into_inner);
        let mapped = loop {
            let Ok(port) = u16::try_from(*next_port) else {
                panic!("netsim: the NAT of {bound} ran out of ports");
            };
            *next_port += 1;
            let candidate = SocketAddr::new(bound.ip(), port);
            if !is_bound(candidate) && !registry.contains_key(&candidate) {
                break candidate;
            }
        };
        registry.insert(mapped, (index, bound));
        mapped
    }
}
