//! Any datagram through `Message::parse`: whatever is accepted re-encodes to
//! exactly the input and parses again to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::wire::{MAX_DATAGRAM_LEN, Message, peek_type};

fuzz_target!(|bytes: &[u8]| {
    let parsed = Message::parse(bytes);
    if let Err(e) = peek_type(bytes) {
        assert_eq!(parsed, Err(e), "header errors come from peek_type");
    }
    let Ok(msg) = parsed else { return };
    assert!(bytes.len() <= MAX_DATAGRAM_LEN);
    assert_eq!(msg.buffer_len(), bytes.len());
    let mut buf = [0u8; MAX_DATAGRAM_LEN];
    let len = msg.emit(&mut buf).expect("buffer_len fits a datagram");
    assert_eq!(&buf[..len], bytes, "an accepted datagram is canonical");
    assert_eq!(Message::parse(&buf[..len]), Ok(msg));
});
