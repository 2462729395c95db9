//! Regression tests for the window.

use super::*;
use crate::integrity::{PublisherKey, Rejection};
use crate::wire::{DecodeError, HASH_LEN, Manifest, SIGNATURE_LEN};

/// Found by the `window_ingest` fuzz target: a signed MANIFEST whose block
/// would run past `u64::MAX` (`first_seq + k` overflowed in
/// `verify_waiting`). It is refused at parse, before any arithmetic.
#[test]
fn a_manifest_past_the_end_of_the_sequence_space_is_refused() {
    let key = PublisherKey::from_seed([1; 32]);
    let stream = key.stream_id();
    let mut window = Window::new(
        StreamKey::new(stream).expect("key"),
        WindowConfig::default(),
    );
    let hashes = [0u8; 20 * HASH_LEN];
    let manifest = |first_seq| {
        let man = Manifest {
            k: 16,
            m: 4,
            symbol_len: 1330,
            stream,
            block: 3,
            first_seq,
            epoch: 0,
            timestamp_us: 0,
            hashes: &hashes,
            signature: [0; SIGNATURE_LEN],
        };
        crate::testutil::signed_manifest(&key, &man)
    };
    for first_seq in [u64::MAX, u64::MAX - 15, u64::MAX - 1] {
        assert_eq!(
            window.ingest(Time::from_micros(1), &manifest(first_seq)),
            Err(Rejection::Malformed(DecodeError::Field("first_seq"))),
            "first_seq {first_seq}"
        );
    }
    // The last block that fits is fine.
    assert_eq!(
        window.ingest(Time::from_micros(1), &manifest(u64::MAX - 16)),
        Ok(Ingested::Verified)
    );
    window.handle_timeout(Time::from_micros(10_000_000));
}

/// A publisher of opaque data keyed by `[seed; 32]`, and an empty window
/// for its stream.
fn publisher_and_window(seed: u8) -> (crate::publisher::Publisher, Window) {
    use crate::publisher::{Publisher, PublisherConfig};
    let key = PublisherKey::from_seed([seed; 32]);
    let window = Window::new(
        StreamKey::new(key.stream_id()).expect("key"),
        WindowConfig::default(),
    );
    let config = PublisherConfig {
        codec: crate::wire::Codec::Opaque,
        ..PublisherConfig::default()
    };
    let relay = "127.0.0.1:7400".parse().expect("addr");
    let publisher = Publisher::new(key, config, vec![relay], Time::ZERO).expect("publisher");
    (publisher, window)
}

/// A copy of a verified chunk is a duplicate only if it is exact: an
/// altered one is blamed on its sender (a neighbour that corrupts chunks
/// the receiver already has is caught too).
#[test]
fn an_altered_copy_of_a_held_chunk_is_corrupted_not_a_duplicate() {
    use crate::wire::{MessageType, peek_type};

    let (mut publisher, mut window) = publisher_and_window(2);
    let mut chunk = None;
    for ms in 0..200u64 {
        let now = Time::from_micros(ms * 1000);
        publisher.handle_input(now, &[ms as u8; 600]);
        while let Some(tx) = publisher.poll_transmit() {
            let _ = window.ingest(now, tx.payload);
            if peek_type(tx.payload) == Ok(MessageType::Data) {
                chunk.get_or_insert_with(|| tx.payload.to_vec());
            }
        }
    }
    let chunk = chunk.expect("a chunk");
    let now = Time::from_micros(300_000);
    assert_eq!(window.ingest(now, &chunk), Ok(Ingested::Duplicate));
    let mut altered = chunk.clone();
    if let Some(last) = altered.last_mut() {
        *last ^= 1;
    }
    assert_eq!(window.ingest(now, &altered), Err(Rejection::Corrupted));
}

/// Chunks may arrive before their MANIFEST (a peer takes them from
/// neighbours and the MANIFEST from its relay). A chunk claiming a block
/// far ahead, with the slot of the block in flight, is refused, so the
/// real MANIFEST is not refused as stale and nothing is lost.
#[test]
fn a_chunk_claiming_a_block_far_ahead_cannot_take_the_slot_of_one_in_flight() {
    use crate::wire::{MessageType, peek_type};

    let (mut publisher, mut window) = publisher_and_window(5);
    let slots = window.blocks.len() as u64;
    let mut first_copy_seen = std::collections::HashSet::new();
    let (mut chunks, mut verified, mut fakes) = (0, 0, 0);
    let mut last_chunk: Option<Vec<u8>> = None;
    for ms in 0..1500u64 {
        let now = Time::from_micros(ms * 1000);
        publisher.handle_input(now, &[ms as u8; 600]);
        while let Some(tx) = publisher.poll_transmit() {
            let d = tx.payload.to_vec();
            match peek_type(&d) {
                Ok(MessageType::Manifest) => {
                    let block = u64::from_be_bytes(d[40..48].try_into().expect("8"));
                    // The first copy goes missing; the second comes after
                    // the chunks, and a forged chunk just before it.
                    if first_copy_seen.insert(block) {
                        continue;
                    }
                    // (From the second block on: with no MANIFEST verified
                    // yet there is nothing to be ahead of.)
                    if let Some(c) = last_chunk.as_ref().filter(|_| block > 0) {
                        let mut fake = c.clone();
                        fake[44..52].copy_from_slice(&(block + slots).to_be_bytes());
                        assert_eq!(
                            window.ingest_from(now, &fake, true),
                            Err(Rejection::Replayed)
                        );
                        fakes += 1;
                    }
                }
                Ok(MessageType::Data) => {
                    chunks += 1;
                    last_chunk = Some(d.clone());
                }
                _ => {}
            }
            let _ = window.ingest(now, &d);
            while let Some(r) = window.poll_ready() {
                verified += u32::from(matches!(r, Ready::Data { .. }));
            }
        }
    }
    assert!(fakes > 10, "{fakes} forged chunks");
    assert_eq!(verified, chunks, "every real chunk verified");
}

/// What the publisher keyed by `[seed; 32]` sends in 200 ms of opaque
/// input, its MANIFESTs apart from the rest, and an empty window.
fn manifests_apart(seed: u8) -> (Window, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    use crate::wire::{MessageType, peek_type};

    let (mut publisher, window) = publisher_and_window(seed);
    let mut sent = Vec::new();
    for ms in 0..200u64 {
        publisher.handle_input(Time::from_micros(ms * 1000), &[ms as u8; 600]);
        while let Some(tx) = publisher.poll_transmit() {
            sent.push(tx.payload.to_vec());
        }
    }
    let is_manifest = |d: &Vec<u8>| peek_type(d) == Ok(MessageType::Manifest);
    let (manifests, rest) = sent.into_iter().partition(is_manifest);
    (window, manifests, rest)
}

/// Chunks and parity that came before their MANIFEST leave no deadline
/// behind once it verifies them: their owner is not woken half a second
/// later for nothing.
#[test]
fn a_verified_block_leaves_no_deadline_behind() {
    let (mut window, manifests, rest) = manifests_apart(3);
    let now = Time::from_micros(200_000);
    let pending = rest
        .iter()
        .filter(|d| window.ingest(now, d) == Ok(Ingested::Pending))
        .count();
    assert!(pending > 10, "{pending} pending");
    assert!(window.poll_timeout().is_some());
    // (The publisher sends a MANIFEST more than once.)
    let verified = manifests
        .iter()
        .filter(|m| window.ingest(now, m) == Ok(Ingested::Verified))
        .count();
    assert!(verified > 1, "{verified} verified");
    assert_eq!(window.poll_timeout(), None);
}

/// A block whose MANIFEST never comes keeps its deadline when the others'
/// MANIFESTs settle theirs: its chunks are dropped at it, as before.
#[test]
fn a_block_whose_manifest_never_comes_keeps_its_deadline() {
    let (mut window, manifests, rest) = manifests_apart(4);
    let now = Time::from_micros(200_000);
    for d in &rest {
        let _ = window.ingest(now, d);
    }
    // The first block's MANIFEST (and its copies) withheld: its chunks
    // hold the front of the queue.
    let first = manifests.first().expect("a MANIFEST").clone();
    for m in manifests.iter().filter(|m| **m != first) {
        let _ = window.ingest(now, m);
    }
    let deadline = window
        .poll_timeout()
        .expect("the withheld block's deadline");
    let missing = window.stats().manifest_missing;
    window.handle_timeout(deadline);
    assert!(window.stats().manifest_missing > missing);
}
