//! What the network drives: nodes, and typed handles to them.

use std::any::Any;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::net::SocketAddr;

use shoal_proto::transmit::SharedBuf;
use shoal_proto::{SharedTransmit, Time, Transmit};

/// A participant bound to one address: a sans-IO state machine.
///
/// The network calls one `handle_*` method, then drains
/// [`poll_transmit`](Node::poll_transmit) until it returns `None`, then reads
/// [`poll_timeout`](Node::poll_timeout). It does the same once when the node
/// is added and after every [`Network::with_node`](super::Network::with_node).
///
/// `Any` is a supertrait so that the network can hand back the concrete type
/// through a [`NodeId`].
pub trait Node: Any + Send {
    /// A datagram arrived from `from`.
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]);
    /// A datagram arrived from `from`, in the buffer its sender handed the
    /// network: the network calls this one, and a node that keeps what it
    /// receives (a window) may keep the buffer rather than a copy. The
    /// default hands the bytes to [`handle_datagram`](Node::handle_datagram).
    fn handle_shared(&mut self, now: Time, from: SocketAddr, bytes: &SharedBuf) {
        self.handle_datagram(now, from, bytes);
    }
    /// The time returned by `poll_timeout` has come.
    fn handle_timeout(&mut self, now: Time);
    /// The next datagram to send, if any. Called until `None` after every
    /// `handle_*`.
    fn poll_transmit(&mut self, now: Time) -> Option<Outgoing>;
    /// When `handle_timeout` should next be called.
    fn poll_timeout(&self) -> Option<Time>;
}

/// A datagram a node hands the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Where it goes.
    pub to: SocketAddr,
    /// The datagram. The network carries this buffer to the receiver (and
    /// to every receiver of a duplicate) without copying it; a tap that
    /// rewrites it rewrites a copy.
    pub bytes: SharedBuf,
    /// The IP TTL it leaves with; `None` is the OS default,
    /// [`DEFAULT_TTL`](super::DEFAULT_TTL). See the [module docs](super#ttl)
    /// for how far a small one gets.
    pub ttl: Option<u8>,
}

impl Outgoing {
    /// `bytes` to `to` at the default TTL.
    pub fn new(to: SocketAddr, bytes: impl Into<SharedBuf>) -> Self {
        Self {
            to,
            bytes: bytes.into(),
            ttl: None,
        }
    }
}

impl From<Transmit<'_>> for Outgoing {
    /// A copy of a state machine's transmit, TTL included.
    fn from(t: Transmit<'_>) -> Self {
        Self {
            to: t.dst,
            bytes: SharedBuf::new(t.payload.to_vec()),
            ttl: t.ttl,
        }
    }
}

impl From<SharedTransmit<'_>> for Outgoing {
    /// A state machine's transmit, its buffer shared rather than copied.
    fn from(t: SharedTransmit<'_>) -> Self {
        Self {
            to: t.dst,
            bytes: SharedBuf::clone(t.payload),
            ttl: t.ttl,
        }
    }
}

/// A handle to a node of type `T` in one [`Network`](super::Network).
///
/// Returned by [`Network::add_node`](super::Network::add_node); it gives typed
/// access back without naming the type again.
pub struct NodeId<T> {
    index: usize,
    // `fn() -> T` keeps the handle `Send`, `Sync` and `Copy` whatever `T` is.
    node: PhantomData<fn() -> T>,
}

impl<T> NodeId<T> {
    pub(super) fn new(index: usize) -> Self {
        Self {
            index,
            node: PhantomData,
        }
    }

    /// Position of the node in the order nodes were added, from zero.
    pub fn index(self) -> usize {
        self.index
    }
}

// Manual impls: derives would demand the same traits of `T`.
impl<T> Clone for NodeId<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for NodeId<T> {}

impl<T> PartialEq for NodeId<T> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
    }
}

impl<T> Eq for NodeId<T> {}

impl<T> PartialOrd for NodeId<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for NodeId<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.index.cmp(&other.index)
    }
}

impl<T> Hash for NodeId<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.index.hash(state);
    }
}

impl<T> fmt::Debug for NodeId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.index)
    }
}
