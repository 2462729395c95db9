//! The session decoders (KEEPALIVE, NACK, LEAVE, PEERS, HAVE, MEMBER,
//! INTRODUCE, PUNCH): each one gets every input, and whatever one accepts
//! is canonical.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::wire::{
    BufferTooSmall, Have, Introduce, Keepalive, Leave, MAX_DATAGRAM_LEN, Member, Nack, Peers, Punch,
};

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
    if let Ok(m) = Have::parse(bytes) {
        assert_eq!(m.buffer_len(), bytes.len());
        // `holds` sees exactly the 64 chunks from `base`, at any `base`.
        assert_eq!(m.holds(m.base), m.mask & 1 == 1);
        if let Some(last) = m.base.checked_add(63) {
            assert_eq!(m.holds(last), m.mask >> 63 == 1);
        }
        if let Some(past) = m.base.checked_add(64) {
            assert!(!m.holds(past));
        }
        if let Some(below) = m.base.checked_sub(1) {
            assert!(!m.holds(below));
        }
        let _ = m.holds(u64::MAX);
        canonical(bytes, |out| m.emit(out));
    }
    if let Ok(m) = Member::parse(bytes) {
        assert_eq!(m.buffer_len(), bytes.len());
        canonical(bytes, |out| m.emit(out));
    }
    if let Ok(m) = Introduce::parse(bytes) {
        assert_eq!(m.buffer_len(), bytes.len());
        canonical(bytes, |out| m.emit(out));
    }
    if let Ok(m) = Punch::parse(bytes) {
        assert_eq!(m.buffer_len(), bytes.len());
        canonical(bytes, |out| m.emit(out));
    }
});
