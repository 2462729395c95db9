//! The FEC symbol of a chunk: the fixed-size form a chunk takes inside a
//! block's Reed-Solomon code, so that a lost chunk is rebuilt whole, header
//! fields included.
//!
//! ```text
//!  0       1                               9              11
//! +-------+-------------------------------+---------------+----------+-------------+
//! | flags | timestamp u64 (publisher, us) | len u16       | payload  | zero padding|
//! +-------+-------------------------------+---------------+----------+-------------+
//!                                                         |<- len -->|
//! |<------------------------------- symbol_len ------------------------------------>|
//! ```
//!
//! Integers are big-endian. Every symbol of a block has the same length,
//! [`symbol_len`] of the block's largest payload.

use super::FecError;

/// Bytes before the payload: flags (1), timestamp (8), payload length (2).
pub const SYMBOL_HEADER_LEN: usize = 11;

/// Longest symbol: one whose payload is as long as the `len` field allows.
pub const MAX_SYMBOL_LEN: usize = symbol_len(u16::MAX as usize);

/// Symbol length of a block whose largest payload is `max_payload_len`
/// bytes: [`SYMBOL_HEADER_LEN`] plus that payload, rounded up to an even
/// number.
///
/// Even because the wire format says so (SPEC §5.2: a rule kept from v1's
/// first code, whose field elements were 16 bits; the byte-wise code now
/// used takes any length); the header makes the result non-zero. Payloads longer than `u16::MAX` cannot be written
/// (see [`write_symbol`]); for absurd lengths the result saturates instead of
/// overflowing.
pub const fn symbol_len(max_payload_len: usize) -> usize {
    let unpadded = SYMBOL_HEADER_LEN.saturating_add(max_payload_len);
    unpadded.saturating_add(unpadded & 1) & !1
}

/// A chunk as read back from its symbol; the payload borrows the symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Symbol<'a> {
    /// The chunk's flags byte.
    pub flags: u8,
    /// The chunk's publisher timestamp, microseconds.
    pub timestamp_us: u64,
    /// The chunk's payload.
    pub payload: &'a [u8],
}

/// Writes the symbol of a chunk into `out`, whose length is the block's
/// symbol length: header, payload, then zeros to the end of `out`.
///
/// Fails, leaving `out` untouched, with [`FecError::SymbolTooShort`] if
/// `out` cannot hold the header and [`FecError::PayloadTooLong`] if the
/// payload does not fit after it (or exceeds the `u16` length field).
pub fn write_symbol(
    flags: u8,
    timestamp_us: u64,
    payload: &[u8],
    out: &mut [u8],
) -> Result<(), FecError> {
    let symbol_len = out.len();
    let (header, rest) = out
        .split_first_chunk_mut::<SYMBOL_HEADER_LEN>()
        .ok_or(FecError::SymbolTooShort { len: symbol_len })?;
    let too_long = FecError::PayloadTooLong {
        len: payload.len(),
        capacity: rest.len().min(usize::from(u16::MAX)),
    };
    let len = u16::try_from(payload.len()).map_err(|_| too_long)?;
    let (body, padding) = rest.split_at_mut_checked(payload.len()).ok_or(too_long)?;

    let [t0, t1, t2, t3, t4, t5, t6, t7] = timestamp_us.to_be_bytes();
    let [l0, l1] = len.to_be_bytes();
    *header = [flags, t0, t1, t2, t3, t4, t5, t6, t7, l0, l1];
    body.copy_from_slice(payload);
    padding.fill(0);
    Ok(())
}

/// Reads a symbol back: flags, timestamp and the payload its `len` names.
///
/// Fails with [`FecError::SymbolTooShort`] if there is no whole header,
/// [`FecError::PayloadOverrun`] if `len` reaches past the end, and
/// [`FecError::NonZeroPadding`] if a byte after the payload is not zero:
/// the writer zeroes it, so a rebuilt symbol with non-zero padding is
/// corrupt.
pub fn read_symbol(symbol: &[u8]) -> Result<Symbol<'_>, FecError> {
    let (header, rest) = symbol
        .split_first_chunk::<SYMBOL_HEADER_LEN>()
        .ok_or(FecError::SymbolTooShort { len: symbol.len() })?;
    let [flags, t0, t1, t2, t3, t4, t5, t6, t7, l0, l1] = *header;
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    let (payload, padding) = rest.split_at_checked(len).ok_or(FecError::PayloadOverrun {
        len,
        capacity: rest.len(),
    })?;
    if padding.iter().any(|&b| b != 0) {
        return Err(FecError::NonZeroPadding);
    }
    Ok(Symbol {
        flags,
        timestamp_us: u64::from_be_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn symbol_len_is_header_plus_payload_rounded_up_to_even() {
        assert_eq!(symbol_len(0), 12);
        assert_eq!(symbol_len(1), 12);
        assert_eq!(symbol_len(2), 14);
        assert_eq!(symbol_len(1316), 1328);
        assert_eq!(symbol_len(1380), 1392);
        assert_eq!(MAX_SYMBOL_LEN, 65_546);
        assert_eq!(symbol_len(usize::MAX), usize::MAX - 1);
        assert_eq!(symbol_len(usize::MAX - 11), usize::MAX - 1);
    }

    #[test]
    fn layout_is_as_documented() -> Result<(), FecError> {
        let mut out = [0xAA; 16];
        write_symbol(0x81, 0x0102_0304_0506_0708, b"abc", &mut out)?;
        assert_eq!(
            out,
            [0x81, 1, 2, 3, 4, 5, 6, 7, 8, 0, 3, b'a', b'b', b'c', 0, 0]
        );
        Ok(())
    }

    #[test]
    fn write_needs_room_for_the_header() {
        let mut out = [0; SYMBOL_HEADER_LEN - 1];
        assert_eq!(
            write_symbol(0, 0, b"", &mut out),
            Err(FecError::SymbolTooShort { len: 10 })
        );
    }

    #[test]
    fn write_needs_room_for_the_payload() {
        let mut out = [0x55; 14];
        assert_eq!(
            write_symbol(0, 0, b"four", &mut out),
            Err(FecError::PayloadTooLong {
                len: 4,
                capacity: 3
            })
        );
        assert_eq!(out, [0x55; 14], "a failed write leaves the buffer alone");
    }

    #[test]
    fn write_refuses_payloads_beyond_the_len_field() {
        let payload = vec![0; usize::from(u16::MAX) + 1];
        let mut out = vec![0; symbol_len(payload.len())];
        assert_eq!(
            write_symbol(0, 0, &payload, &mut out),
            Err(FecError::PayloadTooLong {
                len: payload.len(),
                capacity: usize::from(u16::MAX)
            })
        );
    }

    #[test]
    fn largest_payload_round_trips() -> Result<(), FecError> {
        let payload = vec![7; usize::from(u16::MAX)];
        let mut out = vec![0; MAX_SYMBOL_LEN];
        write_symbol(1, 2, &payload, &mut out)?;
        assert_eq!(read_symbol(&out)?.payload, &payload[..]);
        Ok(())
    }

    #[test]
    fn read_needs_a_whole_header() {
        assert_eq!(read_symbol(&[]), Err(FecError::SymbolTooShort { len: 0 }));
        assert_eq!(
            read_symbol(&[0; 10]),
            Err(FecError::SymbolTooShort { len: 10 })
        );
    }

    #[test]
    fn read_refuses_len_past_the_end() {
        let mut symbol = [0; 14];
        symbol[10] = 4;
        assert_eq!(
            read_symbol(&symbol),
            Err(FecError::PayloadOverrun {
                len: 4,
                capacity: 3
            })
        );
    }

    #[test]
    fn read_refuses_nonzero_padding() {
        let mut symbol = [0; 14];
        symbol[10] = 2;
        symbol[13] = 1;
        assert_eq!(read_symbol(&symbol), Err(FecError::NonZeroPadding));
        symbol[13] = 0;
        assert!(read_symbol(&symbol).is_ok());
    }

    proptest! {
        #[test]
        fn write_then_read_round_trips(
            flags: u8,
            timestamp_us: u64,
            payload in proptest::collection::vec(any::<u8>(), 0..=1400),
            extra in 0..=64usize,
            garbage: u8,
        ) {
            let len = symbol_len(payload.len()) + extra;
            let mut out = vec![garbage; len];
            write_symbol(flags, timestamp_us, &payload, &mut out)?;
            let symbol = read_symbol(&out)?;
            prop_assert_eq!(symbol, Symbol { flags, timestamp_us, payload: &payload });
        }

        #[test]
        fn read_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..=64)) {
            if let Ok(symbol) = read_symbol(&bytes) {
                let mut again = vec![0xFF; bytes.len()];
                write_symbol(symbol.flags, symbol.timestamp_us, symbol.payload, &mut again)?;
                prop_assert_eq!(again, bytes, "an accepted symbol is canonical");
            }
        }
    }
}
