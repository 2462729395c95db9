//! The publisher's side: parity symbols of a block.

use super::codecs::Codecs;
use super::{FecError, MAX_M, check_block, check_symbol_len};

/// Computes a block's parity symbols, reusing its codecs and parity
/// buffers from block to block.
#[derive(Debug, Default)]
pub struct Encoder {
    codecs: Codecs,
    /// Up to [`MAX_M`] parity buffers, each as long as the longest symbol
    /// seen.
    parity: Vec<Vec<u8>>,
}

impl Encoder {
    /// An encoder; its codec and buffers are allocated by the first block.
    pub const fn new() -> Self {
        Self {
            codecs: Codecs::new(),
            parity: Vec::new(),
        }
    }

    /// Computes the `m` parity symbols of the block whose data symbols are
    /// `originals` (so `k = originals.len()`), passing each to `emit` with
    /// its index `0..m`, in order. The parity symbols have the data symbols'
    /// length.
    ///
    /// The data symbols must all have the same non-zero even length, as
    /// [`super::write_symbol`] into [`super::symbol_len`] bytes makes them.
    /// With `m = 0` the block is checked and nothing is emitted. On error
    /// nothing is emitted.
    pub fn encode<T: AsRef<[u8]>>(
        &mut self,
        originals: &[T],
        m: usize,
        mut emit: impl FnMut(usize, &[u8]),
    ) -> Result<(), FecError> {
        let k = originals.len();
        check_block(k, m)?;
        let symbol_len = originals.first().map_or(0, |s| s.as_ref().len());
        check_symbol_len(symbol_len)?;
        if let Some(got) = originals
            .iter()
            .map(|s| s.as_ref().len())
            .find(|&len| len != symbol_len)
        {
            return Err(FecError::ShardLengthMismatch {
                expected: symbol_len,
                got,
            });
        }
        if m == 0 {
            return Ok(());
        }

        let codec = self.codecs.get(k, m)?;
        if self.parity.len() < MAX_M {
            self.parity.resize_with(MAX_M, Vec::new);
        }
        // Views of the first `m` buffers, sized to the block (shrinking
        // keeps the capacity); the encode writes every byte of them.
        let mut parity: [&mut [u8]; MAX_M] = Default::default();
        for (view, symbol) in parity.iter_mut().zip(&mut self.parity[..m]) {
            symbol.resize(symbol_len, 0);
            *view = symbol;
        }
        codec.encode_sep(originals, &mut parity[..m])?;
        for (index, symbol) in parity[..m].iter().enumerate() {
            emit(index, symbol);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_block_shapes() {
        let mut encoder = Encoder::new();
        let none: [&[u8]; 0] = [];
        assert_eq!(
            encoder.encode(&none, 1, |_, _| {}),
            Err(FecError::BadParameters { k: 0, m: 1 })
        );
        let many = [[0u8; 12]; 65];
        assert_eq!(
            encoder.encode(&many, 1, |_, _| {}),
            Err(FecError::BadParameters { k: 65, m: 1 })
        );
        assert_eq!(
            encoder.encode(&many[..64], 17, |_, _| {}),
            Err(FecError::BadParameters { k: 64, m: 17 })
        );
    }

    #[test]
    fn refuses_zero_and_odd_symbol_lengths() {
        let mut encoder = Encoder::new();
        for (symbols, symbol_len) in [(vec![vec![]; 3], 0), (vec![vec![0u8; 13]; 3], 13)] {
            let mut emitted = 0;
            assert_eq!(
                encoder.encode(&symbols, 2, |_, _| emitted += 1),
                Err(FecError::InvalidSymbolLen { symbol_len })
            );
            assert_eq!(emitted, 0);
        }
    }

    #[test]
    fn refuses_symbols_of_different_lengths() {
        let mut encoder = Encoder::new();
        let symbols: [&[u8]; 3] = [&[0; 12], &[0; 12], &[0; 14]];
        assert_eq!(
            encoder.encode(&symbols, 2, |_, _| {}),
            Err(FecError::ShardLengthMismatch {
                expected: 12,
                got: 14
            })
        );
        // Checked even when there is no parity to compute.
        assert_eq!(
            encoder.encode(&symbols, 0, |_, _| {}),
            Err(FecError::ShardLengthMismatch {
                expected: 12,
                got: 14
            })
        );
    }

    #[test]
    fn no_parity_emits_nothing() {
        let mut encoder = Encoder::new();
        let mut emitted = 0;
        assert_eq!(
            encoder.encode(&[[1u8; 12]; 4], 0, |_, _| emitted += 1),
            Ok(())
        );
        assert_eq!(emitted, 0);
    }

    #[test]
    fn emits_m_parity_symbols_in_order() -> Result<(), FecError> {
        let mut encoder = Encoder::new();
        let mut emitted = Vec::new();
        encoder.encode(&[[1u8; 20]; 5], 3, |index, symbol| {
            emitted.push((index, symbol.len()));
        })?;
        assert_eq!(emitted, [(0, 20), (1, 20), (2, 20)]);
        Ok(())
    }
}
