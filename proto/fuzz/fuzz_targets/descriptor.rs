//! DESCRIPTOR: what `Descriptor::parse` accepts is canonical, and
//! signature checking (under a fixed key) never panics.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use shoal_proto::integrity::{PublisherKey, StreamKey};
use shoal_proto::wire::{DESCRIPTOR_LEN, Descriptor};

static KEY: LazyLock<StreamKey> = LazyLock::new(|| {
    StreamKey::new(PublisherKey::from_seed([1; 32]).stream_id()).expect("a valid key")
});

fuzz_target!(|bytes: &[u8]| {
    let Ok(descriptor) = Descriptor::parse(bytes) else {
        return;
    };
    assert_eq!(bytes.len(), DESCRIPTOR_LEN);
    for seq in [0, 1, 63, 64, u64::MAX] {
        assert!(descriptor.club_of(seq) < descriptor.clubs);
    }
    let _ = KEY.verify_descriptor(bytes, &descriptor);

    let mut buf = [0u8; DESCRIPTOR_LEN];
    assert_eq!(descriptor.emit(&mut buf), Ok(DESCRIPTOR_LEN));
    assert_eq!(&buf[..], bytes);
});
