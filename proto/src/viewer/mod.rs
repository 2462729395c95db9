//! The viewer: subscribes, verifies, repairs, and plays out in order.
//!
//! A viewer is three parts, each in its own file, which an ordinary peer
//! ([`crate::peer`]) composes too, with its own uploading around them:
//!
//! - [`Playout`] (`playout.rs`): the window, read out in order, with gaps
//!   for what comes too late, and the events and counters the owner sees;
//! - [`Repair`] (`repair.rs`): NACKs for what FEC cannot rebuild, while a
//!   repair can still arrive in time;
//! - [`Relays`] (`relays.rs`): the subscription to the relay in use and
//!   the fallbacks it fails over to ([`ViewerConfig::fallbacks`]). Only the
//!   relay in use ([`Viewer::relay`]) is trusted.
//!
//! Run loop: `handle_datagram` / `handle_timeout`, then drain
//! `poll_transmit` and `poll_event`, then wait until `poll_timeout`.

mod missing;
mod payload;
mod playout;
mod relays;
mod repair;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::integrity::{Rejection, StreamKey, VerifyMemo};
use crate::transmit::{SharedBuf, TxQueue};
use crate::window::{Incoming, Ingested, Window, WindowConfig};
use crate::wire::{Message, MessageType, RejectReason, peek_type};
use crate::{StreamId, Time, Transmit};
pub use missing::{CLUB_LATE, CLUB_REORDER};
pub use payload::Payload;
pub(crate) use playout::Playout;
pub(crate) use relays::Relays;
pub(crate) use repair::Repair;

/// Viewer settings.
#[derive(Debug, Clone)]
pub struct ViewerConfig {
    /// The relay to subscribe to.
    pub relay: SocketAddr,
    /// Further relays, in order of preference, tried after `relay` when
    /// the relay in use fails (empty: stay with `relay`).
    pub fallbacks: Vec<SocketAddr>,
    /// The stream.
    pub stream: StreamId,
    /// Longest a chunk may take from publisher to output.
    pub latency: Duration,
    /// Window sizes.
    pub window: WindowConfig,
    /// Ask for lost chunks that FEC cannot rebuild.
    pub nack: bool,
    /// Access token, empty if none.
    pub token: Vec<u8>,
    /// Seed for handshake nonces (draw it from a random source).
    pub nonce_seed: u64,
    /// Clubs to take from the relay (all, for a plain viewer).
    pub clubs: u64,
    /// After a resubscription, start at the live edge rather than at the
    /// next chunk to play (an ordinary peer NACKs what it lacks instead).
    pub resume_live: bool,
    /// Chunks arrive club by club over different paths (an ordinary
    /// peer): a chunk counts as lost once a later chunk of its own club
    /// has arrived, and is NACKed [`CLUB_REORDER`] after that, with no
    /// wait for FEC.
    pub club_nack: bool,
    /// Successful signature checks shared with other receivers in this
    /// process (a simulator's peers); `None` (the default): every check
    /// runs. See [`VerifyMemo`].
    pub verify_memo: Option<Arc<VerifyMemo>>,
}

impl ViewerConfig {
    /// Defaults for watching `stream` from `relay`: 500 ms budget, NACK on.
    pub fn new(relay: SocketAddr, stream: StreamId) -> Self {
        Self {
            relay,
            fallbacks: Vec::new(),
            stream,
            latency: Duration::from_millis(500),
            window: WindowConfig {
                capacity: 1024,
                manifest_wait: Duration::from_millis(500),
                ..WindowConfig::default()
            },
            nack: true,
            token: Vec::new(),
            nonce_seed: 0x5eed,
            clubs: u64::MAX,
            resume_live: false,
            club_nack: false,
            verify_memo: None,
        }
    }
}

/// What the viewer tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerEvent {
    /// The relay accepted the subscription.
    Subscribed {
        /// Where the relay starts.
        start_seq: u64,
    },
    /// The next chunk of the stream, in order.
    Chunk {
        /// Its sequence number.
        seq: u64,
        /// Its bytes (shared with the window: no copy).
        payload: Payload,
        /// Publisher timestamp to output.
        latency: Duration,
        /// It starts with a keyframe: a decoder can start here.
        keyframe: bool,
    },
    /// Chunks `from..to` were lost: the output has a gap here.
    Gap {
        /// First lost.
        from: u64,
        /// One past the last lost.
        to: u64,
    },
    /// The stream moved to a later run of its publisher (it restarted),
    /// or jumped ahead within its run: what the old run still owed is
    /// given up (a [`ViewerEvent::Gap`] comes first if playout had begun),
    /// and output continues at the new run's first keyframe.
    NewRun {
        /// The run now followed (SPEC §8.1).
        epoch: u64,
    },
    /// The relay refused for good.
    Rejected(RejectReason),
    /// The stream ended; nothing more will come.
    EndOfStream,
    /// The viewer left its relay for the next one in its list and has
    /// started subscribing there.
    RelayChanged {
        /// The relay left.
        from: SocketAddr,
        /// The relay now in use.
        to: SocketAddr,
    },
}

/// What the viewer counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewerStats {
    /// Chunks output.
    pub played: u64,
    /// Bytes output.
    pub played_bytes: u64,
    /// Chunks given up as lost.
    pub lost: u64,
    /// Output chunks rebuilt from parity.
    pub fec_repaired: u64,
    /// Output chunks that arrived after a NACK.
    pub nack_repaired: u64,
    /// NACK datagrams sent.
    pub nacks_sent: u64,
    /// Datagrams refused (all reasons).
    pub rejected: u64,
    /// Of those, refused as forged or corrupted.
    pub rejected_integrity: u64,
    /// Highest latency seen at output, in microseconds.
    pub max_latency_us: u64,
    /// Latest latency at output, in microseconds.
    pub last_latency_us: u64,
    /// Moves to the next relay in the list.
    pub relay_changes: u64,
    /// Times the stream moved to a later run of its publisher (a restart)
    /// or jumped ahead: each a signalled gap.
    pub resets: u64,
}

/// A viewer. See the module docs.
#[derive(Debug)]
pub struct Viewer {
    relays: Relays,
    playout: Playout,
    repair: Repair,
    tx: TxQueue,
}

impl Viewer {
    /// A viewer that starts its handshake at `now`. Fails if the stream id
    /// is not a valid key.
    pub fn new(config: ViewerConfig, now: Time) -> Result<Self, Rejection> {
        let key = StreamKey::new(config.stream)?.with_memo(config.verify_memo.clone());
        let mut tx = TxQueue::default();
        Ok(Self {
            relays: Relays::new(&config, now, &mut tx),
            playout: Playout::new(key, &config),
            repair: Repair::new(&config),
            tx,
        })
    }

    /// The newest chunk held, if any.
    pub fn newest_seq(&self) -> Option<u64> {
        self.playout.newest_seq()
    }

    /// The relay in use now: [`ViewerConfig::relay`] until the viewer
    /// fails over to a fallback.
    pub fn relay(&self) -> SocketAddr {
        self.relays.relay()
    }

    /// Round-trip time to the relay, smoothed.
    pub fn relay_rtt(&self) -> Duration {
        self.relays.session().rtt
    }

    /// Counters.
    pub fn stats(&self) -> ViewerStats {
        self.playout.stats()
    }

    /// The stream's window (for its counters).
    pub fn window(&self) -> &Window {
        self.playout.window()
    }

    /// Whether the stream has ended.
    pub fn is_ended(&self) -> bool {
        self.playout.is_ended()
    }

    /// Whether the relay has accepted the subscription.
    pub fn is_subscribed(&self) -> bool {
        self.relays.is_subscribed()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ViewerEvent> {
        self.playout.poll_event()
    }

    /// Whether a datagram is waiting for [`Viewer::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.tx.is_empty()
    }

    /// Leaves: a LEAVE to the relay; nothing more is handled.
    pub fn close(&mut self) {
        self.relays.close(&mut self.tx);
        self.playout.close();
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.tx.pop()
    }

    /// Handles one received datagram.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.handle(now, from, Incoming::Borrowed(bytes));
    }

    /// As [`Viewer::handle_datagram`], for a datagram in a shared buffer:
    /// the window keeps that buffer rather than a copy (see
    /// [`Window::ingest_shared`]).
    pub fn handle_datagram_shared(&mut self, now: Time, from: SocketAddr, buf: &SharedBuf) {
        self.handle(now, from, Incoming::Shared(buf));
    }

    fn handle(&mut self, now: Time, from: SocketAddr, datagram: Incoming<'_>) {
        if self.playout.is_ended() {
            return;
        }
        let bytes = datagram.bytes();
        let Ok(ty) = peek_type(bytes) else {
            self.playout.count_rejected();
            return;
        };
        if is_stream(ty) {
            let _ = self.ingest(now, from, datagram);
        } else if from == self.relays.relay() {
            let Ok(msg) = Message::parse(bytes) else {
                self.playout.count_rejected();
                return;
            };
            self.relays
                .handle(now, &msg, &mut self.playout, &mut self.tx);
        } else {
            self.playout.count_rejected();
        }
        self.advance(now);
    }

    /// Stream data: trusted only from the relay in use, not one it left.
    fn ingest(
        &mut self,
        now: Time,
        from: SocketAddr,
        datagram: Incoming<'_>,
    ) -> Result<Ingested, Rejection> {
        let trusted = self.relays.heard_stream(now, from);
        self.playout
            .ingest(now, datagram, trusted, &mut self.repair, &mut |_, _| {})
    }

    fn advance(&mut self, now: Time) {
        if self.playout.advance(now, &mut self.repair) {
            self.relays.close(&mut self.tx);
        }
    }

    /// Runs timers: handshake, keepalive, NACKs, playout deadlines.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.playout.is_ended() {
            return;
        }
        let (relays, playout, repair) = (&mut self.relays, &mut self.playout, &mut self.repair);
        relays.handle_timeout(now, playout, &mut self.tx);
        playout.handle_timeout(now, repair, &mut |_, _| {});
        repair.handle_timeout(now, playout, relays.session(), &mut self.tx);
        self.advance(now);
    }

    /// When `handle_timeout` should next run.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.playout.is_ended() {
            return None;
        }
        [
            self.relays.poll_timeout(),
            self.playout.poll_timeout(),
            self.repair.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Whether a datagram of type `ty` is stream data, for the window.
pub(crate) fn is_stream(ty: MessageType) -> bool {
    matches!(
        ty,
        MessageType::Data | MessageType::Parity | MessageType::Manifest | MessageType::Descriptor
    )
}

#[cfg(test)]
mod tests;
