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

mod candidates;
#[path = "../common/mod.rs"]
mod common;

use candidates::{Candidate, FecRs, Leopard, Novelpoly, RsSimd, Rse, Rustfs, RustfsLeopard, Rusty};

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
