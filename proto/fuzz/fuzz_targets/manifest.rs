//! MANIFEST: `Manifest::parse` and `ManifestView` agree, what they accept is
//! canonical, every accessor is total, and signature checking (under a
//! fixed key) never panics.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use shoal_proto::integrity::{PublisherKey, StreamKey};
use shoal_proto::wire::{HASH_LEN, MAX_DATAGRAM_LEN, Manifest, ManifestView, SIGNATURE_LEN};

static KEY: LazyLock<StreamKey> = LazyLock::new(|| {
    StreamKey::new(PublisherKey::from_seed([1; 32]).stream_id()).expect("a valid key")
});

fuzz_target!(|bytes: &[u8]| {
    let parsed = Manifest::parse(bytes);
    let view = ManifestView::new_checked(bytes);
    assert_eq!(view.map(|v| *v.fields()), parsed);
    let (Ok(manifest), Ok(view)) = (parsed, view) else {
        return;
    };
    assert_eq!(view.as_bytes(), bytes);
    assert_eq!(view.signed_bytes(), &bytes[..bytes.len() - SIGNATURE_LEN]);

    let (k, m) = (usize::from(manifest.k), usize::from(manifest.m));
    for i in 0..=64 + 16 {
        assert_eq!(manifest.data_hash(i).is_some(), i < k);
        assert_eq!(manifest.parity_hash(i).is_some(), i < m);
        if let Some(h) = manifest.data_hash(i) {
            assert_eq!(h.len(), HASH_LEN);
        }
    }
    // A block may claim sequence numbers past u64::MAX: parse does not
    // refuse one, so only the representable ones are checked.
    for d in [0, 1, 63, 64, u64::MAX] {
        if let Some(seq) = manifest.first_seq.checked_add(d) {
            assert_eq!(manifest.contains(seq), d < manifest.k.into());
        }
    }
    let _ = KEY.verify_manifest(&view);

    let mut buf = [0u8; MAX_DATAGRAM_LEN];
    let len = manifest
        .emit(&mut buf)
        .expect("a parsed MANIFEST fits a datagram");
    assert_eq!(len, manifest.buffer_len());
    assert_eq!(&buf[..len], bytes);
});
