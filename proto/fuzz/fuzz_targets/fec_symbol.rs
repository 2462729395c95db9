//! FEC symbols: `read_symbol` never panics, and a symbol it accepts is
//! exactly what `write_symbol` makes of its fields.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::fec::{read_symbol, symbol_len, write_symbol};

fuzz_target!(|bytes: &[u8]| {
    let Ok(symbol) = read_symbol(bytes) else {
        return;
    };
    assert!(symbol.payload.len() <= bytes.len());
    let mut again = vec![0xFF; bytes.len()];
    write_symbol(
        symbol.flags,
        symbol.timestamp_us,
        symbol.payload,
        &mut again,
    )
    .expect("an accepted symbol can be written back");
    assert_eq!(again, bytes, "an accepted symbol is canonical");
    assert!(symbol_len(symbol.payload.len()) <= bytes.len() + 1);
});
