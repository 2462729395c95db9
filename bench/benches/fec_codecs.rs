//! FEC codecs side by side: every maintained Reed-Solomon crate we could
//! find, on the block shapes shoal uses, so that the choice of code rests
//! on a measurement (issue 19). Not shoal's own [`shoal_proto::fec`] (the
//! `fec` bench measures that), but each crate through its own API, the
//! way shoal would drive it: the codec made once and reused, then per
//! block an encode of `k` data symbols into `m` parity symbols, or a
//! rebuild of the data symbols lost.
//!
//! - Symbols are 1,330 bytes (a default chunk's symbol, rounded up);
//!   codecs that need a multiple of 64 bytes get 1,344.
//! - Decode loses 1, `m / 2` and `m` data symbols and has every parity
//!   symbol. Each iteration takes the next of up to 256 loss patterns, so
//!   that a codec caching its decode matrices per pattern is measured as
//!   it would run under random loss, not on one pattern it has cached.
//! - Only the codec's call is timed: laying out its input (copying the
//!   symbols that arrived into the buffers its API asks for) is set-up.
//!   A codec whose API copies the symbols itself pays for that copy.
//! - Before it is timed, each codec's output is checked against the data,
//!   and the heap allocations of its decodes are counted (printed as
//!   `allocations per decode`, over the second pass through the patterns,
//!   when whatever it caches is warm).
//!
//! `reed-solomon-erasure` builds its SIMD kernels (C, `-march=haswell`)
//! only with its `simd-accel` feature; run once more with
//! `--features rse-simd-accel` for that variant (its rows are then named
//! `rse-simd`).
//!
//! ```sh
//! cargo bench -p shoal-bench --bench fec_codecs -- --warm-up-time 1 --measurement-time 3
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

mod common;

/// Block shapes: shoal's default (`PublisherConfig`: 16 + 4) and the range
/// around it up to the wire format's limits (64 + 16).
const SHAPES: [(usize, usize); 4] = [(8, 2), (16, 4), (32, 8), (64, 16)];

/// Symbol length of a 1316-byte chunk, rounded up as the issue states it.
const SYMBOL_LEN: usize = 1330;

/// Most loss patterns cycled through per case.
const PATTERNS: usize = 256;

/// The system allocator, counting allocations.
struct Counting;

/// Allocations (and reallocations) so far.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to `System`, which upholds
// `GlobalAlloc`'s contract; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees for `layout` are passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout`; the
        // caller's guarantees for `new_size` are passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One Reed-Solomon crate driven the way shoal would drive it.
trait Candidate: Sized {
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
struct RsSimd {
    encoder: reed_solomon_simd::ReedSolomonEncoder,
    decoder: reed_solomon_simd::ReedSolomonDecoder,
    k: usize,
    m: usize,
    len: usize,
}

/// A block as reed-solomon-simd takes it: the shards it is given are
/// copied in by the decode itself.
struct Received {
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
type Flagged = Vec<(Vec<u8>, bool)>;

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
struct Rse(reed_solomon_erasure::galois_8::ReedSolomon);

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
struct Rustfs<const CACHE: bool>(rustfs_erasure_codec::galois_8::ReedSolomon);

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
struct RustfsLeopard(rustfs_erasure_codec::galois_8::ReedSolomon);

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

/// fec-rs 0.1: GF(2^8) Vandermonde code (as reed-solomon-erasure) with
/// SIMD kernels chosen at run time; missing shards as `None`.
struct FecRs(fec_rs::ReedSolomon);

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
struct Rusty {
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
struct Leopard {
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
struct Novelpoly {
    rs: reed_solomon_novelpoly::ReedSolomon,
    k: usize,
    m: usize,
}

/// A block for novelpoly, and the byte string it rebuilt.
struct Wrapped {
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

/// `k` data symbols of `len` bytes of noise.
fn data_symbols(k: usize, len: usize) -> Vec<Vec<u8>> {
    (0..k).map(|i| common::noise(len, i as u64 + 1)).collect()
}

/// Up to [`PATTERNS`] distinct sets of `lost` data indices out of `k`,
/// spread by a fixed generator.
fn patterns(k: usize, lost: usize) -> Vec<Vec<usize>> {
    let mut rng = shoal_proto::rng::Rng::new(0x5eed ^ (k * 100 + lost) as u64);
    let mut out: Vec<Vec<usize>> = Vec::new();
    // C(k, lost) may be smaller than PATTERNS: stop after enough misses.
    let mut misses = 0;
    while out.len() < PATTERNS && misses < 10_000 {
        let mut set: Vec<usize> = Vec::with_capacity(lost);
        while set.len() < lost {
            let i = (rng.next_u64() % k as u64) as usize;
            if !set.contains(&i) {
                set.push(i);
            }
        }
        set.sort_unstable();
        if out.contains(&set) {
            misses += 1;
        } else {
            out.push(set);
        }
    }
    out
}

/// 1, m / 2 and m losses, without repeats.
fn losses(m: usize) -> Vec<usize> {
    let mut l = vec![1, m / 2, m];
    l.retain(|&x| x >= 1);
    l.dedup();
    l
}

fn bench<C: Candidate>(c: &mut Criterion) {
    let len = C::symbol_len();
    for (k, m) in SHAPES {
        let Some(mut codec) = C::new(k, m, len) else {
            eprintln!("{}: k {k} m {m} not supported", C::NAME);
            continue;
        };
        let data = data_symbols(k, len);
        let mut parity = vec![vec![0u8; len]; m];
        codec.encode(&data, &mut parity);

        let mut g = c.benchmark_group(format!("fec_codecs/k{k}_m{m}"));
        g.bench_function(BenchmarkId::new("encode", C::NAME), |b| {
            b.iter(|| codec.encode(black_box(&data), black_box(&mut parity)))
        });
        for lost in losses(m) {
            let patterns = patterns(k, lost);
            // Checked on every pattern before any is timed.
            for p in &patterns {
                let mut block = codec.receive(&data, &parity, p);
                codec.decode(&mut block);
                for &i in p {
                    assert_eq!(C::restored(&block, i), &data[i][..], "{} {p:?}", C::NAME);
                }
            }
            let mut allocations = 0;
            for p in &patterns {
                let mut block = codec.receive(&data, &parity, p);
                let before = ALLOCATIONS.load(Ordering::Relaxed);
                codec.decode(&mut block);
                allocations += ALLOCATIONS.load(Ordering::Relaxed) - before;
            }
            eprintln!(
                "fec_codecs/k{k}_m{m}/decode_{lost}_lost/{}: {:.1} allocations per decode",
                C::NAME,
                allocations as f64 / patterns.len() as f64
            );
            let mut next = 0;
            g.bench_function(
                BenchmarkId::new(format!("decode_{lost}_lost"), C::NAME),
                |b| {
                    // Per iteration: lay the next pattern out untimed, then
                    // time the decode alone.
                    b.iter_custom(|iters| {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            next = (next + 1) % patterns.len();
                            let mut block = codec.receive(&data, &parity, &patterns[next]);
                            let start = Instant::now();
                            codec.decode(black_box(&mut block));
                            spent += start.elapsed();
                            black_box(&block);
                        }
                        spent
                    })
                },
            );
        }
        g.finish();
    }
}

/// Says which kernels rustfs-erasure-codec chose on this machine.
fn backends(_: &mut Criterion) {
    eprintln!(
        "rustfs-erasure-codec kernels: {}",
        rustfs_erasure_codec::galois_8::active_backend_name()
    );
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = backends, bench::<RsSimd>, bench::<Rse>, bench::<Rustfs<true>>, bench::<Rustfs<false>>, bench::<RustfsLeopard>,
        bench::<FecRs>, bench::<Rusty>, bench::<Leopard>, bench::<Novelpoly>
}
criterion_main!(benches);
