//! PARITY: `Parity::parse` and `ParityView` agree, and what they accept is
//! canonical.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::wire::{MAX_DATAGRAM_LEN, Parity, ParityView};

fuzz_target!(|bytes: &[u8]| {
    let parsed = Parity::parse(bytes);
    let view = ParityView::new_checked(bytes);
    assert_eq!(view.map(|v| *v.fields()), parsed);
    let Ok(parity) = parsed else { return };
    assert_eq!(view.map(|v| v.as_bytes()), Ok(bytes));
    assert!(parity.index < parity.m);

    let mut buf = [0u8; MAX_DATAGRAM_LEN];
    let len = parity
        .emit(&mut buf)
        .expect("a parsed PARITY fits a datagram");
    assert_eq!(len, parity.buffer_len());
    assert_eq!(&buf[..len], bytes);
});
