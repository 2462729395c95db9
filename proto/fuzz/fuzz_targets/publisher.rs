//! A publisher fed input bytes, datagrams and timers.
//!
//! In v1 a publisher takes no datagram input (relays repair from parity;
//! `handle_datagram` ignores what it is given), so this target drives all
//! of its inputs at once and checks what it sends.
//!
//! Input: two config bytes, then records as in `common/mod.rs`, with the
//! source bits read as an action: 0 to 3 feed the record as stream input,
//! 4 and 5 hand it over as a datagram from a relay, 6 from a stranger, 7
//! ends the stream. Config byte 0: bit 0 MPEG-TS, bits 1..4 the chunk
//! size, bits 4..7 the clubs (1 to 8); byte 1: bits 0..6 k - 1, bits 6..8
//! m (0, 1, 4 or 16).
//!
//! Asserted after every step:
//! - everything goes to the two relays, no datagram longer than
//!   `MAX_DATAGRAM_LEN`;
//! - DESCRIPTORs and MANIFESTs verify against the publisher's key, and
//!   each block's MANIFEST comes before its chunks; every DATA and PARITY
//!   is vouched for by one;
//! - each relay gets the chunks in order, 0, 1, 2, ..., each in its club,
//!   no payload larger than the chunk size, the last one (and only it)
//!   flagged end of stream (its block's parity and MANIFEST may follow);
//! - after timers ran, the next timer is in the future.

#![no_main]

mod common;

use std::net::SocketAddr;

use common::{Oracle, PUBLISHER, T0, check_progress, steps};
use libfuzzer_sys::fuzz_target;
use shoal_proto::integrity::PublisherKey;
use shoal_proto::publisher::{Publisher, PublisherConfig};
use shoal_proto::ts::TS_PACKET_LEN;
use shoal_proto::wire::{Codec, Data, MAX_DATAGRAM_LEN, MessageType, peek_type};

/// Not smaller: a chunk per input byte makes for slow executions.
const OPAQUE_SIZES: [u16; 8] = [4, 16, 32, 100, 188, 500, 1316, 1380];
const M: [u8; 4] = [0, 1, 4, 16];

struct Harness {
    publisher: Publisher,
    relays: [SocketAddr; 2],
    config: PublisherConfig,
    oracle: Oracle,
    /// Per relay, the next sequence number due.
    next_seq: [u64; 2],
    /// Per relay, whether the chunk that ends the stream went out.
    ended: [bool; 2],
}

impl Harness {
    fn drain(&mut self) {
        while let Some(t) = self.publisher.poll_transmit() {
            let relay = self
                .relays
                .iter()
                .position(|&r| r == t.dst)
                .expect("sent only to its relays");
            let bytes = t.payload;
            assert!(bytes.len() <= MAX_DATAGRAM_LEN, "{} bytes", bytes.len());
            self.oracle.fed(bytes);
            self.oracle.check_sent(bytes);
            if peek_type(bytes) == Ok(MessageType::Data) {
                let d = Data::parse(bytes).expect("DATA parses");
                assert!(!self.ended[relay], "a chunk after the end");
                assert_eq!(d.seq, self.next_seq[relay], "chunks in order");
                self.next_seq[relay] += 1;
                assert_eq!(u64::from(d.club), d.seq % u64::from(self.config.clubs));
                assert!(d.payload.len() <= usize::from(self.config.chunk_size));
                self.ended[relay] = d.flags.end_of_stream();
            }
        }
        if !self.publisher.is_finished() {
            assert_eq!(self.ended, [false; 2]);
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let [c0, c1, input @ ..] = input else {
        return;
    };
    let size = usize::from((c0 >> 1) & 7);
    let (codec, chunk_size) = if c0 & 1 == 0 {
        (Codec::Opaque, OPAQUE_SIZES[size])
    } else {
        (Codec::MpegTs, (TS_PACKET_LEN * (1 + size % 7)) as u16)
    };
    let config = PublisherConfig {
        codec,
        chunk_size,
        clubs: 1 + (c0 >> 4 & 7),
        k: 1 + (c1 & 0x3F),
        m: M[usize::from(c1 >> 6)],
        ..PublisherConfig::default()
    };
    let relays: [SocketAddr; 2] =
        ["192.0.2.40:7400", "[2001:db8::40]:7400"].map(|a| a.parse().expect("an address"));
    let stranger: SocketAddr = "198.51.100.40:1".parse().expect("an address");
    let mut now = T0;
    let key = PublisherKey::from_seed(PUBLISHER.seed());
    let publisher = Publisher::new(key, config, relays.to_vec(), now).expect("a valid config");
    // A run's chunks count from its epoch, the clock at the start.
    let epoch = publisher.epoch();
    assert_eq!(epoch, T0.as_micros());
    let mut h = Harness {
        publisher,
        relays,
        config,
        oracle: Oracle::default(),
        next_seq: [epoch; 2],
        ended: [false; 2],
    };
    for step in steps(input) {
        now += step.advance;
        match step.source {
            0..4 => h.publisher.handle_input(now, step.datagram),
            4 | 5 => h.publisher.handle_datagram(now, relays[0], step.datagram),
            6 => h.publisher.handle_datagram(now, stranger, step.datagram),
            _ => h.publisher.finish(now),
        }
        h.drain();
        if step.timers {
            h.publisher.handle_timeout(now);
            check_progress(now, h.publisher.poll_timeout());
            h.drain();
        }
    }
    h.publisher.finish(now);
    h.drain();
    assert_eq!(h.ended, [true; 2], "the end went out to every relay");
    let chunks = h.publisher.stats().chunks;
    assert_eq!(h.next_seq, [epoch + chunks; 2]);
    assert_eq!(h.publisher.next_seq(), epoch + chunks);
});
