//! `shoal publish`: keeps the stream's entry-point record on the DHT.
//!
//! The record (`shoal_proto::entry::EntryRecord`) lists the relays the
//! publisher sends to, the hash of the stream's DESCRIPTOR, and when it
//! goes stale. It is a BEP 44 mutable item under the stream key with the
//! salt `shoal/entry/1`, signed by shoal's own code. Its sequence number
//! is the wall clock in milliseconds (and always above the last one
//! used), so a restarted publisher's record supersedes the old one. It is
//! stored at start, then again every [`REFRESH_EVERY`]: well inside both
//! its own [`RECORD_LIFETIME`] and the two hours DHT nodes commonly keep
//! an item.

use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::future::block_on;
use mainline::MutableItem;
use shoal_proto::entry::{EntryRecord, MAX_ENTRY_POINTS, RECORD_SALT, sign_record};
use shoal_proto::integrity::PublisherKey;

use super::chore::Chore;
use super::{DhtOptions, unix_now};

/// How long a record is good for, from when it is stored.
pub const RECORD_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// How often the record is stored again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10 * 60);
/// How soon a failed store is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(15);

/// What the record says.
#[derive(Debug, Clone)]
pub struct RecordContent {
    /// Relays to join through, in order of preference (the first
    /// [`MAX_ENTRY_POINTS`] are kept).
    pub entry_points: Vec<SocketAddr>,
    /// `shoal_proto::entry::descriptor_hash` of the stream's DESCRIPTOR.
    pub descriptor_hash: [u8; 32],
}

/// The running record keeper; [`RecordKeeper::stop`] ends it.
#[derive(Debug)]
pub struct RecordKeeper(Chore);

impl RecordKeeper {
    /// Joins the DHT and keeps the record stored, signed with the key
    /// whose seed is `seed`; says what it did on stderr unless `quiet`.
    pub fn start(
        options: &DhtOptions,
        seed: [u8; 32],
        content: RecordContent,
        quiet: bool,
    ) -> anyhow::Result<Self> {
        let dht = options.start(false)?.as_async();
        let key = PublisherKey::from_seed(seed);
        let mut last_seq = 0i64;
        Chore::spawn(move || {
            let seq = next_seq(last_seq);
            last_seq = seq;
            let item = match item(&key, seq, &content) {
                Ok(item) => item,
                Err(e) => {
                    eprintln!("shoal: no DHT record: {e}");
                    return None;
                }
            };
            match block_on(dht.put_mutable(item, None)) {
                Ok(outcome) => {
                    if !quiet {
                        eprintln!(
                            "shoal: stored the stream's entry points on the DHT (record seq \
                             {seq}, {} relay(s), kept by {} node(s))",
                            content.entry_points.len().min(MAX_ENTRY_POINTS),
                            outcome.stored_at
                        );
                    }
                    Some(REFRESH_EVERY)
                }
                Err(e) => {
                    eprintln!(
                        "shoal: cannot store the stream's entry points on the DHT ({e}); \
                         retrying in {} s",
                        RETRY_AFTER.as_secs()
                    );
                    Some(RETRY_AFTER)
                }
            }
        })
        .map(Self)
    }

    /// Stops refreshing; the record stays on the DHT until it expires.
    pub fn stop(self) {
        self.0.stop();
    }
}

/// The next sequence number: the wall clock in milliseconds, and always
/// above `last`.
fn next_seq(last: i64) -> i64 {
    let ms = i64::try_from(crate::os::wall_time().as_micros() / 1000).unwrap_or(i64::MAX);
    ms.max(last.saturating_add(1))
}

/// The signed item for record `seq`.
fn item(key: &PublisherKey, seq: i64, content: &RecordContent) -> anyhow::Result<MutableItem> {
    let record = EntryRecord {
        descriptor_hash: content.descriptor_hash,
        expires: unix_now() + RECORD_LIFETIME.as_secs(),
        entry_points: content
            .entry_points
            .iter()
            .take(MAX_ENTRY_POINTS)
            .copied()
            .collect(),
    };
    let value = record.encode()?;
    let signature = sign_record(key, seq, &value);
    Ok(MutableItem::new_signed_unchecked(
        key.stream_id().0,
        signature,
        &value,
        seq,
        Some(RECORD_SALT),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_always_rise() {
        let a = next_seq(0);
        assert!(a > 1_700_000_000_000, "wall-clock milliseconds: {a}");
        assert_eq!(next_seq(i64::MAX - 1), i64::MAX);
        assert!(next_seq(a) > a);
    }

    #[test]
    fn the_item_verifies_with_the_stream_key() {
        let key = PublisherKey::from_seed([7; 32]);
        let content = RecordContent {
            entry_points: vec!["127.0.0.1:7400".parse().expect("addr")],
            descriptor_hash: [1; 32],
        };
        let item = item(&key, 42, &content).expect("item");
        let mut book = shoal_proto::entry::RecordBook::new(key.stream_id());
        let found = shoal_proto::entry::FoundItem {
            key: *item.key(),
            salt: item.salt(),
            seq: item.seq(),
            value: item.value(),
            signature: *item.signature(),
        };
        let record = book.consider(unix_now(), &found).expect("accepted");
        assert_eq!(record.entry_points, content.entry_points);
        assert_eq!(record.descriptor_hash, [1; 32]);
    }
}
