//! Tests of ingest from shared buffers ([`Window::ingest_shared`]): a slot
//! keeps the buffer it is handed, never writes into one anyone else
//! holds, and a shared datagram is judged exactly as a borrowed one.

use std::sync::Arc;

use super::*;
use crate::integrity::{PublisherKey, Rejection};
use crate::publisher::{Publisher, PublisherConfig};
use crate::wire::{MessageType, peek_type};

/// Every datagram a publisher of opaque data sends in `ms` milliseconds,
/// with when it was sent.
fn published(ms: u64) -> (StreamKey, Vec<(Time, Vec<u8>)>) {
    let key = PublisherKey::from_seed([9; 32]);
    let stream = StreamKey::new(key.stream_id()).expect("key");
    let config = PublisherConfig {
        codec: crate::wire::Codec::Opaque,
        ..PublisherConfig::default()
    };
    let relay = "127.0.0.1:7400".parse().expect("addr");
    let mut publisher = Publisher::new(key, config, vec![relay], Time::ZERO).expect("publisher");
    let mut out = Vec::new();
    for ms in 0..ms {
        let now = Time::from_micros(ms * 1000);
        publisher.handle_input(now, &[ms as u8; 600]);
        while let Some(tx) = publisher.poll_transmit() {
            out.push((now, tx.payload.to_vec()));
        }
    }
    (stream, out)
}

/// The smallest window: it wraps soonest.
fn small_window(key: StreamKey) -> Window {
    let config = WindowConfig {
        capacity: 0,
        ..WindowConfig::default()
    };
    Window::new(key, config)
}

fn seq_of(datagram: &[u8]) -> Option<u64> {
    (peek_type(datagram) == Ok(MessageType::Data))
        .then(|| crate::wire::DataView::new_checked(datagram).ok())
        .flatten()
        .map(|v| v.fields().seq)
}

#[test]
fn a_shared_chunk_is_kept_as_it_came_not_copied() {
    let (key, sent) = published(300);
    let mut window = small_window(key);
    let mut held = Vec::new();
    for (now, d) in sent {
        let buf = SharedBuf::new(d);
        window.ingest_shared(now, &buf, true).expect("accepted");
        if let Some(seq) = seq_of(&buf) {
            held.push((seq, buf));
        }
    }
    assert!(held.len() > 20, "{} chunks", held.len());
    let newest = window.newest_seq().expect("chunks");
    for (seq, buf) in held.iter().filter(|(s, _)| *s + 64 > newest) {
        let kept = window.chunk_buf(*seq).expect("verified");
        assert!(
            Arc::ptr_eq(kept, buf),
            "chunk {seq} is the buffer handed in"
        );
    }
}

/// The slot-reuse rule: a buffer the window adopted is still someone
/// else's too, so when its slot is reused (by a copy, a rebuild or
/// another shared buffer) the window lets go of it and never writes
/// into it.
#[test]
fn an_adopted_buffer_is_never_written_while_another_holder_has_it() {
    let (key, sent) = published(3000);
    let mut window = small_window(key);
    let capacity = window.chunks.len() as u64;
    // The first chunks come shared and are kept here too, with a
    // snapshot of their bytes; everything after comes borrowed, and
    // then, past a second wrap, shared again.
    let mut kept: Vec<(u64, SharedBuf, Vec<u8>)> = Vec::new();
    let mut wraps = 0;
    for (i, (now, d)) in sent.into_iter().enumerate() {
        let seq = seq_of(&d);
        let early = seq.is_none_or(|s| s < capacity);
        let late = seq.is_some_and(|s| s >= 2 * capacity);
        if early || late {
            let buf = SharedBuf::new(d);
            let _ = window.ingest_shared(now, &buf, true);
            if let Some(s) = seq.filter(|_| early && i % 2 == 0) {
                kept.push((s, SharedBuf::clone(&buf), buf.to_vec()));
            }
        } else {
            let _ = window.ingest(now, &d);
        }
        wraps = wraps.max(seq.map_or(0, |s| s / capacity));
    }
    assert!(wraps >= 3, "the window wrapped {wraps} times");
    assert!(kept.len() > 10);
    for (seq, buf, before) in &kept {
        assert_eq!(buf.as_slice(), before.as_slice(), "chunk {seq} unchanged");
        assert_eq!(Arc::strong_count(buf), 1, "chunk {seq} let go of");
    }
}

/// Whatever is wrong with a datagram, the shared path gives the answer the
/// borrowed one does, and keeps nothing it refused.
#[test]
fn a_malformed_shared_datagram_is_rejected_like_a_slice() {
    let (key, sent) = published(400);
    let mut borrowed = small_window(key.clone());
    let mut shared = small_window(key);
    let (half, rest) = sent.split_at(sent.len() / 2);
    for (now, d) in half {
        let a = borrowed.ingest(*now, d);
        let b = shared.ingest_shared(*now, &SharedBuf::new(d.clone()), true);
        assert_eq!(a, b);
    }
    let now = half.last().expect("sent").0;
    let chunk = |held: bool| {
        rest.iter()
            .chain(half)
            .map(|(_, d)| d)
            .find(|d| seq_of(d).is_some_and(|s| borrowed.chunk(s).is_some() == held))
            .expect("a chunk")
            .clone()
    };
    let flip_last = |mut d: Vec<u8>| {
        if let Some(b) = d.last_mut() {
            *b ^= 1;
        }
        d
    };
    let new = chunk(false);
    let mut wrong_type = new.clone();
    wrong_type[1] = 0xee;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", new[..new.len() / 2].to_vec()),
        ("header only", new[..8.min(new.len())].to_vec()),
        ("unknown type", wrong_type),
        ("altered new chunk", flip_last(new.clone())),
        ("altered held chunk", flip_last(chunk(true))),
    ];
    for (name, bad) in cases {
        let a = borrowed.ingest_from(now, &bad, false);
        let buf = SharedBuf::new(bad);
        let b = shared.ingest_shared(now, &buf, false);
        assert!(a.is_err(), "{name}: refused ({a:?})");
        assert_eq!(a, b, "{name}: the same answer");
        assert_eq!(Arc::strong_count(&buf), 1, "{name}: nothing kept");
        if name == "altered held chunk" {
            assert_eq!(b, Err(Rejection::Corrupted), "checked against the held one");
        }
    }
    assert_eq!(
        shared.ingest_shared(now, &SharedBuf::new(new.clone()), true),
        borrowed.ingest(now, &new)
    );
}
