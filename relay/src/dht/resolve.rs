//! `watch` and `peer` without `--relay`: find a stream's entry points on
//! the DHT and rank them.
//!
//! Two lookups run at once: the publisher's record (BEP 44 `get` under
//! the stream key and the record salt) and the relays announced for the
//! stream (BEP 5 `get_peers`). Every record found is judged by
//! `shoal_proto::entry::RecordBook`: one that is not signed by the stream
//! key, is malformed, has expired, or is older than one already seen is
//! ignored, and the reason is told. The newest good record's entry points
//! come first, in its order, then the announced relays; all are probed
//! ([`super::probe`]) and the ones that answer are returned fastest
//! first. A record none of whose entry points answers is ignored too.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use futures_lite::future::block_on;
use mainline::MutableItem;
use shoal_proto::StreamId;
use shoal_proto::entry::{EntryRecord, FoundItem, RECORD_SALT, RecordBook};

use super::probe;
use super::{DhtOptions, announce_target, unix_now};

/// Most candidates probed.
pub const MAX_CANDIDATES: usize = 16;
/// How long candidates are given to answer the probe.
pub const PROBE_PATIENCE: Duration = Duration::from_secs(1);
/// How long the lookup goes on collecting after its first usable answer
/// (a good record or an announced relay), for newer records and more
/// relays.
pub const SETTLE: Duration = Duration::from_millis(200);
/// Longest the lookup takes when nothing usable comes.
pub const LOOKUP_LIMIT: Duration = Duration::from_secs(10);

/// Where notes about what was ignored go; called from the lookup's
/// threads too, after [`lookup`] has returned.
pub type Note = Arc<dyn Fn(String) + Send + Sync>;

/// What the DHT holds for a stream.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The newest good record, with its sequence number.
    pub record: Option<(i64, EntryRecord)>,
    /// Relays announced under the stream, without repeats.
    pub announced: Vec<SocketAddr>,
    /// DHT nodes asked for the record (0 if the lookup was still going).
    pub queried: u32,
}

/// Entry points to join through, best first.
#[derive(Debug, Clone)]
pub struct EntryPoints {
    /// Relays that answered, with their round-trip times, fastest first.
    pub ranked: Vec<(SocketAddr, Duration)>,
    /// The good record, if one was found: its sequence number.
    pub record_seq: Option<i64>,
    /// Entry points that came from the record (the others were announced).
    from_record: Vec<SocketAddr>,
}

impl EntryPoints {
    /// How `addr` was found, for messages.
    pub fn source_of(&self, addr: SocketAddr) -> String {
        match self.record_seq {
            Some(seq) if self.from_record.contains(&addr) => {
                format!("the publisher's DHT record, seq {seq}")
            }
            _ => "a relay's DHT announcement".to_owned(),
        }
    }
}

/// Looks `stream` up and probes what was found; `note` is told every
/// record or relay ignored, and why. Fails, naming the fix, when nothing
/// usable is found.
pub fn discover(
    options: &DhtOptions,
    stream: &StreamId,
    note: &Note,
) -> anyhow::Result<EntryPoints> {
    let mut book = RecordBook::new(*stream);
    let found = lookup(options, stream, &mut book, note)?;
    let from_record: Vec<SocketAddr> = found
        .record
        .as_ref()
        .map(|(_, r)| r.entry_points.clone())
        .unwrap_or_default();
    let mut candidates: Vec<SocketAddr> = Vec::new();
    for a in from_record.iter().chain(&found.announced) {
        if !candidates.contains(a) && candidates.len() < MAX_CANDIDATES {
            candidates.push(*a);
        }
    }
    if candidates.is_empty() {
        anyhow::bail!(
            "stream {stream}: the DHT has no record of it and no relay announced for it \
             ({} node(s) asked); check the id, that its publisher or a relay with --announce \
             runs, or give --relay ADDR",
            found.queried
        );
    }
    let ranked = probe::rank(&candidates, PROBE_PATIENCE)?;
    let reachable = |a: &SocketAddr| ranked.reachable.iter().any(|(r, _)| r == a);
    let mut record_seq = None;
    if let Some((seq, record)) = &found.record {
        if record.entry_points.iter().any(reachable) {
            record_seq = Some(*seq);
        } else {
            note(format!(
                "ignored the DHT record (seq {seq}): it names no reachable entry point \
                 (tried {})",
                list(&record.entry_points)
            ));
        }
    }
    for silent in ranked.silent.iter().filter(|a| !from_record.contains(a)) {
        note(format!(
            "relay {silent}, announced on the DHT, does not answer; skipped"
        ));
    }
    if ranked.reachable.is_empty() {
        anyhow::bail!(
            "stream {stream}: none of the relays found on the DHT answers (tried {}); try \
             again later, or give --relay ADDR",
            list(&candidates)
        );
    }
    Ok(EntryPoints {
        ranked: ranked.reachable,
        record_seq,
        from_record,
    })
}

/// What the lookup threads report.
enum Heard {
    Item(MutableItem),
    Peers(Vec<SocketAddr>),
    RecordDone(u32),
    PeersDone,
}

/// Both lookups, at once. A DHT lookup ends only when its slowest node
/// has answered or timed out (2 s), but the answers that matter come
/// first: this returns [`SETTLE`] after the first usable answer, or when
/// both lookups have ended, or after [`LOOKUP_LIMIT`]. The lookups finish
/// in the background; records that fail BEP 44 validation are counted by
/// `mainline` only at the end, and told through `note` then.
pub fn lookup(
    options: &DhtOptions,
    stream: &StreamId,
    book: &mut RecordBook,
    note: &Note,
) -> anyhow::Result<Found> {
    let dht = options.start(false)?.as_async();
    let (tx, rx) = mpsc::channel::<Heard>();
    {
        let (dht, tx, note, key) = (dht.clone(), tx.clone(), Arc::clone(note), stream.0);
        std::thread::Builder::new()
            .name("shoal-dht-get".into())
            .spawn(move || {
                block_on(async {
                    let detailed = dht.get_mutable_detailed(&key, Some(RECORD_SALT), None);
                    let mut items = detailed.items;
                    while let Some(item) = items.next().await {
                        let _ = tx.send(Heard::Item(item));
                    }
                    let outcome = detailed.outcome.recv().await;
                    if outcome.invalid_values > 0 {
                        note(format!(
                            "ignored {} DHT answer(s) carrying a record that fails BEP 44 \
                             validation (a signature that does not verify with the stream key)",
                            outcome.invalid_values
                        ));
                    }
                    let _ = tx.send(Heard::RecordDone(outcome.queried));
                });
            })?;
    }
    {
        let target = announce_target(stream);
        std::thread::Builder::new()
            .name("shoal-dht-peers".into())
            .spawn(move || {
                block_on(async {
                    let mut batches = dht.get_peers(target);
                    while let Some(batch) = batches.next().await {
                        let _ = tx.send(Heard::Peers(
                            batch.into_iter().map(SocketAddr::V4).collect(),
                        ));
                    }
                    let _ = tx.send(Heard::PeersDone);
                });
            })?;
    }

    let started = Instant::now();
    let mut found = Found::default();
    let mut first_usable: Option<Instant> = None;
    let (mut record_done, mut peers_done) = (false, false);
    let mut told = BTreeSet::new();
    while !(record_done && peers_done) {
        let until = first_usable.map_or(started + LOOKUP_LIMIT, |t| {
            (t + SETTLE).min(started + LOOKUP_LIMIT)
        });
        let Some(wait) = until.checked_duration_since(Instant::now()) else {
            break;
        };
        match rx.recv_timeout(wait) {
            Ok(Heard::Item(item)) => {
                let item_found = FoundItem {
                    key: *item.key(),
                    salt: item.salt(),
                    seq: item.seq(),
                    value: item.value(),
                    signature: *item.signature(),
                };
                match book.consider(unix_now(), &item_found) {
                    Ok(record) => {
                        first_usable.get_or_insert_with(Instant::now);
                        found.record = Some((item.seq(), record));
                    }
                    Err(why) => {
                        let line = format!("ignored a DHT record for the stream: {why}");
                        if told.insert(line.clone()) {
                            note(line);
                        }
                    }
                }
            }
            Ok(Heard::Peers(batch)) => {
                for a in batch {
                    if !found.announced.contains(&a) {
                        found.announced.push(a);
                    }
                }
                if !found.announced.is_empty() {
                    first_usable.get_or_insert_with(Instant::now);
                }
            }
            Ok(Heard::RecordDone(queried)) => {
                found.queried = queried;
                record_done = true;
            }
            Ok(Heard::PeersDone) => peers_done = true,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok(found)
}

fn list(addrs: &[SocketAddr]) -> String {
    let texts: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    texts.join(", ")
}
