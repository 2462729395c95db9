//! Which worker ingests which stream.
//!
//! A stream's datagrams are verified once, by one worker: the first that
//! took it in (or worker 0 for streams pulled from an upstream). The
//! others mirror its window. The shared table is touched only for a stream
//! a worker has not seen before; each worker caches what it learned.
//!
//! A stream the owner removes (idle: see `proto::relay`'s admission) leaves
//! the table, so that whichever worker hears it first next claims it anew;
//! the table's epoch then moves on, and every worker drops its cache at its
//! next lookup, so no stale entry sends datagrams to a worker that no
//! longer owns the stream. The table holds only streams some worker
//! carries: at most the workers' stream limits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use shoal_proto::StreamId;

/// The shared table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owners {
    table: Arc<Mutex<HashMap<StreamId, usize>>>,
    /// Bumped whenever an entry leaves the table.
    epoch: Arc<AtomicU64>,
}

impl Owners {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<StreamId, usize>> {
        // A worker that panicked while holding the lock left the map
        // consistent (single inserts and removals), so poisoning is not a
        // reason to stop.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A worker's view: a cache over the shared table.
#[derive(Debug)]
pub(crate) struct Router {
    me: usize,
    owners: Owners,
    cache: HashMap<StreamId, usize>,
    /// The table's epoch the cache is good for.
    epoch: u64,
}

/// Where an ingest datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// This worker ingests it.
    Here,
    /// Another worker does.
    To(usize),
    /// Nobody has the stream yet: try it here, holding the table, and
    /// claim it if it took.
    Unknown,
}

impl Router {
    pub(crate) fn new(me: usize, owners: Owners) -> Self {
        Self {
            me,
            owners,
            cache: HashMap::new(),
            epoch: 0,
        }
    }

    pub(crate) fn route(&mut self, stream: &StreamId) -> Route {
        let epoch = self.owners.epoch.load(Ordering::Acquire);
        if epoch != self.epoch {
            self.cache.clear();
            self.epoch = epoch;
        }
        if let Some(&w) = self.cache.get(stream) {
            return self.route_to(w);
        }
        let table = self.owners.lock();
        match table.get(stream) {
            Some(&w) => {
                drop(table);
                self.cache.insert(*stream, w);
                self.route_to(w)
            }
            None => Route::Unknown,
        }
    }

    fn route_to(&self, w: usize) -> Route {
        if w == self.me {
            Route::Here
        } else {
            Route::To(w)
        }
    }

    /// Runs `ingest` with the table locked, and makes this worker the
    /// stream's owner if `ingest` says the stream is now carried here.
    /// Returns the owner instead, without running `ingest`, if another
    /// worker claimed the stream meanwhile.
    pub(crate) fn claim_with(
        &mut self,
        stream: StreamId,
        ingest: impl FnOnce() -> bool,
    ) -> Option<usize> {
        let mut table = self.owners.lock();
        if let Some(&w) = table.get(&stream)
            && w != self.me
        {
            drop(table);
            self.cache.insert(stream, w);
            return Some(w);
        }
        if ingest() {
            table.insert(stream, self.me);
            drop(table);
            self.cache.insert(stream, self.me);
        }
        None
    }

    /// Records that this worker owns `stream` (streams it pulls from an
    /// upstream).
    pub(crate) fn own(&mut self, stream: StreamId) {
        self.owners.lock().insert(stream, self.me);
        self.cache.insert(stream, self.me);
    }

    /// This worker let `stream` go. If it owned it, the stream leaves the
    /// table (and every cache) and this returns true: the mirrors are to
    /// be told.
    pub(crate) fn forget(&mut self, stream: &StreamId) -> bool {
        self.cache.remove(stream);
        let mut table = self.owners.lock();
        if table.get(stream) != Some(&self.me) {
            return false;
        }
        table.remove(stream);
        self.owners.epoch.fetch_add(1, Ordering::AcqRel);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forgotten_stream_is_claimed_anew_by_whoever_hears_it_next() {
        let owners = Owners::default();
        let (mut a, mut b) = (Router::new(0, owners.clone()), Router::new(1, owners));
        let s = StreamId([9; 32]);
        assert_eq!(a.route(&s), Route::Unknown);
        assert_eq!(a.claim_with(s, || true), None);
        assert_eq!(b.route(&s), Route::To(0));
        // A mirror's forgetting changes nothing for the others.
        assert!(!b.forget(&s));
        assert_eq!(b.route(&s), Route::To(0));
        // The owner's does: b's cache goes too.
        assert!(a.forget(&s));
        assert_eq!(b.route(&s), Route::Unknown);
        assert_eq!(b.claim_with(s, || true), None);
        assert_eq!(a.route(&s), Route::To(1));
    }
}
