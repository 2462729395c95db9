//! The codecs of the last few block shapes, kept so that a stream of
//! same-shaped blocks builds its codec once.
//!
//! A codec for `k + m` holds the code's `(k + m) x k` matrix (§5.2 of the
//! SPEC), built by inverting a `k x k` Vandermonde matrix, and a cache of
//! the decode matrices of the loss patterns it has seen. Building one
//! allocates and, for `k = 64`, takes about as long as a hundred decodes,
//! so it is done once per shape: a publisher's full blocks all have one
//! shape, and its short blocks (closed early by `block_ms`) a few more.

use rustfs_erasure_codec::galois_8::ReedSolomon;
use rustfs_erasure_codec::{CodecOptions, MatrixMode};

use super::FecError;

/// Shapes kept; a block of another shape replaces the least recently
/// used.
const KEPT: usize = 4;

/// Decode matrices a codec keeps, per shape: the loss patterns of the
/// most recent blocks. 256 holds every pattern of up to two losses of a
/// 16 + 4 block; a matrix is `k * k` bytes, so a 64 + 16 codec holds at
/// most 1 MiB of them.
const DECODE_MATRICES: usize = 256;

/// Codecs by block shape, most recently used first.
#[derive(Default)]
pub(super) struct Codecs {
    kept: Vec<((usize, usize), ReedSolomon)>,
}

impl Codecs {
    /// Nothing built yet.
    pub(super) const fn new() -> Self {
        Self { kept: Vec::new() }
    }

    /// The codec for `k` data and `m` parity symbols (the shape already
    /// checked, and `m > 0`), built if it is not kept.
    pub(super) fn get(&mut self, k: usize, m: usize) -> Result<&ReedSolomon, FecError> {
        let at = match self.kept.iter().position(|(shape, _)| *shape == (k, m)) {
            Some(at) => at,
            None => {
                let options = CodecOptions {
                    // The decoder runs on the thread that holds the block:
                    // never hand a block's work to a thread pool.
                    max_parallel_jobs: 1,
                    inversion_cache: true,
                    inversion_cache_capacity: DECODE_MATRICES,
                    matrix_mode: MatrixMode::Vandermonde,
                    ..CodecOptions::default()
                };
                let codec = ReedSolomon::with_options(k, m, options)?;
                if self.kept.len() == KEPT {
                    self.kept.pop();
                }
                self.kept.push(((k, m), codec));
                self.kept.len() - 1
            }
        };
        self.kept[..=at].rotate_right(1);
        Ok(&self.kept[0].1)
    }
}

impl core::fmt::Debug for Codecs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Codecs")
            .field(
                "shapes",
                &self.kept.iter().map(|(shape, _)| shape).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_shapes() -> Result<(), FecError> {
        let mut codecs = Codecs::new();
        for (k, m) in [(16, 4), (3, 4), (16, 4), (1, 1), (2, 2), (5, 5)] {
            let codec = codecs.get(k, m)?;
            assert_eq!(
                (codec.data_shard_count(), codec.parity_shard_count()),
                (k, m)
            );
        }
        let shapes: Vec<_> = codecs.kept.iter().map(|(shape, _)| *shape).collect();
        // (3, 4) was the least recently used when (5, 5) came.
        assert_eq!(shapes, [(5, 5), (2, 2), (1, 1), (16, 4)]);
        Ok(())
    }

    #[test]
    fn every_supported_shape_has_a_codec() -> Result<(), FecError> {
        let mut codecs = Codecs::new();
        for k in 1..=super::super::MAX_K {
            for m in 1..=super::super::MAX_M {
                codecs.get(k, m)?;
            }
        }
        Ok(())
    }
}
