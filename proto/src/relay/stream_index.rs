//! The streams a relay carries, by id, with the last one found at hand.

use std::cell::Cell;
use std::collections::HashMap;

use crate::StreamId;

/// Stream ids to their place in `Relay::streams`.
///
/// Ids come off the wire, so the map keeps std's keyed hasher (no
/// attacker can aim at one bucket); hashing 32 bytes with it is most of a
/// lookup's cost. Nearly every datagram names the stream the one before
/// named, so the last hit is kept and compared first (32 bytes, no hash).
#[derive(Debug, Default)]
pub(super) struct StreamIndex {
    map: HashMap<StreamId, usize>,
    last: Cell<Option<(StreamId, usize)>>,
}

impl StreamIndex {
    pub(super) fn get(&self, id: &StreamId) -> Option<usize> {
        if let Some((last, i)) = self.last.get()
            && last == *id
        {
            return Some(i);
        }
        let i = *self.map.get(id)?;
        self.last.set(Some((*id, i)));
        Some(i)
    }

    pub(super) fn contains(&self, id: &StreamId) -> bool {
        self.get(id).is_some()
    }

    pub(super) fn insert(&mut self, id: StreamId, i: usize) {
        self.map.insert(id, i);
        self.last.set(Some((id, i)));
    }

    pub(super) fn remove(&mut self, id: &StreamId) {
        self.map.remove(id);
        if self.last.get().is_some_and(|(last, _)| last == *id) {
            self.last.set(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_hit_never_outlives_its_stream() {
        let (a, b) = (StreamId([1; 32]), StreamId([2; 32]));
        let mut index = StreamIndex::default();
        assert_eq!(index.get(&a), None);
        index.insert(a, 0);
        index.insert(b, 1);
        assert_eq!(index.get(&a), Some(0));
        assert_eq!(index.get(&a), Some(0));
        index.remove(&a);
        assert_eq!(index.get(&a), None);
        assert!(index.contains(&b));
        // The last hit (b) removed, and its place given to a again: found
        // under a only.
        index.remove(&b);
        index.insert(a, 1);
        assert_eq!(index.get(&b), None);
        assert_eq!(index.get(&a), Some(1));
    }
}
