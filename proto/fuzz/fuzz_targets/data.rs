//! DATA: `Data::parse` and `DataView` agree, and what they accept is
//! canonical.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::wire::{DATA_HEADER_LEN, Data, DataView, MAX_DATAGRAM_LEN};

fuzz_target!(|bytes: &[u8]| {
    let parsed = Data::parse(bytes);
    let view = DataView::new_checked(bytes);
    assert_eq!(view.map(|v| *v.fields()), parsed);
    let Ok(data) = parsed else { return };
    assert_eq!(view.map(|v| v.as_bytes()), Ok(bytes));
    assert_eq!(data.payload, &bytes[DATA_HEADER_LEN..]);
    let _ = (data.flags.keyframe(), data.flags.end_of_stream());

    let mut buf = [0u8; MAX_DATAGRAM_LEN];
    let len = data.emit(&mut buf).expect("a parsed DATA fits a datagram");
    assert_eq!(len, data.buffer_len());
    assert_eq!(&buf[..len], bytes);
});
