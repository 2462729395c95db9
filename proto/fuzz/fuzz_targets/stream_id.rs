//! Printable stream ids: parsing any text never panics, and an accepted id
//! prints as the lowercase form of what was parsed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::StreamId;
use shoal_proto::stream_id::STREAM_ID_TEXT_LEN;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let Ok(id) = text.parse::<StreamId>() else {
        return;
    };
    let printed = id.to_string();
    assert_eq!(printed.len(), STREAM_ID_TEXT_LEN);
    assert_eq!(printed, text.trim().to_ascii_lowercase());
    assert_eq!(printed.parse::<StreamId>(), Ok(id));
});
