//! The session decoders (KEEPALIVE, NACK, LEAVE, PEERS): each one gets
//! every input, and whatever one accepts is canonical.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::wire::{BufferTooSmall, Keepalive, Leave, MAX_DATAGRAM_LEN, Nack, Peers};

/// `emit` must write exactly `bytes` back.
fn canonical(bytes: &[u8], emit: impl FnOnce(&mut [u8]) -> Result<usize, BufferTooSmall>) {
    let mut buf = [0u8; MAX_DATAGRAM_LEN];
    let len = emit(&mut buf).expect("a parsed message fits a datagram");
    assert_eq!(&buf[..len], bytes, "an accepted datagram is canonical");
}

fuzz_target!(|bytes: &[u8]| {
    if let Ok(m) = Keepalive::parse(bytes) {
        assert_eq!(m.buffer_len(), bytes.len());
        canonical(bytes, |out| m.emit(out));
    }
    if let Ok(m) = Nack::parse(bytes) {
        assert_eq!(m.buffer_len(), bytes.len());
        assert!(!m.entries().is_empty());
        assert!(m.entries().iter().all(|e| e.len >= 1));
        canonical(bytes, |out| m.emit(out));
    }
    if let Ok(m) = Leave::parse(bytes) {
        assert_eq!(m.buffer_len(), bytes.len());
        canonical(bytes, |out| m.emit(out));
    }
    if let Ok(m) = Peers::parse(bytes) {
        assert_eq!(m.buffer_len(), bytes.len());
        canonical(bytes, |out| m.emit(out));
    }
});
