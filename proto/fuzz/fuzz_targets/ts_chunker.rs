//! The chunker fed arbitrary bytes in arbitrary pieces.
//!
//! Input: a config byte, a split seed byte, then the stream. The config
//! byte picks the mode (bit 0), the chunk size (bits 1..4) and whether to
//! flush after every piece (bit 4). Without flushes the chunks must not
//! depend on the split, so the stream is also cut in one piece and the two
//! results compared.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::ts::{Chunk, Chunker, Mode, TS_PACKET_LEN};

const OPAQUE_SIZES: [usize; 8] = [1, 2, 7, 100, 188, 1316, 1380, 4096];

fn drain(chunker: &mut Chunker, out: &mut Vec<Chunk>) {
    while let Some(chunk) = chunker.poll_chunk() {
        out.push(chunk);
    }
}

/// Piece lengths from a tiny deterministic generator: 0 to 400 bytes.
fn pieces(seed: u8, mut input: &[u8]) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 0x100;
    let mut out = Vec::new();
    while !input.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = (state % 401) as usize;
        let (piece, rest) = input.split_at(len.min(input.len()));
        out.push(piece);
        input = rest;
    }
    out
}

fuzz_target!(|bytes: &[u8]| {
    let [config, seed, stream @ ..] = bytes else {
        return;
    };
    let size_index = usize::from((config >> 1) & 0x07);
    let (mode, chunk_size) = if config & 1 == 0 {
        (Mode::Opaque, OPAQUE_SIZES[size_index])
    } else {
        (Mode::MpegTs, TS_PACKET_LEN * (1 + size_index))
    };
    let flush_each = config & 0x10 != 0;
    let _ = shoal_proto::ts::looks_like_ts(stream);

    let mut pieced = Chunker::new(mode, chunk_size).expect("a valid chunk size");
    let mut chunks = Vec::new();
    for piece in pieces(*seed, stream) {
        pieced.handle_input(piece);
        drain(&mut pieced, &mut chunks);
        if flush_each {
            pieced.flush();
            drain(&mut pieced, &mut chunks);
        }
        assert!(pieced.partial_len() <= chunk_size);
    }
    pieced.finish();
    drain(&mut pieced, &mut chunks);
    assert_eq!(pieced.partial_len(), 0, "finish leaves nothing behind");

    let mut taken = 0;
    for chunk in &chunks {
        assert!(!chunk.payload.is_empty());
        assert!(chunk.payload.len() <= chunk_size);
        if mode == Mode::MpegTs {
            assert_eq!(chunk.payload.len() % TS_PACKET_LEN, 0);
            assert!(chunk.payload.chunks(TS_PACKET_LEN).all(|p| p[0] == 0x47));
        }
        taken += chunk.payload.len();
    }
    assert_eq!(
        (taken as u64) + pieced.discarded_bytes(),
        stream.len() as u64,
        "every byte is either chunked or counted as discarded"
    );
    if mode == Mode::Opaque {
        assert_eq!(pieced.discarded_bytes(), 0);
        assert!(chunks.iter().flat_map(|c| &c.payload).eq(stream));
    }
    if let Some(first) = chunks.first() {
        assert!(first.keyframe, "the stream's first chunk is a keyframe");
    }

    if !flush_each {
        let mut whole = Chunker::new(mode, chunk_size).expect("a valid chunk size");
        let mut expected = Vec::new();
        whole.handle_input(stream);
        drain(&mut whole, &mut expected);
        whole.finish();
        drain(&mut whole, &mut expected);
        assert_eq!(chunks, expected, "the split does not change the chunks");
        assert_eq!(pieced.discarded_bytes(), whole.discarded_bytes());
        assert_eq!(pieced.sync_losses(), whole.sync_losses());
    }
});
