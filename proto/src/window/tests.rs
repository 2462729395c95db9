//! Regression tests for the window.

use super::*;
use crate::integrity::PublisherKey;
use crate::wire::{HASH_LEN, Manifest, SIGNATURE_LEN};

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
    for first_seq in [u64::MAX, u64::MAX - 15, u64::MAX - 1] {
        let man = Manifest {
            k: 16,
            m: 4,
            symbol_len: 1330,
            stream,
            block: 3,
            first_seq,
            hashes: &hashes,
            signature: [0; SIGNATURE_LEN],
        };
        let mut buf = vec![0; man.buffer_len()];
        let n = man.emit(&mut buf).expect("emit");
        buf.truncate(n);
        key.sign_trailer(&mut buf);
        assert_eq!(
            window.ingest(Time::from_micros(1), &buf),
            Err(Rejection::Malformed(DecodeError::Field("first_seq"))),
            "first_seq {first_seq}"
        );
    }
    // The last block that fits is fine.
    let man = Manifest {
        k: 16,
        m: 4,
        symbol_len: 1330,
        stream,
        block: 3,
        first_seq: u64::MAX - 16,
        hashes: &hashes,
        signature: [0; SIGNATURE_LEN],
    };
    let mut buf = vec![0; man.buffer_len()];
    let n = man.emit(&mut buf).expect("emit");
    buf.truncate(n);
    key.sign_trailer(&mut buf);
    assert_eq!(
        window.ingest(Time::from_micros(1), &buf),
        Ok(Ingested::Verified)
    );
    window.handle_timeout(Time::from_micros(10_000_000));
}
