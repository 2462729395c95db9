//! Shared set-up for the criterion benches: a real [`Publisher`] as the
//! source of realistic, signed datagrams, and the common criterion config.
//!
//! Each bench target includes this module and uses only part of it.
#![allow(dead_code, reason = "each bench target uses a different subset")]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use criterion::Criterion;
use shoal_proto::integrity::PublisherKey;
use shoal_proto::publisher::{Publisher, PublisherConfig};
use shoal_proto::rng::Rng;
use shoal_proto::wire::{Codec, DEFAULT_CHUNK_SIZE, MessageType, peek_type};
use shoal_proto::{StreamId, Time};

/// Seed of the publisher key every bench uses.
pub const SEED: [u8; 32] = [0x5e; 32];

/// Chunk payload size of every bench: 7 MPEG-TS packets.
pub const CHUNK: usize = DEFAULT_CHUNK_SIZE;

/// Short runs: the whole suite should finish in a few minutes on 2 cores.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

/// Address the publisher sends to (never used as a socket).
pub fn relay_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 7000))
}

/// `len` bytes of deterministic noise, different per `salt`.
pub fn noise(len: usize, salt: u64) -> Vec<u8> {
    let mut rng = Rng::new(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    (0..len).map(|_| rng.next_u64().to_le_bytes()[0]).collect()
}

/// One closed block as the publisher sends it to one relay.
#[derive(Debug, Default)]
pub struct Block {
    /// The DESCRIPTOR, only with the stream's first block.
    pub descriptor: Option<Vec<u8>>,
    /// The signed MANIFEST.
    pub manifest: Vec<u8>,
    /// The DATA datagrams, in order.
    pub data: Vec<Vec<u8>>,
    /// The PARITY datagrams, in order.
    pub parity: Vec<Vec<u8>>,
}

/// A publisher fed with opaque input, one full block at a time.
#[derive(Debug)]
pub struct Source {
    publisher: Publisher,
    now: Time,
    input: Vec<u8>,
    blocks: u64,
}

impl Source {
    /// A source of blocks of `k` full 1316-byte chunks and `m` parity.
    pub fn new(k: u8, m: u8) -> Self {
        let config = PublisherConfig {
            codec: Codec::Opaque,
            k,
            m,
            ..Default::default()
        };
        let publisher = Publisher::new(
            PublisherKey::from_seed(SEED),
            config,
            vec![relay_addr()],
            Time::from_micros(1_000_000),
        )
        .expect("valid publisher config");
        Self {
            publisher,
            now: Time::from_micros(1_000_000),
            input: noise(usize::from(k) * CHUNK, 1),
            blocks: 0,
        }
    }

    /// The stream published.
    pub fn stream_id(&self) -> StreamId {
        self.publisher.stream_id()
    }

    /// The clock the last block was cut at.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Publishes the next block and collects its datagrams (the repeated
    /// trailing MANIFEST is dropped).
    pub fn next_block(&mut self) -> Block {
        self.blocks += 1;
        self.now += Duration::from_millis(5);
        // Vary the content a little from block to block.
        if let Some(b) = self.input.first_mut() {
            *b = b.wrapping_add(1);
        }
        self.publisher.handle_input(self.now, &self.input);
        let mut block = Block::default();
        while let Some(t) = self.publisher.poll_transmit() {
            let bytes = t.payload.to_vec();
            match peek_type(&bytes).expect("publisher sends valid datagrams") {
                MessageType::Descriptor => block.descriptor = Some(bytes),
                MessageType::Manifest if block.manifest.is_empty() => block.manifest = bytes,
                MessageType::Manifest => {}
                MessageType::Data => block.data.push(bytes),
                MessageType::Parity => block.parity.push(bytes),
                other => panic!("publisher sent {other:?}"),
            }
        }
        assert!(!block.manifest.is_empty(), "a full input closes a block");
        block
    }
}
