//! What arrived over each link: the receiving half of its counters,
//! kept by the receiver's shard (the sending half is the link's own).

use super::shard::LinkRef;
use super::stats::LinkStats;

/// What arrived over one link: the receiving half of its [`LinkStats`].
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Arrivals {
    pub(super) datagrams: u64,
    pub(super) bytes: u64,
    /// Lost to the receiver's access-link burst chain.
    pub(super) burst: u64,
}

impl Arrivals {
    /// Adds these to the sending half.
    pub(super) fn add_to(&self, stats: &mut LinkStats) {
        stats.arrived_datagrams += self.datagrams;
        stats.arrived_bytes += self.bytes;
        stats.dropped_burst += self.burst;
    }
}

/// What arrived over each link toward a shard's addresses, by the link's
/// place: a dense table per sending shard (links are numbered from 0 in
/// each), where a hash map cost a cache miss or two per delivery.
#[derive(Default)]
pub(super) struct ArrivalTable(Vec<Vec<Arrivals>>);

impl ArrivalTable {
    /// The arrivals over `link`, zero until something arrived.
    pub(super) fn get(&self, link: LinkRef) -> Arrivals {
        self.0
            .get(link.shard())
            .and_then(|links| links.get(link.index()))
            .copied()
            .unwrap_or_default()
    }

    pub(super) fn entry(&mut self, link: LinkRef) -> &mut Arrivals {
        let (shard, index) = (link.shard(), link.index());
        if self.0.len() <= shard {
            self.0.resize_with(shard + 1, Vec::new);
        }
        let links = &mut self.0[shard];
        if links.len() <= index {
            links.resize(index + 1, Arrivals::default());
        }
        &mut links[index]
    }
}
