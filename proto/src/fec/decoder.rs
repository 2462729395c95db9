//! The receiver's side: missing data symbols of a block, rebuilt.

use super::codecs::Codecs;
use super::{FecError, MAX_K, MAX_M, check_block, check_symbol_len};

/// Rebuilds a block's missing data symbols, reusing its codecs and symbol
/// buffers from block to block.
#[derive(Debug, Default)]
pub struct Decoder {
    codecs: Codecs,
    /// The block being decoded as the codec takes it: `k` data then `m`
    /// parity buffers, each with whether it holds a symbol that arrived (or,
    /// after the decode, one rebuilt). Grown to `MAX_K + MAX_M` by the first
    /// block; each buffer keeps the capacity of the longest symbol seen.
    shards: Vec<(Vec<u8>, bool)>,
}

impl Decoder {
    /// A decoder; its codec and buffers are allocated by the first block.
    pub const fn new() -> Self {
        Self {
            codecs: Codecs::new(),
            shards: Vec::new(),
        }
    }

    /// Rebuilds the data symbols missing from a block of `k` data and `m`
    /// parity symbols of `symbol_len` bytes, given the symbols that arrived
    /// as `(index, bytes)`: data symbols in `originals` (index `< k`), parity
    /// symbols in `parity` (index `< m`), in any order.
    ///
    /// Each rebuilt data symbol goes to `restored` with its index, in
    /// increasing index order; read it with [`super::read_symbol`]. With no
    /// data symbol missing, nothing is restored. With fewer than `k`
    /// symbols in all, the result is [`FecError::Unrecoverable`]. On any
    /// error nothing is restored.
    pub fn decode<T: AsRef<[u8]>>(
        &mut self,
        k: usize,
        m: usize,
        symbol_len: usize,
        originals: impl IntoIterator<Item = (usize, T)>,
        parity: impl IntoIterator<Item = (usize, T)>,
        mut restored: impl FnMut(usize, &[u8]),
    ) -> Result<(), FecError> {
        check_block(k, m)?;
        check_symbol_len(symbol_len)?;
        let check_len = |symbol: &[u8]| {
            if symbol.len() == symbol_len {
                Ok(())
            } else {
                Err(FecError::ShardLengthMismatch {
                    expected: symbol_len,
                    got: symbol.len(),
                })
            }
        };
        if self.shards.len() < MAX_K + MAX_M {
            self.shards.resize_with(MAX_K + MAX_M, Default::default);
        }
        let shards = &mut self.shards[..k + m];
        for (_, present) in shards.iter_mut() {
            *present = false;
        }

        let mut have_originals = Seen::default();
        for (index, symbol) in originals {
            let symbol = symbol.as_ref();
            if index >= k {
                return Err(FecError::OriginalIndexOutOfRange { index, k });
            }
            if !have_originals.insert(index) {
                return Err(FecError::DuplicateOriginal { index });
            }
            check_len(symbol)?;
            if m > 0 {
                take(&mut shards[index], symbol);
            }
        }
        let mut have_parity = Seen::default();
        for (index, symbol) in parity {
            let symbol = symbol.as_ref();
            if index >= m {
                return Err(FecError::ParityIndexOutOfRange { index, m });
            }
            if !have_parity.insert(index) {
                return Err(FecError::DuplicateParity { index });
            }
            check_len(symbol)?;
            take(&mut shards[k + index], symbol);
        }

        if have_originals.len() == k {
            return Ok(());
        }
        let have = have_originals.len() + have_parity.len();
        // With `m = 0` something missing is never recoverable.
        if have < k || m == 0 {
            return Err(FecError::Unrecoverable { have, need: k });
        }
        // A missing buffer is written whole by the decode: size it.
        for (buf, present) in shards.iter_mut() {
            if !*present {
                buf.resize(symbol_len, 0);
            }
        }
        self.codecs.get(k, m)?.reconstruct_data(shards)?;
        for (index, (symbol, _)) in shards[..k].iter().enumerate() {
            if !have_originals.contains(index) {
                restored(index, symbol);
            }
        }
        Ok(())
    }
}

/// Copies a symbol that arrived into its buffer and marks it present.
fn take(shard: &mut (Vec<u8>, bool), symbol: &[u8]) {
    shard.0.clear();
    shard.0.extend_from_slice(symbol);
    shard.1 = true;
}

/// A set of indices below 64, which holds any block's data or parity
/// indices.
#[derive(Clone, Copy, Debug, Default)]
struct Seen(u64);

impl Seen {
    /// Adds `index`; false if it was already in, or is not below 64.
    fn insert(&mut self, index: usize) -> bool {
        let Some(bit) = u32::try_from(index)
            .ok()
            .and_then(|shift| 1u64.checked_shl(shift))
        else {
            return false;
        };
        let fresh = self.0 & bit == 0;
        self.0 |= bit;
        fresh
    }

    /// How many indices are in.
    fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether `index` is in.
    fn contains(self, index: usize) -> bool {
        index < 64 && self.0 & (1 << index) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: [(usize, &[u8]); 0] = [];

    /// Three 4-byte data symbols and their two parity symbols.
    type Block = ([[u8; 4]; 3], Vec<Vec<u8>>);

    fn block() -> Result<Block, FecError> {
        let data = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]];
        let mut parity = Vec::new();
        super::super::Encoder::new().encode(&data, 2, |_, p| parity.push(p.to_vec()))?;
        Ok((data, parity))
    }

    fn decode_into(
        decoder: &mut Decoder,
        k: usize,
        m: usize,
        symbol_len: usize,
        originals: &[(usize, &[u8])],
        parity: &[(usize, &[u8])],
    ) -> Result<Vec<(usize, Vec<u8>)>, FecError> {
        let mut out = Vec::new();
        decoder.decode(
            k,
            m,
            symbol_len,
            originals.iter().copied(),
            parity.iter().copied(),
            |index, symbol| out.push((index, symbol.to_vec())),
        )?;
        Ok(out)
    }

    #[test]
    fn rebuilds_from_parity_alone() -> Result<(), FecError> {
        let (data, parity) = block()?;
        let mut decoder = Decoder::new();
        let restored = decode_into(
            &mut decoder,
            3,
            2,
            4,
            &[(1, &data[1])],
            &[(1, &parity[1]), (0, &parity[0])],
        )?;
        assert_eq!(restored, [(0, data[0].to_vec()), (2, data[2].to_vec())]);
        Ok(())
    }

    #[test]
    fn nothing_missing_restores_nothing() -> Result<(), FecError> {
        let (data, parity) = block()?;
        let mut decoder = Decoder::new();
        let all: [(usize, &[u8]); 3] = [(2, &data[2]), (0, &data[0]), (1, &data[1])];
        assert_eq!(decode_into(&mut decoder, 3, 2, 4, &all, &[])?, []);
        assert_eq!(
            decode_into(&mut decoder, 3, 2, 4, &all, &[(0, &parity[0])])?,
            []
        );
        assert_eq!(decode_into(&mut decoder, 3, 0, 4, &all, &[])?, []);
        Ok(())
    }

    #[test]
    fn too_few_symbols_is_unrecoverable() -> Result<(), FecError> {
        let (data, parity) = block()?;
        let mut decoder = Decoder::new();
        assert_eq!(
            decode_into(&mut decoder, 3, 2, 4, &[(0, &data[0])], &[(1, &parity[1])]),
            Err(FecError::Unrecoverable { have: 2, need: 3 })
        );
        assert_eq!(
            decode_into(&mut decoder, 3, 2, 4, &[], &[]),
            Err(FecError::Unrecoverable { have: 0, need: 3 })
        );
        assert_eq!(
            decode_into(&mut decoder, 3, 0, 4, &[(0, &data[0]), (2, &data[2])], &[]),
            Err(FecError::Unrecoverable { have: 2, need: 3 })
        );
        Ok(())
    }

    #[test]
    fn refuses_bad_block_shapes() {
        let mut decoder = Decoder::new();
        for (k, m) in [(0, 1), (65, 1), (64, 17), (usize::MAX, usize::MAX)] {
            assert_eq!(
                decoder.decode(k, m, 4, NONE, NONE, |_, _| {}),
                Err(FecError::BadParameters { k, m })
            );
        }
    }

    #[test]
    fn refuses_zero_and_odd_symbol_lengths() {
        let mut decoder = Decoder::new();
        for symbol_len in [0, 3, usize::MAX] {
            assert_eq!(
                decoder.decode(3, 2, symbol_len, NONE, NONE, |_, _| {}),
                Err(FecError::InvalidSymbolLen { symbol_len })
            );
        }
    }

    #[test]
    fn refuses_indices_out_of_range() {
        let mut decoder = Decoder::new();
        let symbol: &[u8] = &[0; 4];
        assert_eq!(
            decode_into(&mut decoder, 3, 2, 4, &[(3, symbol)], &[]),
            Err(FecError::OriginalIndexOutOfRange { index: 3, k: 3 })
        );
        assert_eq!(
            decode_into(&mut decoder, 3, 2, 4, &[(usize::MAX, symbol)], &[]),
            Err(FecError::OriginalIndexOutOfRange {
                index: usize::MAX,
                k: 3
            })
        );
        assert_eq!(
            decode_into(&mut decoder, 3, 2, 4, &[], &[(2, symbol)]),
            Err(FecError::ParityIndexOutOfRange { index: 2, m: 2 })
        );
        assert_eq!(
            decode_into(&mut decoder, 3, 0, 4, &[], &[(0, symbol)]),
            Err(FecError::ParityIndexOutOfRange { index: 0, m: 0 })
        );
    }

    #[test]
    fn refuses_duplicates() {
        let mut decoder = Decoder::new();
        let symbol: &[u8] = &[0; 4];
        assert_eq!(
            decode_into(&mut decoder, 3, 2, 4, &[(1, symbol), (1, symbol)], &[]),
            Err(FecError::DuplicateOriginal { index: 1 })
        );
        assert_eq!(
            decode_into(&mut decoder, 3, 2, 4, &[], &[(0, symbol), (0, symbol)]),
            Err(FecError::DuplicateParity { index: 0 })
        );
    }

    #[test]
    fn refuses_symbols_of_the_wrong_length() {
        let mut decoder = Decoder::new();
        let short: &[u8] = &[0; 2];
        assert_eq!(
            decode_into(&mut decoder, 3, 2, 4, &[(0, short)], &[]),
            Err(FecError::ShardLengthMismatch {
                expected: 4,
                got: 2
            })
        );
        assert_eq!(
            decode_into(&mut decoder, 3, 2, 4, &[], &[(1, short)]),
            Err(FecError::ShardLengthMismatch {
                expected: 4,
                got: 2
            })
        );
        assert_eq!(
            decode_into(&mut decoder, 3, 0, 4, &[(0, short)], &[]),
            Err(FecError::ShardLengthMismatch {
                expected: 4,
                got: 2
            })
        );
    }

    #[test]
    fn still_works_after_refusing_a_block() -> Result<(), FecError> {
        let (data, parity) = block()?;
        let mut decoder = Decoder::new();
        // Refused half-way, after some shards reached the codec.
        assert!(decode_into(&mut decoder, 3, 2, 4, &[(0, &data[0]), (0, &data[0])], &[]).is_err());
        let restored = decode_into(
            &mut decoder,
            3,
            2,
            4,
            &[(0, &data[0]), (2, &data[2])],
            &[(0, &parity[0])],
        )?;
        assert_eq!(restored, [(1, data[1].to_vec())]);
        Ok(())
    }

    #[test]
    fn seen_counts_distinct_indices_below_64() {
        let mut seen = Seen::default();
        assert!(seen.insert(0));
        assert!(seen.insert(63));
        assert!(!seen.insert(63));
        assert!(!seen.insert(64));
        assert!(!seen.insert(usize::MAX));
        assert_eq!(seen.len(), 2);
    }
}
