//! Access tokens (SPEC §11.10): parsing and checking any bytes or text
//! never panics; a token that passes is what it says, and the printable
//! form is canonical.
//!
//! Input: a mode byte, then the token. Mode bit 0 clear: the rest is token
//! bytes; set: it is the printable text. Bit 1 checks it at a late clock.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::integrity::PublisherKey;
use shoal_proto::token::{self, Scope, TOKEN_LEN, Token};

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let stream = PublisherKey::from_seed([1; 32]).stream_id();
    let bytes = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let text = String::from_utf8_lossy(rest);
        match token::from_text(&text) {
            Ok(bytes) => {
                assert_eq!(token::to_text(&bytes), text.trim(), "canonical text");
                bytes
            }
            Err(_) => return,
        }
    };
    let now = if mode & 2 == 0 { 0 } else { 1 << 40 };
    let parsed = Token::parse(&bytes);
    if parsed.is_ok() {
        assert_eq!(bytes.len(), TOKEN_LEN);
    }
    if let Ok(t) = Token::verify(&bytes, &stream, Scope::WATCH, now) {
        assert_eq!(parsed, Ok(t));
        assert_eq!(t.stream, stream);
        assert!(now < t.expires);
        assert!(t.scope.contains(Scope::WATCH));
    }
});
