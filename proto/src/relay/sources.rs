//! The addresses a stream's data may come from before its manifest.
//!
//! A relay takes DATA and PARITY whose block's MANIFEST it has not verified
//! yet only from addresses that proved they carry the stream: by delivering
//! a MANIFEST or DESCRIPTOR that verified (not a duplicate) within
//! [`PROVEN_FOR`]. Anyone else's unverified chunks would sit unchecked in
//! the window, where a forger could overwrite real ones. After the
//! MANIFEST, chunks from anyone are checked on arrival and are harmless.

use std::net::SocketAddr;
use std::time::Duration;

use crate::Time;

/// How long an address stays proven after its last verified MANIFEST or
/// DESCRIPTOR (a publisher sends a DESCRIPTOR every second).
pub const PROVEN_FOR: Duration = Duration::from_secs(10);
/// Most proven addresses kept per stream; a new one replaces the stalest.
const MAX_SOURCES: usize = 4;

/// Proven addresses and when each last proved itself.
#[derive(Debug, Default)]
pub(super) struct ProvenSources {
    sources: Vec<(SocketAddr, Time)>,
}

impl ProvenSources {
    /// Whether `addr` is proven at `now`.
    pub(super) fn contains(&self, addr: SocketAddr, now: Time) -> bool {
        self.sources
            .iter()
            .any(|&(a, at)| a == addr && now.saturating_since(at) < PROVEN_FOR)
    }

    /// `addr` delivered something that verified.
    pub(super) fn prove(&mut self, addr: SocketAddr, now: Time) {
        if let Some(s) = self.sources.iter_mut().find(|(a, _)| *a == addr) {
            s.1 = now;
        } else if self.sources.len() < MAX_SOURCES {
            self.sources.push((addr, now));
        } else if let Some(stalest) = self.sources.iter_mut().min_by_key(|(_, at)| *at) {
            *stalest = (addr, now);
        }
    }
}
