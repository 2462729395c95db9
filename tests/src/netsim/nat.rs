//! NAT in front of a node: how its outgoing datagrams are translated and
//! which incoming ones are let through.
//!
//! The network keeps one [`NatState`] per node (in its slot, so an open node
//! pays one enum check per datagram) and one [`Nats`] for what spans nodes:
//! the configured kind per address and every mapped address handed out.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

/// The NAT a node sits behind. See the [module docs](super#nat) for the
/// exact rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Nat {
    /// No NAT: the node is reachable at its address by anyone.
    #[default]
    Open,
    /// Port-restricted cone: the node keeps its address toward every
    /// destination, and takes datagrams only from sources it has sent to.
    Cone,
    /// Symmetric: the node appears at a fresh port toward each destination,
    /// and each such port takes datagrams only from that destination.
    Symmetric,
}

/// The first port a symmetric NAT hands out, per node.
const FIRST_MAPPED_PORT: u32 = 40_000;

/// One node's NAT and what it has learnt.
#[derive(Debug, Default)]
pub(super) enum NatState {
    #[default]
    Open,
    /// The sources the node has sent to: its holes, which never expire.
    Cone(HashSet<SocketAddr>),
    Symmetric(Box<Mappings>),
}

/// A symmetric NAT's mappings, both ways. Lookups only.
#[derive(Debug)]
pub(super) struct Mappings {
    /// Destination to the mapped address the node appears as there.
    outbound: HashMap<SocketAddr, SocketAddr>,
    /// Mapped address to the only source it takes datagrams from.
    inbound: HashMap<SocketAddr, SocketAddr>,
    /// The next port to try for a new mapping (wider than a port so that
    /// running out is a test, not an overflow).
    next_port: u32,
}

impl NatState {
    pub(super) fn new(nat: Nat) -> Self {
        match nat {
            Nat::Open => Self::Open,
            Nat::Cone => Self::Cone(HashSet::new()),
            Nat::Symmetric => Self::Symmetric(Box::new(Mappings {
                outbound: HashMap::new(),
                inbound: HashMap::new(),
                next_port: FIRST_MAPPED_PORT,
            })),
        }
    }

    pub(super) fn is_open(&self) -> bool {
        matches!(self, Self::Open)
    }

    /// Whether a datagram from `from` to `to` passes: `to` is the node's
    /// bound address, or, if `mapped`, one of its mappings.
    pub(super) fn admits(&self, from: SocketAddr, to: SocketAddr, mapped: bool) -> bool {
        match self {
            Self::Open => !mapped,
            Self::Cone(holes) => !mapped && holes.contains(&from),
            Self::Symmetric(mappings) => mapped && mappings.inbound.get(&to) == Some(&from),
        }
    }

    /// The mapping a symmetric NAT made toward `to`, if any.
    pub(super) fn mapping(&self, to: SocketAddr) -> Option<SocketAddr> {
        match self {
            Self::Symmetric(mappings) => mappings.outbound.get(&to).copied(),
            Self::Open | Self::Cone(_) => None,
        }
    }
}

/// NAT state that spans nodes.
#[derive(Debug, Default)]
pub(super) struct Nats {
    /// The NAT configured per address; absent is [`Nat::Open`]. Lookups only.
    configured: HashMap<SocketAddr, Nat>,
    /// Every mapped address ever handed out, to the node (index) it leads to
    /// and that node's bound address. Never released, so a mapped address
    /// means one thing for the whole run. Lookups only.
    mapped: HashMap<SocketAddr, (usize, SocketAddr)>,
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
        self.mapped.get(&mapped).map(|&(index, _)| index)
    }

    pub(super) fn is_mapped(&self, addr: SocketAddr) -> bool {
        self.mapped.contains_key(&addr)
    }

    /// The bound address behind `addr` if it is a mapping, else `addr`: what
    /// link rules are looked up by.
    pub(super) fn real(&self, addr: SocketAddr) -> SocketAddr {
        self.mapped.get(&addr).map_or(addr, |&(_, real)| real)
    }

    /// Translates the source of a datagram from the node `index`, bound to
    /// `bound` behind `state`, to `to`: opens a hole or finds (or makes) a
    /// mapping. `is_bound` tells which addresses a new mapping must avoid.
    pub(super) fn outbound(
        &mut self,
        state: &mut NatState,
        index: usize,
        bound: SocketAddr,
        to: SocketAddr,
        is_bound: impl Fn(SocketAddr) -> bool,
    ) -> SocketAddr {
        match state {
            NatState::Open => bound,
            NatState::Cone(holes) => {
                holes.insert(to);
                bound
            }
            NatState::Symmetric(mappings) => {
                if let Some(&mapped) = mappings.outbound.get(&to) {
                    return mapped;
                }
                let mapped = loop {
                    let Ok(port) = u16::try_from(mappings.next_port) else {
                        panic!("netsim: the symmetric NAT of {bound} ran out of ports");
                    };
                    mappings.next_port += 1;
                    let candidate = SocketAddr::new(bound.ip(), port);
                    if !is_bound(candidate) && !self.mapped.contains_key(&candidate) {
                        break candidate;
                    }
                };
                mappings.outbound.insert(to, mapped);
                mappings.inbound.insert(mapped, to);
                self.mapped.insert(mapped, (index, bound));
                mapped
            }
        }
    }
}
