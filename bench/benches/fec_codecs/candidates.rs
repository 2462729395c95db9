//! The candidates of the `fec_codecs` bench: each crate behind one
//! trait, driven the way shoal would drive it.

use std::hint::black_box;

use super::SYMBOL_LEN;

/// One Reed-Solomon crate driven the way shoal would drive it.
pub trait Candidate: Sized {
    /// What a decode works on: the block as received, laid out for this
    /// crate, and room for what it rebuilds.
    type Block;
    /// Row name.
    const NAME: &'static str;
    /// The symbol length this crate is measured at.
    fn symbol_len() -> usize {
        SYMBOL_LEN
    }
    /// The codec for `k + m` blocks of `len`-byte symbols, or `None` where
    /// the crate cannot do the shape.
    fn new(k: usize, m: usize, len: usize) -> Option<Self>;
    /// Parity of `data` into `parity` (`m` buffers of the symbol length).
    fn encode(&mut self, data: &[Vec<u8>], parity: &mut [Vec<u8>]);
    /// The block as received: `data` without the symbols in `lost`, and
    /// every parity symbol.
    fn receive(&self, data: &[Vec<u8>], parity: &[Vec<u8>], lost: &[usize]) -> Self::Block;
    /// Rebuilds the lost data symbols of `block`.
    fn decode(&mut self, block: &mut Self::Block);
    /// Rebuilt data symbol `index`, after [`Candidate::decode`].
    fn restored(block: &Self::Block, index: usize) -> &[u8];
}

/// reed-solomon-simd 3.1: Leopard-style FFT over GF(2^16) (shoal's code
/// until issue 19).
pub struct RsSimd {
    encoder: reed_solomon_simd::ReedSolomonEncoder,
    decoder: reed_solomon_simd::ReedSolomonDecoder,
    k: usize,
    m: usize,
    len: usize,
}

/// A block as reed-solomon-simd takes it: the shards it is given are
/// copied in by the decode itself.
pub struct Received {
    data: Vec<(usize, Vec<u8>)>,
    parity: Vec<Vec<u8>>,
    lost: Vec<usize>,
    out: Vec<Vec<u8>>,
}

impl Candidate for RsSimd {
    type Block = Received;
    const NAME: &'static str = "reed-solomon-simd";

    fn new(k: usize, m: usize, len: usize) -> Option<Self> {
        Some(Self {
            encoder: reed_solomon_simd::ReedSolomonEncoder::new(k, m, len).ok()?,
            decoder: reed_solomon_simd::ReedSolomonDecoder::new(k, m, len).ok()?,
            k,
            m,
            len,
        })
    }

    fn encode(&mut self, data: &[Vec<u8>], parity: &mut [Vec<u8>]) {
        let e = &mut self.encoder;
        e.reset(self.k, self.m, self.len).expect("shape");
        for d in data {
            e.add_original_shard(d).expect("shard");
        }
        let result = e.encode().expect("encode");
        for (out, p) in parity.iter_mut().zip(result.recovery_iter()) {
            out.copy_from_slice(p);
        }
    }

    fn receive(&self, data: &[Vec<u8>], parity: &[Vec<u8>], lost: &[usize]) -> Received {
        Received {
            data: kept(data, lost).map(|(i, d)| (i, d.clone())).collect(),
            parity: parity.to_vec(),
            lost: lost.to_vec(),
            out: vec![vec![0; self.len]; lost.len()],
        }
    }

    fn decode(&mut self, block: &mut Received) {
        let d = &mut self.decoder;
        d.reset(self.k, self.m, self.len).expect("shape");
        for (i, s) in &block.data {
            d.add_original_shard(*i, s).expect("shard");
        }
        for (i, s) in block.parity.iter().enumerate() {
            d.add_recovery_shard(i, s).expect("shard");
        }
        let result = d.decode().expect("decode");
        for (out, (_, s)) in block.out.iter_mut().zip(result.restored_original_iter()) {
            out.copy_from_slice(s);
        }
    }

    fn restored(block: &Received, index: usize) -> &[u8] {
        let at = block.lost.iter().position(|&i| i == index).expect("lost");
        &block.out[at]
    }
}

/// A block as the matrix codes take it: every shard in index order with a
/// flag saying whether it is present; a missing one's buffer is written.
pub type Flagged = Vec<(Vec<u8>, bool)>;

fn flagged(data: &[Vec<u8>], parity: &[Vec<u8>], lost: &[usize]) -> Flagged {
    data.iter()
        .enumerate()
        .map(|(i, d)| {
            if lost.contains(&i) {
                (vec![0; d.len()], false)
            } else {
                (d.clone(), true)
            }
        })
        .chain(parity.iter().map(|p| (p.clone(), true)))
        .collect()
}

/// reed-solomon-erasure 6.0: GF(2^8), systematic Vandermonde matrix
/// (Backblaze construction), decode matrices cached per pattern (LRU of
/// 254).
pub struct Rse(reed_solomon_erasure::galois_8::ReedSolomon);

impl Candidate for Rse {
    type Block = Flagged;
    const NAME: &'static str = if cfg!(feature = "rse-simd-accel") {
        "rse-simd"
    } else {
        "reed-solomon-erasure"
    };

    fn new(k: usize, m: usize, _: usize) -> Option<Self> {
        reed_solomon_erasure::galois_8::ReedSolomon::new(k, m)
            .ok()
            .map(Self)
    }

    fn encode(&mut self, data: &[Vec<u8>], parity: &mut [Vec<u8>]) {
        self.0.encode_sep(data, parity).expect("encode");
    }

    fn receive(&self, data: &[Vec<u8>], parity: &[Vec<u8>], lost: &[usize]) -> Flagged {
        flagged(data, parity, lost)
    }

    fn decode(&mut self, block: &mut Flagged) {
        self.0.reconstruct_data(block).expect("decode");
    }

    fn restored(block: &Flagged, index: usize) -> &[u8] {
        &block[index].0
    }
}

/// rustfs-erasure-codec 7.0 (the newest that builds with Rust 1.95): a
/// maintained fork of reed-solomon-erasure (same Vandermonde code) with
/// SIMD kernels chosen at run time. `CACHE`: whether it keeps inverted
/// decode matrices per loss pattern (its default); without, every decode
/// inverts, as a cache does on a pattern it has not seen. One thread, as
/// shoal's decoders run on the thread that holds the block.
pub struct Rustfs<const CACHE: bool>(rustfs_erasure_codec::galois_8::ReedSolomon);

impl<const CACHE: bool> Candidate for Rustfs<CACHE> {
    type Block = Flagged;
    const NAME: &'static str = if CACHE {
        "rustfs-erasure-codec"
    } else {
        "rustfs-erasure-codec-nocache"
    };

    fn new(k: usize, m: usize, _: usize) -> Option<Self> {
        let options = rustfs_erasure_codec::CodecOptions {
            inversion_cache: CACHE,
            max_parallel_jobs: 1,
            ..rustfs_erasure_codec::CodecOptions::default()
        };
        rustfs_erasure_codec::galois_8::ReedSolomon::with_options(k, m, options)
            .ok()
            .map(Self)
    }

    fn encode(&mut self, data: &[Vec<u8>], parity: &mut [Vec<u8>]) {
        self.0.encode_sep(data, parity).expect("encode");
    }

    fn receive(&self, data: &[Vec<u8>], parity: &[Vec<u8>], lost: &[usize]) -> Flagged {
        flagged(data, parity, lost)
    }

    fn decode(&mut self, block: &mut Flagged) {
        self.0.reconstruct_data(block).expect("decode");
    }

    fn restored(block: &Flagged, index: usize) -> &[u8] {
        &block[index].0
    }
}

/// rustfs-erasure-codec 7.0's Leopard family over GF(2^8) (FFT, like
/// reed-solomon-simd but in the small field).
pub struct RustfsLeopard(rustfs_erasure_codec::galois_8::ReedSolomon);

impl Candidate for RustfsLeopard {
    type Block = Flagged;
    const NAME: &'static str = "rustfs-leopard-gf8";

    fn symbol_len() -> usize {
        SYMBOL_LEN.next_multiple_of(64)
    }

    fn new(k: usize, m: usize, _: usize) -> Option<Self> {
        let options = rustfs_erasure_codec::CodecOptions {
            codec_family: rustfs_erasure_codec::CodecFamily::LeopardGF8,
            max_parallel_jobs: 1,
            ..rustfs_erasure_codec::CodecOptions::default()
        };
        rustfs_erasure_codec::galois_8::ReedSolomon::with_options(k, m, options)
            .ok()
            .map(Self)
    }

    fn encode(&mut self, data: &[Vec<u8>], parity: &mut [Vec<u8>]) {
        self.0.encode_sep(data, parity).expect("encode");
    }

    fn receive(&self, data: &[Vec<u8>], parity: &[Vec<u8>], lost: &[usize]) -> Flagged {
        flagged(data, parity, lost)
    }

    fn decode(&mut self, block: &mut Flagged) {
        self.0.reconstruct_data(block).expect("decode");
    }

    fn restored(block: &Flagged, index: usize) -> &[u8] {
        &block[index].0
    }
}

/// fec-rs 0.1: GF(2^8) with a Cauchy parity matrix (Moonlight's), SIMD
/// kernels chosen at run time; missing shards as `None`.
pub struct FecRs(fec_rs::ReedSolomon);

impl Candidate for FecRs {
    type Block = Vec<Option<Vec<u8>>>;
    const NAME: &'static str = "fec-rs";

    fn new(k: usize, m: usize, _: usize) -> Option<Self> {
        fec_rs::ReedSolomon::new(k, m).ok().map(Self)
    }

    fn encode(&mut self, data: &[Vec<u8>], parity: &mut [Vec<u8>]) {
        self.0.encode_sep(data, parity).expect("encode");
    }

    fn receive(&self, data: &[Vec<u8>], parity: &[Vec<u8>], lost: &[usize]) -> Self::Block {
        options(data, parity, lost)
    }

    fn decode(&mut self, block: &mut Self::Block) {
        self.0.reconstruct_data(block).expect("decode");
    }

    fn restored(block: &Self::Block, index: usize) -> &[u8] {
        block[index].as_deref().expect("rebuilt")
    }
}

fn options(data: &[Vec<u8>], parity: &[Vec<u8>], lost: &[usize]) -> Vec<Option<Vec<u8>>> {
    data.iter()
        .enumerate()
        .map(|(i, d)| (!lost.contains(&i)).then(|| d.clone()))
        .chain(parity.iter().map(|p| Some(p.clone())))
        .collect()
}

/// rusty_erasure 0.4: ISA-L's matrix codes in Rust (Cauchy matrix here),
/// SIMD kernels chosen at run time; one-shot recover per block.
pub struct Rusty {
    coder: rusty_erasure::Coder,
    k: usize,
}

impl Candidate for Rusty {
    type Block = Received;
    const NAME: &'static str = "rusty_erasure";

    fn new(k: usize, m: usize, _: usize) -> Option<Self> {
        let matrix = rusty_erasure::Matrix::cauchy(k, m).ok()?;
        Some(Self {
            coder: rusty_erasure::coder(matrix).ok()?,
            k,
        })
    }

    fn encode(&mut self, data: &[Vec<u8>], parity: &mut [Vec<u8>]) {
        let data: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut parity: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        self.coder.encode(&data, &mut parity).expect("encode");
    }

    fn receive(&self, data: &[Vec<u8>], parity: &[Vec<u8>], lost: &[usize]) -> Received {
        Received {
            data: kept(data, lost).map(|(i, d)| (i, d.clone())).collect(),
            parity: parity.to_vec(),
            lost: lost.to_vec(),
            out: vec![vec![0; parity[0].len()]; lost.len()],
        }
    }

    fn decode(&mut self, block: &mut Received) {
        let mut shards: Vec<Option<&[u8]>> = vec![None; self.k];
        for (i, s) in &block.data {
            shards[*i] = Some(s);
        }
        shards.extend(block.parity.iter().map(|p| Some(p.as_slice())));
        let mut out: Vec<&mut [u8]> = block.out.iter_mut().map(Vec::as_mut_slice).collect();
        self.coder
            .recover(&shards, &block.lost, &mut out)
            .expect("decode");
    }

    fn restored(block: &Received, index: usize) -> &[u8] {
        let at = block.lost.iter().position(|&i| i == index).expect("lost");
        &block.out[at]
    }
}

/// leopard-codec 0.2: Leopard over GF(2^8) (FFT); missing shards as empty
/// vectors, which it allocates.
pub struct Leopard {
    k: usize,
}

impl Candidate for Leopard {
    type Block = Vec<Vec<u8>>;
    const NAME: &'static str = "leopard-codec";

    fn symbol_len() -> usize {
        SYMBOL_LEN.next_multiple_of(64)
    }

    fn new(k: usize, m: usize, len: usize) -> Option<Self> {
        // It has no "supports"; an encode that fails says no.
        let mut shards = vec![vec![0u8; len]; k + m];
        leopard_codec::encode(&mut shards, k).ok()?;
        Some(Self { k })
    }

    fn encode(&mut self, data: &[Vec<u8>], parity: &mut [Vec<u8>]) {
        // Its API wants data and parity in one slice: the copy of the data
        // is part of what it costs shoal.
        let mut shards: Vec<Vec<u8>> = data.iter().chain(parity.iter()).cloned().collect();
        leopard_codec::encode(&mut shards, self.k).expect("encode");
        for (out, p) in parity.iter_mut().zip(&shards[self.k..]) {
            out.copy_from_slice(p);
        }
    }

    fn receive(&self, data: &[Vec<u8>], parity: &[Vec<u8>], lost: &[usize]) -> Self::Block {
        options(data, parity, lost)
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect()
    }

    fn decode(&mut self, block: &mut Self::Block) {
        leopard_codec::reconstruct(block, self.k).expect("decode");
    }

    fn restored(block: &Self::Block, index: usize) -> &[u8] {
        &block[index]
    }
}

/// reed-solomon-novelpoly 2.0: the Lin-Han-Chung FFT code over GF(2^16),
/// whose API encodes a byte string into `n` shards (each holding 2-byte
/// pieces of every stretch of `2 k` bytes) and returns the whole string on
/// reconstruction. It rounds `k` down and `n` up to powers of 2.
pub struct Novelpoly {
    rs: reed_solomon_novelpoly::ReedSolomon,
    k: usize,
    m: usize,
}

/// A block for novelpoly, and the byte string it rebuilt.
pub struct Wrapped {
    shards: Vec<Option<reed_solomon_novelpoly::WrappedShard>>,
    out: Vec<u8>,
}

impl Candidate for Novelpoly {
    type Block = Wrapped;
    const NAME: &'static str = "reed-solomon-novelpoly";

    fn new(k: usize, m: usize, _: usize) -> Option<Self> {
        let params = reed_solomon_novelpoly::CodeParams::derive_parameters(k + m, k).ok()?;
        Some(Self {
            rs: params.make_encoder(),
            k,
            m,
        })
    }

    fn encode(&mut self, data: &[Vec<u8>], parity: &mut [Vec<u8>]) {
        let bytes = data.concat();
        let shards: Vec<reed_solomon_novelpoly::WrappedShard> =
            self.rs.encode(&bytes).expect("encode");
        black_box((&shards, parity));
    }

    fn receive(&self, data: &[Vec<u8>], _: &[Vec<u8>], lost: &[usize]) -> Wrapped {
        // Its shards are not shoal's symbols: encode here, then drop the
        // shards standing at the lost indices.
        let shards: Vec<reed_solomon_novelpoly::WrappedShard> =
            self.rs.encode(&data.concat()).expect("encode");
        debug_assert_eq!(shards.len(), self.k + self.m);
        Wrapped {
            shards: shards
                .into_iter()
                .enumerate()
                .map(|(i, s)| (!lost.contains(&i)).then_some(s))
                .collect(),
            out: Vec::new(),
        }
    }

    fn decode(&mut self, block: &mut Wrapped) {
        block.out = self
            .rs
            .reconstruct(std::mem::take(&mut block.shards))
            .expect("decode");
    }

    fn restored(block: &Wrapped, index: usize) -> &[u8] {
        let len = SYMBOL_LEN;
        &block.out[index * len..(index + 1) * len]
    }
}

fn kept<'a>(data: &'a [Vec<u8>], lost: &'a [usize]) -> impl Iterator<Item = (usize, &'a Vec<u8>)> {
    data.iter().enumerate().filter(|(i, _)| !lost.contains(i))
}
