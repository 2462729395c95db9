//! The IO backends: one UDP socket per worker, batched receive, and sends
//! as UDP GSO trains.
//!
//! Two backends keep one contract ([`Backend`]): `uring` (io_uring with
//! multishot recvmsg into a provided-buffer ring and batched sendmsg SQEs)
//! and `mmsg` (recvmmsg/sendmmsg with `poll`), the portable fallback.
//! [`open`] picks one; `auto` prefers io_uring and says in one log line why
//! it fell back when it does.
//!
//! A worker's turn: `push` every train that became ready, then `turn`,
//! which submits them, waits for input (or a [`Waker`], or the timeout),
//! and hands everything that completed to the [`Sink`].

pub mod mmsg;
pub mod socket;
pub mod train;
pub mod uring;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use shoal_proto::transmit::SharedBuf;
pub use socket::Waker;
pub use train::Train;

/// Most datagrams in one GSO train. The kernel takes up to 64 segments;
/// trains are also cut so that their payload stays under 64 KiB.
pub const MAX_SEGMENTS: usize = 64;

/// Most payload bytes in one GSO train (a UDP datagram's limit).
pub const MAX_TRAIN_BYTES: usize = 65_507;

/// Which backend to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// io_uring when this kernel and process allow it, else mmsg.
    #[default]
    Auto,
    /// io_uring, or fail.
    Uring,
    /// recvmmsg/sendmmsg.
    Mmsg,
}

/// Where a backend's events go during [`Backend::turn`].
pub trait Sink {
    /// A datagram arrived. `bytes` is only valid during the call.
    fn datagram(&mut self, from: SocketAddr, bytes: &[u8]);
    /// A train pushed with `born` has left: `segments` datagrams, and the
    /// bytes sent or the error.
    fn sent(&mut self, born: Instant, segments: usize, result: io::Result<usize>);
}

/// What a backend counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// Datagrams received and handed to the sink.
    pub rx_datagrams: u64,
    /// Datagrams dropped because they were larger than a receive buffer.
    pub rx_truncated: u64,
    /// Times the receive side ran out of buffers (io_uring: ENOBUFS).
    pub rx_no_buffer: u64,
    /// Datagrams sent.
    pub tx_datagrams: u64,
    /// Send calls or SQEs that carried more than one datagram (GSO).
    pub tx_trains: u64,
    /// Messages that left (one msghdr of a sendmmsg, or one SQE), however
    /// many datagrams each carried: `tx_datagrams / tx_messages` is the
    /// mean train length the kernel saw.
    pub tx_messages: u64,
    /// Sends that failed.
    pub tx_errors: u64,
    /// Trains dropped because the send queue was full.
    pub tx_dropped: u64,
}

/// Settings shared by both backends.
#[derive(Debug, Clone, Copy)]
pub struct IoConfig {
    /// Receive buffers (io_uring: provided-buffer ring entries, a power of
    /// two; mmsg: datagrams per recvmmsg).
    pub rx_buffers: usize,
    /// Most trains waiting to be sent before new ones are dropped.
    pub tx_queue: usize,
    /// Use UDP_SEGMENT when the socket supports it.
    pub gso: bool,
}

impl Default for IoConfig {
    fn default() -> Self {
        Self {
            rx_buffers: 1024,
            tx_queue: 65_536,
            gso: true,
        }
    }
}

/// One worker's socket, driven in turns. See the module docs.
pub trait Backend: Send {
    /// "uring" or "mmsg".
    fn name(&self) -> &'static str;
    /// The socket's address.
    fn local_addr(&self) -> SocketAddr;
    /// Whether trains go out as one GSO send.
    fn gso(&self) -> bool;
    /// Queues one train (its shape is the [`Train`] rule, which the type
    /// keeps; an empty one is ignored), taking its buffers and leaving it
    /// empty: the backend holds the `Arc`s until the send completes, and
    /// neither the bytes nor the reference counts are touched on the way.
    /// Sent at the next `turn`.
    fn push(&mut self, train: &mut Train, born: Instant);
    /// Submits what was pushed, waits until a datagram arrives, the waker
    /// fires, or `timeout` passes (`None`: no limit; zero: do not block),
    /// and hands every received datagram and send completion to `sink`.
    fn turn(&mut self, timeout: Option<Duration>, sink: &mut dyn Sink) -> io::Result<()>;
    /// Counters so far.
    fn stats(&self) -> BackendStats;
}
/// Opens the backend `kind` on `socket`, which must be non-blocking.
/// `auto` tries io_uring and falls back to mmsg with one log line that
/// says why.
pub fn open(
    kind: BackendKind,
    socket: std::net::UdpSocket,
    waker: &Arc<Waker>,
    config: IoConfig,
) -> io::Result<Box<dyn Backend>> {
    match kind {
        BackendKind::Mmsg => Ok(Box::new(mmsg::MmsgBackend::new(
            socket,
            Arc::clone(waker),
            config,
        )?)),
        BackendKind::Uring => match uring::UringBackend::new(socket, Arc::clone(waker), config) {
            Ok(b) => Ok(Box::new(b)),
            Err((_, why)) => Err(io::Error::other(format!(
                "io_uring is not usable here: {why} (use --backend mmsg or auto)"
            ))),
        },
        BackendKind::Auto => match uring::UringBackend::new(socket, Arc::clone(waker), config) {
            Ok(b) => Ok(Box::new(b)),
            Err((socket, why)) => {
                tracing::warn!("io_uring unavailable ({why}); using the mmsg backend");
                Ok(Box::new(mmsg::MmsgBackend::new(
                    socket,
                    Arc::clone(waker),
                    config,
                )?))
            }
        },
    }
}
