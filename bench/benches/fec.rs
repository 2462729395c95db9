//! FEC: Reed-Solomon encode and decode of one block of 1316-byte chunks,
//! for several (k, m). Decode loses `m` data symbols (evenly spread), the
//! most the block can rebuild. Throughput is the block's data:
//! `k * symbol_len` bytes.

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shoal_proto::fec::{Decoder, Encoder, symbol_len, write_symbol};

const SHAPES: [(usize, usize); 4] = [(8, 2), (16, 4), (32, 8), (64, 16)];

/// The `k` data symbols of a block of full chunks.
fn data_symbols(k: usize) -> Vec<Vec<u8>> {
    let len = symbol_len(common::CHUNK);
    (0..k)
        .map(|i| {
            let payload = common::noise(common::CHUNK, i as u64 + 1);
            let mut symbol = vec![0; len];
            write_symbol(0, 1_000 * i as u64, &payload, &mut symbol).expect("payload fits");
            symbol
        })
        .collect()
}

fn parity_symbols(data: &[Vec<u8>], m: usize) -> Vec<Vec<u8>> {
    let mut parity = Vec::with_capacity(m);
    Encoder::new()
        .encode(data, m, |_, symbol| parity.push(symbol.to_vec()))
        .expect("valid block");
    parity
}

fn encode(c: &mut Criterion) {
    let len = symbol_len(common::CHUNK);
    let mut g = c.benchmark_group("fec/encode");
    for (k, m) in SHAPES {
        let data = data_symbols(k);
        let mut encoder = Encoder::new();
        g.throughput(Throughput::Bytes((k * len) as u64));
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("k{k}_m{m}")),
            &data,
            |b, data| {
                b.iter(|| {
                    encoder
                        .encode(black_box(data), m, |i, symbol| {
                            black_box((i, symbol));
                        })
                        .expect("valid block")
                })
            },
        );
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let len = symbol_len(common::CHUNK);
    let mut g = c.benchmark_group("fec/decode_m_lost");
    for (k, m) in SHAPES {
        let data = data_symbols(k);
        let parity = parity_symbols(&data, m);
        let lost: Vec<usize> = (0..m).map(|j| j * k / m).collect();
        let mut decoder = Decoder::new();
        g.throughput(Throughput::Bytes((k * len) as u64));
        g.bench_function(BenchmarkId::from_parameter(format!("k{k}_m{m}")), |b| {
            b.iter(|| {
                let originals = data
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !lost.contains(i))
                    .map(|(i, s)| (i, s.as_slice()));
                let parity = parity.iter().enumerate().map(|(i, s)| (i, s.as_slice()));
                let mut restored = 0;
                decoder
                    .decode(k, m, len, originals, parity, |i, symbol| {
                        restored += 1;
                        black_box((i, symbol));
                    })
                    .expect("m losses are recoverable");
                assert_eq!(restored, m);
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = encode, decode
}
criterion_main!(benches);
