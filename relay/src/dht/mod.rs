//! Finding a stream with nothing but its id, over the BitTorrent Mainline
//! DHT (BEP 5, BEP 44), through the `mainline` crate.
//!
//! - The publisher stores a signed, sequenced record of the stream's entry
//!   points under its own key ([`record`]; the format is
//!   `shoal_proto::entry`, SPEC "DHT discovery").
//! - Relays started with `--announce` announce themselves under a target
//!   derived from the stream id ([`announce`]).
//! - `watch` and `peer` without `--relay` look up both, check the record,
//!   and try the entry points in order of measured round-trip time
//!   ([`resolve`], [`probe`]).
//!
//! The DHT only ever says where to knock: everything played is verified
//! with the stream key, so a lying DHT node or a false announcement costs
//! a viewer time, never a corrupt stream.
//!
//! `mainline` 8 brings its own ed25519-dalek (3.x) beside the 2.x the rest
//! of shoal signs with; keys cross between them as their 32 bytes, and the
//! record's signature is made and checked by shoal's own code
//! (`shoal_proto::entry`), so the two never need to agree on types.

pub mod announce;
mod chore;
mod node;
pub mod probe;
pub mod record;
pub mod resolve;

use mainline::{Id, MutableItem};
use shoal_proto::StreamId;
use shoal_proto::entry::ANNOUNCE_SALT;

pub use node::{DhtArgs, DhtOptions, bootstrap_node};

/// Where relays announce `stream`: SHA-1(stream key ‖ "shoal/relays/1"),
/// the BEP 44 target formula with the announce salt, so that it can never
/// be the record's target (another salt).
pub fn announce_target(stream: &StreamId) -> Id {
    MutableItem::target_from_key(&stream.0, Some(ANNOUNCE_SALT))
}

/// Seconds since the Unix epoch, by the wall clock.
fn unix_now() -> u64 {
    crate::os::unix_secs()
}
