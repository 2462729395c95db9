//! A window for one fixed stream, fed a sequence of datagrams.
//!
//! Input: records of `[control u8][len u16 BE][len bytes]`, the last one
//! cut short if the input ends. Per record, bits 2..8 of the control byte
//! advance the clock by that many 10 ms steps; then the datagram is
//! ingested; then, if bit 1 is set, timers run. With bit 0 set, a MANIFEST
//! or DESCRIPTOR is first signed with the stream's key, a MANIFEST after its
//! hashes are replaced by those of the DATA and PARITY datagrams seen so far
//! for its block: the input speaks as a (possibly hostile) publisher, so
//! everything past the signature and hash checks is within reach.
//!
//! After every step the window must hand out only what verifies: each
//! chunk, manifest, parity symbol and descriptor it reports is checked
//! against the key and the signed manifest.

#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shoal_proto::Time;
use shoal_proto::integrity::{Hash, PublisherKey, StreamKey, chunk_hash, parity_hash};
use shoal_proto::window::{Ready, Window, WindowConfig};
use shoal_proto::wire::{
    Data, DataView, HASH_LEN, MANIFEST_HEADER_LEN, Manifest, ManifestView, MessageType, Parity,
    ParityView, SIGNATURE_LEN, peek_type,
};

/// Seed of the stream's key; `examples/gen_corpus.rs` publishes with it.
const SEED: [u8; 32] = [1; 32];
/// Clock at the first record; the corpus generator starts there too.
const T0: Time = Time::from_micros(1_700_000_000_000_000);

static PUBLISHER: LazyLock<PublisherKey> = LazyLock::new(|| PublisherKey::from_seed(SEED));
static KEY: LazyLock<StreamKey> =
    LazyLock::new(|| StreamKey::new(PUBLISHER.stream_id()).expect("a valid key"));

/// Splits the input into `(control, datagram)` records.
fn records(mut input: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let [control, hi, lo, rest @ ..] = input else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (datagram, tail) = rest.split_at(len);
        input = tail;
        Some((*control, datagram))
    })
}

/// Everything the window reports must verify.
fn check_ready(window: &mut Window) {
    while let Some(ready) = window.poll_ready() {
        match ready {
            Ready::Data { seq, .. } => check_chunk(window, seq),
            Ready::Manifest { block } => {
                if let Some(view) = manifest(window, block) {
                    assert_eq!(view.fields().block, block);
                }
            }
            Ready::Parity { block, index } => check_parity(window, block, index),
            Ready::AwaitingManifest { .. } => {}
            Ready::Reset { floor_seq, .. } => {
                assert!(window.newest_seq().is_none_or(|n| n >= floor_seq));
                assert!(window.oldest_seq() >= floor_seq);
            }
        }
    }
    if let Some((descriptor, bytes)) = window.descriptor() {
        KEY.verify_descriptor(bytes, descriptor)
            .expect("a held descriptor verifies");
    }
    if let Some(seq) = window.latest_keyframe() {
        let chunk = window.chunk(seq).expect("latest_keyframe is held");
        assert!(chunk.keyframe);
    }
    let _ = (window.newest_seq(), window.oldest_seq(), window.stats());
}

/// The held manifest of `block`, which must verify.
fn manifest(window: &Window, block: u64) -> Option<ManifestView<'_>> {
    let bytes = window.manifest(block)?;
    let view = ManifestView::new_checked(bytes).expect("a held manifest parses");
    KEY.verify_manifest(&view)
        .expect("a held manifest verifies");
    let (first_seq, k) = window
        .block_span(block)
        .expect("a held manifest has a span");
    assert_eq!((view.fields().first_seq, view.fields().k), (first_seq, k));
    Some(view)
}

fn check_chunk(window: &Window, seq: u64) {
    let Some(chunk) = window.chunk(seq) else {
        return;
    };
    let view = DataView::new_checked(chunk.datagram).expect("a held chunk parses");
    let data = view.fields();
    assert_eq!(data.seq, seq);
    assert_eq!(data.stream, window.stream());
    assert_eq!(chunk.payload(), data.payload);
    assert_eq!(chunk.keyframe, data.flags.keyframe());
    if let Some(manifest) = manifest(window, data.block) {
        let m = manifest.fields();
        assert!(m.contains(seq), "a chunk lies inside its block");
        let hash = chunk_hash(data.flags.bits(), data.timestamp_us, data.payload);
        assert_eq!(m.data_hash(usize::from(data.index)), Some(&hash[..]));
    }
}

fn check_parity(window: &Window, block: u64, index: u8) {
    let Some(bytes) = window.parity(block, index) else {
        return;
    };
    let view = ParityView::new_checked(bytes).expect("held parity parses");
    let p = view.fields();
    assert_eq!((p.block, p.index), (block, index));
    if let Some(manifest) = manifest(window, block) {
        let hash = parity_hash(p.symbol);
        assert_eq!(
            manifest.fields().parity_hash(usize::from(index)),
            Some(&hash[..])
        );
    }
}

/// The hashes of the last DATA and PARITY datagrams seen, by block, parity
/// or not, and index: what a publisher would sign into the block's manifest.
#[derive(Default)]
struct Seen(HashMap<(u64, bool, u8), Hash>);

impl Seen {
    fn note(&mut self, datagram: &[u8]) {
        if let Ok(d) = Data::parse(datagram) {
            let hash = chunk_hash(d.flags.bits(), d.timestamp_us, d.payload);
            self.0.insert((d.block, false, d.index), hash);
        } else if let Ok(p) = Parity::parse(datagram) {
            self.0
                .insert((p.block, true, p.index), parity_hash(p.symbol));
        }
    }

    /// Signs `datagram` (a MANIFEST or DESCRIPTOR) into `buf` as the
    /// publisher would, a MANIFEST's hashes first replaced by those seen
    /// for its block.
    fn forge<'b>(&self, datagram: &[u8], buf: &'b mut Vec<u8>) -> &'b [u8] {
        buf.clear();
        buf.extend_from_slice(datagram);
        if let Ok(m) = Manifest::parse(datagram) {
            let k = usize::from(m.k);
            let slots = (0..m.k)
                .map(|i| (false, i, usize::from(i)))
                .chain((0..m.m).map(|i| (true, i, k + usize::from(i))));
            for (parity, index, at) in slots {
                if let Some(hash) = self.0.get(&(m.block, parity, index)) {
                    let at = MANIFEST_HEADER_LEN + at * HASH_LEN;
                    buf[at..at + HASH_LEN].copy_from_slice(hash);
                }
            }
        }
        PUBLISHER.sign_trailer(buf);
        buf
    }
}

fuzz_target!(|input: &[u8]| {
    // The smallest window (twice the largest block) wraps after 128 chunks
    // and 32 blocks, so eviction is within a short input's reach.
    let config = WindowConfig {
        capacity: 128,
        ..WindowConfig::default()
    };
    let mut window = Window::new(KEY.clone(), config);
    let mut now = T0;
    let mut seen = Seen::default();
    let mut buf = Vec::new();
    for (control, datagram) in records(input) {
        now += Duration::from_millis(10 * u64::from(control >> 2));
        seen.note(datagram);
        let signed = matches!(
            peek_type(datagram),
            Ok(MessageType::Manifest | MessageType::Descriptor)
        );
        let bytes = if control & 1 != 0 && signed && datagram.len() >= SIGNATURE_LEN {
            seen.forge(datagram, &mut buf)
        } else {
            datagram
        };
        let _ = window.ingest(now, bytes);
        check_ready(&mut window);
        if control & 2 != 0 {
            window.handle_timeout(now);
            assert!(window.poll_timeout().is_none_or(|t| t > now));
            check_ready(&mut window);
        }
    }
    window.handle_timeout(now + Duration::from_secs(3600));
    check_ready(&mut window);
});
