//! Integrity: the per-block signature check (ed25519 over a k = 16, m = 4
//! MANIFEST), the per-chunk hash (BLAKE3, 1316-byte payload) and the
//! publisher's per-block signing.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shoal_proto::fec::symbol_len;
use shoal_proto::integrity::{PublisherKey, StreamKey, chunk_hash, parity_hash};
use shoal_proto::wire::ManifestView;

fn signature(c: &mut Criterion) {
    let mut source = common::Source::new(16, 4);
    let manifest = source.next_block().manifest;
    let key = StreamKey::new(source.stream_id()).expect("publisher key is a valid point");
    let view = ManifestView::new_checked(&manifest).expect("valid MANIFEST");
    key.verify_manifest(&view)
        .expect("publisher's signature verifies");
    let signer = PublisherKey::from_seed(common::SEED);

    let mut g = c.benchmark_group("integrity/manifest_k16_m4");
    g.bench_function("verify", |b| {
        b.iter(|| {
            key.verify_manifest(black_box(&view))
                .expect("signature verifies")
        })
    });
    let mut buf = manifest.clone();
    g.bench_function("sign", |b| {
        b.iter(|| signer.sign_trailer(black_box(&mut buf)))
    });
    g.finish();
}

fn hashes(c: &mut Criterion) {
    let payload = common::noise(common::CHUNK, 3);
    let symbol = common::noise(symbol_len(common::CHUNK), 4);

    let mut g = c.benchmark_group("integrity/hash");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("chunk_1316B", |b| {
        b.iter(|| chunk_hash(0, black_box(1_234_567), black_box(&payload)))
    });
    g.throughput(Throughput::Bytes(symbol.len() as u64));
    g.bench_function("parity_1328B", |b| {
        b.iter(|| parity_hash(black_box(&symbol)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = signature, hashes
}
criterion_main!(benches);
