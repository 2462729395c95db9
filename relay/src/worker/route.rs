//! Which worker ingests which stream.
//!
//! A stream's datagrams are verified once, by one worker: the first that
//! took it in (or worker 0 for streams pulled from an upstream). The
//! others mirror its window. The shared table is touched only for a stream
//! a worker has not seen before; each worker caches what it learned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use shoal_proto::StreamId;

/// The shared table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owners(Arc<Mutex<HashMap<StreamId, usize>>>);

impl Owners {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<StreamId, usize>> {
        // A worker that panicked while holding the lock left the map
        // consistent (single inserts), so poisoning is not a reason to stop.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A worker's view: a cache over the shared table.
#[derive(Debug)]
pub(crate) struct Router {
    me: usize,
    owners: Owners,
    cache: HashMap<StreamId, usize>,
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
        }
    }

    pub(crate) fn route(&mut self, stream: &StreamId) -> Route {
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
}
