//! What the main thread, the source and the viewer threads share: the
//! run's phase, the measured sequence range, the send-time ring and a few
//! live counters for the progress line.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use crate::clock::{Clock, SendTimes};

/// Where the run is. Only the main thread moves it, forward only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Viewers subscribe; the stream runs; nothing is counted.
    Warmup = 0,
    /// Everything is counted.
    Measure = 1,
    /// The source has stopped; viewers take in what is still in flight.
    Drain = 2,
    /// The relay is gone; viewers count whatever arrives, sending nothing.
    Baseline = 3,
    /// Viewer threads return their results.
    Stop = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Warmup,
            1 => Self::Measure,
            2 => Self::Drain,
            3 => Self::Baseline,
            _ => Self::Stop,
        }
    }
}

/// Not set yet, for the sequence bounds.
pub const UNSET: u64 = u64::MAX;

/// See the module docs.
#[derive(Debug)]
pub struct Shared {
    /// The run's clock.
    pub clock: Clock,
    /// Send time of each DATA seq.
    pub sent: SendTimes,
    phase: AtomicU8,
    /// First seq sent after the measurement began ([`UNSET`] before).
    first_seq: AtomicU64,
    /// One past the last seq the source sent ([`UNSET`] while it runs).
    end_seq: AtomicU64,
    /// Viewers whose subscription has been accepted (each counted once).
    pub subscribed: AtomicUsize,
    /// Datagrams the viewers received, from anyone, since the start.
    pub rx_datagrams: AtomicU64,
    /// Measured DATA chunks delivered so far.
    pub rx_chunks: AtomicU64,
    /// The newest DATA seq the source has sent ([`UNSET`] before the
    /// first).
    pub newest_seq: AtomicU64,
    /// The source's run epoch (its first seq and block; SPEC §8.1), 0
    /// until the source starts.
    pub epoch: AtomicU64,
    /// The port of the source's socket on 127.0.0.1 (0 before it binds):
    /// where a spoofed flood pretends to come from.
    pub source_port: AtomicU64,
    /// With churn: viewers that joined on a fresh socket so far.
    pub joins: AtomicU64,
    /// Of those, the ones whose first DATA came within the join deadline.
    pub joins_served: AtomicU64,
}

impl Shared {
    /// Everything at its start.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            sent: SendTimes::default(),
            phase: AtomicU8::new(Phase::Warmup as u8),
            first_seq: AtomicU64::new(UNSET),
            end_seq: AtomicU64::new(UNSET),
            subscribed: AtomicUsize::new(0),
            rx_datagrams: AtomicU64::new(0),
            rx_chunks: AtomicU64::new(0),
            newest_seq: AtomicU64::new(UNSET),
            epoch: AtomicU64::new(0),
            source_port: AtomicU64::new(0),
            joins: AtomicU64::new(0),
            joins_served: AtomicU64::new(0),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Moves to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// First measured seq, or [`UNSET`].
    pub fn first_seq(&self) -> u64 {
        self.first_seq.load(Ordering::Acquire)
    }

    /// Set by the source once, before it sends `seq`.
    pub fn set_first_seq(&self, seq: u64) {
        self.first_seq.store(seq, Ordering::Release);
    }

    /// One past the last seq sent, or [`UNSET`] while the source runs.
    pub fn end_seq(&self) -> u64 {
        self.end_seq.load(Ordering::Acquire)
    }

    /// Set by the source when it stops.
    pub fn set_end_seq(&self, seq: u64) {
        self.end_seq.store(seq, Ordering::Release);
    }
}
