//! Forward error correction: a systematic Reed-Solomon erasure code over
//! blocks of chunks.
//!
//! A block is `k` DATA chunks, `1 <= k <=` [`MAX_K`], protected by `m` parity
//! symbols, `0 <= m <=` [`MAX_M`] (`m = 0`: no FEC). Each chunk takes part as
//! its [`symbol`]: header fields, payload and zero padding, all symbols of a
//! block being [`symbol_len`] of its largest payload, an even number of bytes.
//!
//! - **The code** (SPEC §5.2): over GF(2^8), bytewise, with the systematic
//!   Vandermonde matrix of reed-solomon-erasure, Backblaze's
//!   JavaReedSolomon and klauspost/reedsolomon: parity symbol `j` is, byte
//!   by byte, a fixed combination of the `k` data symbols. rustfs-erasure-
//!   codec computes it with SIMD kernels chosen at run time; it replaced
//!   reed-solomon-simd, whose decoder cost 140-270 µs a block whatever its
//!   shape (issue 19, BENCHMARKS.md "FEC codecs").
//! - **Systematic**: the data symbols travel unchanged as DATA; only the
//!   `m` parity symbols are extra.
//! - **Where**: the publisher runs [`Encoder::encode`] once per block, when its
//!   `k` chunks are known. Relays forward parity like any other symbol; relays
//!   and viewers run [`Decoder::decode`] when DATA chunks of a block are
//!   missing, then [`read_symbol`] on each rebuilt symbol.
//! - **Recoverable** means: any `k` of the block's `k + m` symbols (data or
//!   parity, with their indices) rebuild every missing data symbol byte for
//!   byte, header included. With fewer than `k` the block is
//!   **unrecoverable**: [`Decoder::decode`] returns
//!   [`FecError::Unrecoverable`] and never produces a guess.
//! - This is an erasure code: it trusts the bytes it is given. A corrupted
//!   shard gives wrong output, so shards are verified before decoding.
//!
//! The receiver must know `k`, `m` and `symbol_len` (the wire format carries
//! them). [`Encoder`] and [`Decoder`] keep their codecs (one per block shape,
//! for the last few shapes) and their symbol buffers between blocks: once
//! they have seen a block of a given shape and symbol length they do not
//! allocate again for it, except that a decode whose loss pattern is not
//! among the codec's 256 most recent inverts a matrix, which allocates it.

mod codecs;
mod decoder;
mod encoder;
#[cfg(test)]
mod spec_tests;
pub mod symbol;

pub use decoder::Decoder;
pub use encoder::Encoder;
pub use symbol::{
    MAX_SYMBOL_LEN, SYMBOL_HEADER_LEN, Symbol, read_symbol, symbol_len, write_symbol,
};

/// Most DATA chunks in a block.
pub const MAX_K: usize = 64;

/// Most parity symbols of a block.
pub const MAX_M: usize = 16;

/// Why a block or symbol was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum FecError {
    /// `k` is not in `1..=MAX_K` or `m` is not in `0..=MAX_M`.
    #[error("a block has 1..=64 data symbols and 0..=16 parity symbols; got k = {k}, m = {m}")]
    BadParameters {
        /// Data symbols asked for.
        k: usize,
        /// Parity symbols asked for.
        m: usize,
    },
    /// The symbol length is zero or odd; the wire format's symbols are
    /// non-zero and even (SPEC §5.2).
    #[error("symbol length {symbol_len} is not a non-zero even number")]
    InvalidSymbolLen {
        /// The length given.
        symbol_len: usize,
    },
    /// A symbol's length differs from the block's symbol length.
    #[error("symbol of {got} bytes in a block of {expected}-byte symbols")]
    ShardLengthMismatch {
        /// The block's symbol length.
        expected: usize,
        /// The symbol's length.
        got: usize,
    },
    /// A data symbol's index is not below `k`.
    #[error("data symbol index {index} is not below k = {k}")]
    OriginalIndexOutOfRange {
        /// The index given.
        index: usize,
        /// Data symbols in the block.
        k: usize,
    },
    /// A parity symbol's index is not below `m`.
    #[error("parity symbol index {index} is not below m = {m}")]
    ParityIndexOutOfRange {
        /// The index given.
        index: usize,
        /// Parity symbols in the block.
        m: usize,
    },
    /// The same data symbol was given twice.
    #[error("data symbol {index} given twice")]
    DuplicateOriginal {
        /// The repeated index.
        index: usize,
    },
    /// The same parity symbol was given twice.
    #[error("parity symbol {index} given twice")]
    DuplicateParity {
        /// The repeated index.
        index: usize,
    },
    /// Fewer than `k` symbols of the block are present: the missing data
    /// cannot be rebuilt.
    #[error("block unrecoverable: {have} symbols present, {need} needed")]
    Unrecoverable {
        /// Symbols present, data and parity.
        have: usize,
        /// Symbols needed: `k`.
        need: usize,
    },
    /// The buffer is shorter than a symbol header.
    #[error("a symbol needs {SYMBOL_HEADER_LEN} header bytes; got {len} bytes")]
    SymbolTooShort {
        /// The buffer's length.
        len: usize,
    },
    /// The payload does not fit in the symbol after the header, or is longer
    /// than the `u16` length field can say.
    #[error("payload of {len} bytes does not fit a symbol with room for {capacity}")]
    PayloadTooLong {
        /// The payload's length.
        len: usize,
        /// Most payload bytes the symbol can hold.
        capacity: usize,
    },
    /// A symbol's length field reaches past the end of the symbol.
    #[error("symbol says its payload is {len} bytes but only {capacity} follow the header")]
    PayloadOverrun {
        /// The length field.
        len: usize,
        /// Bytes after the header.
        capacity: usize,
    },
    /// A symbol has a non-zero byte after its payload; the writer zeroes the
    /// padding, so the symbol is corrupt.
    #[error("symbol padding is not all zero")]
    NonZeroPadding,
    /// The Reed-Solomon codec refused a request this module had already
    /// checked.
    #[error("reed-solomon codec failed: {0}")]
    Codec(#[from] rustfs_erasure_codec::Error),
}

/// Checks the block shape, before any of it reaches the codec.
fn check_block(k: usize, m: usize) -> Result<(), FecError> {
    if (1..=MAX_K).contains(&k) && m <= MAX_M {
        Ok(())
    } else {
        Err(FecError::BadParameters { k, m })
    }
}

/// Checks a symbol length against the wire format's rule (SPEC §5.2): the
/// code itself takes any length.
fn check_symbol_len(symbol_len: usize) -> Result<(), FecError> {
    if symbol_len != 0 && symbol_len.is_multiple_of(2) {
        Ok(())
    } else {
        Err(FecError::InvalidSymbolLen { symbol_len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::subsequence;
    use rand::{Rng, RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Largest chunk payload the wire format sends.
    const MAX_PAYLOAD: usize = 1380;

    /// A chunk as the publisher has it.
    #[derive(Debug)]
    struct Chunk {
        flags: u8,
        timestamp_us: u64,
        payload: Vec<u8>,
    }

    /// A block to protect and the symbols lost on the way: payload lengths
    /// (so `k`), `m`, a seed for the bytes, and indices into the `k + m`
    /// symbols, data first.
    #[derive(Debug, Clone)]
    struct Case {
        lens: Vec<usize>,
        m: usize,
        seed: u64,
        lost: Vec<usize>,
    }

    fn payload_len() -> impl Strategy<Value = usize> {
        prop_oneof![0..=MAX_PAYLOAD, Just(0), Just(MAX_PAYLOAD), 0..=16usize]
    }

    /// Blocks losing up to `m` symbols if `recoverable`, more otherwise.
    fn case(recoverable: bool) -> impl Strategy<Value = Case> {
        (1..=MAX_K, 1..=MAX_M)
            .prop_flat_map(|(k, m)| (vec(payload_len(), k), Just(m), any::<u64>()))
            .prop_flat_map(move |(lens, m, seed)| {
                let n = lens.len() + m;
                let lost = if recoverable { 0..=m } else { m + 1..=n };
                let lost = subsequence((0..n).collect::<Vec<_>>(), lost);
                (Just(lens), Just(m), Just(seed), lost).prop_map(|(lens, m, seed, lost)| Case {
                    lens,
                    m,
                    seed,
                    lost,
                })
            })
    }

    fn chunks(lens: &[usize], seed: u64) -> Vec<Chunk> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        lens.iter()
            .map(|&len| {
                let mut payload = vec![0; len];
                rng.fill_bytes(&mut payload);
                Chunk {
                    flags: rng.random(),
                    timestamp_us: rng.random(),
                    payload,
                }
            })
            .collect()
    }

    /// The chunks' symbols and the symbol length.
    fn symbols(chunks: &[Chunk]) -> Result<(usize, Vec<Vec<u8>>), FecError> {
        let max = chunks.iter().map(|c| c.payload.len()).max().unwrap_or(0);
        let len = symbol_len(max);
        let mut symbols = vec![vec![0xEE; len]; chunks.len()];
        for (chunk, symbol) in chunks.iter().zip(&mut symbols) {
            write_symbol(chunk.flags, chunk.timestamp_us, &chunk.payload, symbol)?;
        }
        Ok((len, symbols))
    }

    /// Encodes the case's block, drops its lost symbols, decodes the rest
    /// and checks what comes back.
    fn run(case: &Case, encoder: &mut Encoder, decoder: &mut Decoder) -> Result<(), TestCaseError> {
        let chunks = chunks(&case.lens, case.seed);
        let k = chunks.len();
        let (symbol_len, data) = symbols(&chunks)?;
        let mut parity = Vec::new();
        encoder.encode(&data, case.m, |index, symbol| {
            parity.push((index, symbol.to_vec()))
        })?;
        prop_assert_eq!(parity.len(), case.m);

        let mut fresh = Vec::new();
        Encoder::new().encode(&data, case.m, |index, symbol| {
            fresh.push((index, symbol.to_vec()))
        })?;
        prop_assert_eq!(&parity, &fresh, "a reused encoder gives the same parity");

        let kept = |i: &usize| !case.lost.contains(i);
        let got_data = data.iter().enumerate().filter(|(i, _)| kept(i));
        let got_parity = parity
            .iter()
            .filter(|(i, _)| kept(&(k + i)))
            .map(|(i, s)| (*i, s));
        let mut restored = Vec::new();
        let result = decoder.decode(
            k,
            case.m,
            symbol_len,
            got_data,
            got_parity,
            |index, symbol| {
                restored.push((index, symbol.to_vec()));
            },
        );

        let have = k + case.m - case.lost.len();
        if have < k {
            prop_assert_eq!(result, Err(FecError::Unrecoverable { have, need: k }));
            prop_assert!(restored.is_empty());
            return Ok(());
        }
        result?;
        let missing: Vec<usize> = case.lost.iter().copied().filter(|&i| i < k).collect();
        let indices: Vec<usize> = restored.iter().map(|(i, _)| *i).collect();
        prop_assert_eq!(indices, missing);
        for (index, symbol) in &restored {
            prop_assert_eq!(Some(symbol), data.get(*index));
            let chunk = chunks
                .get(*index)
                .ok_or_else(|| TestCaseError::fail("no chunk"))?;
            let read = read_symbol(symbol)?;
            prop_assert_eq!(read.flags, chunk.flags);
            prop_assert_eq!(read.timestamp_us, chunk.timestamp_us);
            prop_assert_eq!(read.payload, &chunk.payload[..]);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn up_to_m_losses_are_rebuilt_exactly(case in case(true)) {
            run(&case, &mut Encoder::new(), &mut Decoder::new())?;
        }

        #[test]
        fn more_than_m_losses_are_unrecoverable(case in case(false)) {
            run(&case, &mut Encoder::new(), &mut Decoder::new())?;
        }

        #[test]
        fn codecs_are_reusable_across_block_shapes(
            cases in vec(prop_oneof![case(true), case(false)], 1..6),
        ) {
            let (mut encoder, mut decoder) = (Encoder::new(), Decoder::new());
            for case in &cases {
                run(case, &mut encoder, &mut decoder)?;
            }
        }

        #[test]
        fn arbitrary_decoder_input_never_panics(
            k in 0..=70usize,
            m in 0..=20usize,
            symbol_len in 0..=8usize,
            originals in vec((0..=70usize, vec(any::<u8>(), 0..=8)), 0..=70),
            parity in vec((0..=20usize, vec(any::<u8>(), 0..=8)), 0..=20),
            after in case(true),
        ) {
            let mut decoder = Decoder::new();
            let mut restored = 0;
            let result = decoder.decode(k, m, symbol_len, originals, parity, |_, s| {
                restored += 1;
                assert_eq!(s.len(), symbol_len);
            });
            if result.is_err() {
                prop_assert_eq!(restored, 0);
            }
            run(&after, &mut Encoder::new(), &mut decoder)?;
        }

        #[test]
        fn arbitrary_encoder_input_never_panics(
            originals in vec(vec(any::<u8>(), 0..=8), 0..=70),
            m in 0..=20usize,
            after in case(true),
        ) {
            let mut encoder = Encoder::new();
            let mut emitted = 0;
            let result = encoder.encode(&originals, m, |_, _| emitted += 1);
            prop_assert_eq!(emitted, if result.is_ok() { m } else { 0 });
            run(&after, &mut encoder, &mut Decoder::new())?;
        }
    }
}
