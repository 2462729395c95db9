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

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Fixer, KEY, T0, records};
use libfuzzer_sys::fuzz_target;
use shoal_proto::integrity::{chunk_hash, parity_hash};
use shoal_proto::window::{Ready, Window, WindowConfig};
use shoal_proto::wire::{DataView, ManifestView, ParityView};

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

fuzz_target!(|input: &[u8]| {
    // The smallest window (twice the largest block) wraps after 128 chunks
    // and 32 blocks, so eviction is within a short input's reach.
    let config = WindowConfig {
        capacity: 128,
        ..WindowConfig::default()
    };
    let mut window = Window::new(KEY.clone(), config);
    let mut now = T0;
    let mut fixer = Fixer::default();
    // The window has no peers: the fixer only signs as the publisher.
    let from = SocketAddr::from(([192, 0, 2, 1], 7400));
    for (control, datagram) in records(input) {
        now += Duration::from_millis(10 * u64::from(control >> 2));
        let bytes = fixer.fix(from, control & 1 != 0, datagram);
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
