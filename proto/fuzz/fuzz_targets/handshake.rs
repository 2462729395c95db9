//! The handshake decoders (HELLO, CHALLENGE, SUBSCRIBE, ACCEPT, REJECT):
//! each one gets every input, and whatever one accepts is canonical.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::wire::{
    Accept, BufferTooSmall, Challenge, Hello, MAX_DATAGRAM_LEN, Reject, Subscribe,
};

/// `emit` must write exactly `bytes` back.
fn canonical(bytes: &[u8], emit: impl FnOnce(&mut [u8]) -> Result<usize, BufferTooSmall>) {
    let mut buf = [0u8; MAX_DATAGRAM_LEN];
    let len = emit(&mut buf).expect("a parsed message fits a datagram");
    assert_eq!(&buf[..len], bytes, "an accepted datagram is canonical");
}

fuzz_target!(|bytes: &[u8]| {
    if let Ok(m) = Hello::parse(bytes) {
        assert_eq!(m.buffer_len(), bytes.len());
        canonical(bytes, |out| m.emit(out));
    }
    if let Ok(m) = Challenge::parse(bytes) {
        canonical(bytes, |out| m.emit(out));
    }
    if let Ok(m) = Subscribe::parse(bytes) {
        assert_eq!(m.buffer_len(), bytes.len());
        canonical(bytes, |out| m.emit(out));
    }
    if let Ok(m) = Accept::parse(bytes) {
        assert_eq!(m.buffer_len(), bytes.len());
        canonical(bytes, |out| m.emit(out));
    }
    if let Ok(m) = Reject::parse(bytes) {
        canonical(bytes, |out| m.emit(out));
    }
});
