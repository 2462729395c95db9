//! Wire format: DATA encode and decode per 1316-byte chunk, `Message::parse`
//! of a DATA datagram, and MANIFEST parse (k = 16, m = 4).

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shoal_proto::wire::{
    DATA_HEADER_LEN, Data, DataFlags, DataView, MAX_DATAGRAM_LEN, Manifest, Message,
};

fn data(c: &mut Criterion) {
    let mut source = common::Source::new(16, 4);
    let block = source.next_block();
    let datagram = block.data.get(3).expect("a block has 16 chunks").clone();
    let payload = common::noise(common::CHUNK, 7);
    let fields = Data {
        flags: DataFlags::new(false, false),
        club: 3,
        stream: source.stream_id(),
        seq: 1_000_003,
        block: 62_500,
        timestamp_us: 1_234_567_890,
        index: 3,
        payload: &payload,
    };
    assert_eq!(datagram.len(), DATA_HEADER_LEN + common::CHUNK);

    let mut g = c.benchmark_group("wire/data");
    g.throughput(Throughput::Bytes(datagram.len() as u64));
    let mut out = vec![0u8; MAX_DATAGRAM_LEN];
    g.bench_function("emit", |b| {
        b.iter(|| {
            black_box(&fields)
                .emit(black_box(&mut out))
                .expect("buffer fits")
        })
    });
    g.bench_function("parse", |b| {
        b.iter(|| Data::parse(black_box(&datagram)).expect("valid DATA"))
    });
    g.bench_function("view_new_checked", |b| {
        b.iter(|| DataView::new_checked(black_box(&datagram)).expect("valid DATA"))
    });
    g.bench_function("message_parse", |b| {
        b.iter(|| Message::parse(black_box(&datagram)).expect("valid DATA"))
    });
    g.finish();
}

fn manifest(c: &mut Criterion) {
    let mut source = common::Source::new(16, 4);
    let manifest = source.next_block().manifest;

    let mut g = c.benchmark_group("wire/manifest_k16_m4");
    g.throughput(Throughput::Bytes(manifest.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| Manifest::parse(black_box(&manifest)).expect("valid MANIFEST"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = data, manifest
}
criterion_main!(benches);
