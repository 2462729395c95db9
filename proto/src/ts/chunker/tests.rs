//! Tests of the chunker: scenarios, then properties over arbitrary input.

use proptest::prelude::*;

use super::super::packet::{SYNC_BYTE, random_access_indicator};
use super::super::testutil::{packet, pat, pmt, stream};
use super::*;

const VIDEO: u16 = 0x100;
const AUDIO: u16 = 0x101;

fn ts_chunker(chunk_size: usize) -> Chunker {
    Chunker::new(Mode::MpegTs, chunk_size).expect("a valid chunk size")
}

fn drain(chunker: &mut Chunker) -> Vec<Chunk> {
    std::iter::from_fn(|| chunker.poll_chunk()).collect()
}

/// Feeds `pieces`, finishes, returns every chunk.
fn cut(chunker: &mut Chunker, pieces: &[&[u8]]) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for piece in pieces {
        chunker.handle_input(piece);
        chunks.extend(drain(chunker));
    }
    chunker.finish();
    chunks.extend(drain(chunker));
    chunks
}

/// Each chunk as (packets, keyframe).
fn shape(chunks: &[Chunk]) -> Vec<(usize, bool)> {
    chunks
        .iter()
        .map(|c| (c.payload.len() / TS_PACKET_LEN, c.keyframe))
        .collect()
}

fn concat(chunks: &[Chunk]) -> Vec<u8> {
    chunks
        .iter()
        .flat_map(|c| c.payload.iter().copied())
        .collect()
}

#[test]
fn bad_chunk_sizes_are_refused() {
    use ChunkerError::*;
    for mode in [Mode::MpegTs, Mode::Opaque] {
        assert_eq!(Chunker::new(mode, 0).err(), Some(ChunkSizeZero));
        assert_eq!(
            Chunker::new(mode, MAX_CHUNK_SIZE + 1).err(),
            Some(ChunkSizeTooLarge {
                chunk_size: MAX_CHUNK_SIZE + 1
            })
        );
        assert_eq!(
            Chunker::new(mode, usize::MAX).err(),
            Some(ChunkSizeTooLarge {
                chunk_size: usize::MAX
            })
        );
    }
    for chunk_size in [1, 187, 189, 1315, 1317] {
        assert_eq!(
            Chunker::new(Mode::MpegTs, chunk_size).err(),
            Some(ChunkSizeNotPacketMultiple { chunk_size })
        );
        assert!(Chunker::new(Mode::Opaque, chunk_size).is_ok());
    }
    for chunk_size in [
        TS_PACKET_LEN,
        DEFAULT_CHUNK_SIZE,
        MAX_CHUNK_SIZE / 188 * 188,
    ] {
        let chunker = Chunker::new(Mode::MpegTs, chunk_size).expect("a packet multiple");
        assert_eq!(chunker.chunk_size(), chunk_size);
        assert_eq!(chunker.mode(), Mode::MpegTs);
    }
    assert!(Chunker::new(Mode::Opaque, MAX_CHUNK_SIZE).is_ok());
}

#[test]
fn chunks_end_on_packet_boundaries() {
    let ts = stream(&[(VIDEO, false); 20]);
    let mut chunker = ts_chunker(DEFAULT_CHUNK_SIZE);
    chunker.handle_input(&ts);
    let chunks = drain(&mut chunker);
    // The 20th packet awaits its successor; 5 more fill a partial chunk.
    assert_eq!(shape(&chunks), [(7, true), (7, false)]);
    assert_eq!(chunker.partial_len(), 5 * TS_PACKET_LEN);
    chunker.finish();
    let last = drain(&mut chunker);
    assert_eq!(shape(&last), [(6, false)]);
    assert_eq!(concat(&[chunks, last].concat()), ts);
    assert_eq!(chunker.discarded_bytes(), 0);
}

#[test]
fn keyframe_packet_starts_a_chunk() {
    let mut packets = [(VIDEO, false); 24];
    packets[3].1 = true;
    packets[13].1 = true;
    packets[14].1 = true;
    let ts = stream(&packets);
    let chunks = cut(&mut ts_chunker(DEFAULT_CHUNK_SIZE), &[&ts]);
    // The first chunk is a keyframe because the stream starts there.
    assert_eq!(
        shape(&chunks),
        [
            (3, true),
            (7, true),
            (3, false),
            (1, true),
            (7, true),
            (3, false)
        ]
    );
    for chunk in &chunks[1..] {
        assert_eq!(
            chunk.keyframe,
            random_access_indicator(&chunk.payload[..TS_PACKET_LEN])
        );
    }
    assert_eq!(concat(&chunks), ts);
}

#[test]
fn keyframe_at_the_start_makes_no_empty_chunk() {
    let mut packets = [(VIDEO, false); 8];
    packets[0].1 = true;
    let chunks = cut(&mut ts_chunker(DEFAULT_CHUNK_SIZE), &[&stream(&packets)]);
    assert_eq!(shape(&chunks), [(7, true), (1, false)]);
}

#[test]
fn audio_random_access_splits_nothing_once_video_is_known() {
    use super::super::psi::{STREAM_TYPE_AAC as AAC, STREAM_TYPE_H264 as H264};
    let mut ts = Vec::new();
    ts.extend_from_slice(&pat(&[(1, 0x1000)]));
    ts.extend_from_slice(&pmt(0x1000, 1, &[(H264, VIDEO), (AAC, AUDIO)]));
    ts.extend_from_slice(&stream(&[
        (VIDEO, true),
        (VIDEO, false),
        (AUDIO, true),
        (VIDEO, false),
        (AUDIO, true),
        (VIDEO, false),
        (VIDEO, true),
        (AUDIO, true),
    ]));
    let chunks = cut(&mut ts_chunker(DEFAULT_CHUNK_SIZE), &[&ts]);
    assert_eq!(shape(&chunks), [(2, true), (6, true), (2, true)]);
    assert_eq!(concat(&chunks), ts);
}

#[test]
fn flush_emits_whole_packets_and_keeps_the_rest() {
    let ts = stream(&[(VIDEO, false); 5]);
    let mut chunker = ts_chunker(DEFAULT_CHUNK_SIZE);
    chunker.flush();
    assert_eq!(chunker.poll_chunk(), None);

    chunker.handle_input(&ts[..3 * TS_PACKET_LEN + 94]);
    assert_eq!(chunker.poll_chunk(), None);
    assert_eq!(chunker.partial_len(), 3 * TS_PACKET_LEN);
    chunker.flush();
    let first = drain(&mut chunker);
    assert_eq!(shape(&first), [(3, true)]);
    assert_eq!(chunker.partial_len(), 0);
    chunker.flush();
    assert_eq!(chunker.poll_chunk(), None);

    chunker.handle_input(&ts[3 * TS_PACKET_LEN + 94..]);
    chunker.flush();
    let second = drain(&mut chunker);
    assert_eq!(shape(&second), [(1, false)]);
    chunker.finish();
    let third = drain(&mut chunker);
    assert_eq!(shape(&third), [(1, false)]);
    assert_eq!(concat(&[first, second, third].concat()), ts);
    assert_eq!(chunker.discarded_bytes(), 0);
}

#[test]
fn finish_discards_a_trailing_partial_packet() {
    let ts = stream(&[(VIDEO, false); 3]);
    let mut chunker = ts_chunker(DEFAULT_CHUNK_SIZE);
    let chunks = cut(&mut chunker, &[&ts[..2 * TS_PACKET_LEN + 50]]);
    assert_eq!(shape(&chunks), [(2, true)]);
    assert_eq!(chunker.discarded_bytes(), 50);
    assert_eq!(chunker.sync_losses(), 1);
}

#[test]
fn resynchronises_after_garbage() {
    let ts = stream(&[(VIDEO, false); 10]);
    let mut input = vec![0x00, SYNC_BYTE, 0x00];
    input.extend_from_slice(&ts[..4 * TS_PACKET_LEN]);
    // Packet 4 loses its last 100 bytes.
    input.extend_from_slice(&ts[4 * TS_PACKET_LEN..5 * TS_PACKET_LEN - 100]);
    input.extend_from_slice(&ts[5 * TS_PACKET_LEN..]);
    let mut chunker = ts_chunker(DEFAULT_CHUNK_SIZE);
    let chunks = cut(&mut chunker, &[&input]);
    let mut expected = ts[..4 * TS_PACKET_LEN].to_vec();
    expected.extend_from_slice(&ts[5 * TS_PACKET_LEN..]);
    assert_eq!(concat(&chunks), expected);
    assert_eq!(shape(&chunks), [(7, true), (2, false)]);
    assert_eq!(chunker.discarded_bytes(), 3 + 88);
    assert_eq!(chunker.sync_losses(), 1);
}

#[test]
fn input_after_finish_continues_the_stream() {
    let ts = stream(&[(VIDEO, false); 2]);
    let mut chunker = ts_chunker(DEFAULT_CHUNK_SIZE);
    let first = cut(&mut chunker, &[&ts]);
    let second = cut(&mut chunker, &[&ts]);
    assert_eq!(shape(&first), [(2, true)]);
    assert_eq!(shape(&second), [(2, false)]);
}

#[test]
fn opaque_chunks_have_the_chunk_size() {
    let input: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let mut chunker = Chunker::new(Mode::Opaque, 1000).expect("a valid size");
    chunker.handle_input(&input[..1500]);
    let mut chunks = drain(&mut chunker);
    assert_eq!(chunker.partial_len(), 500);
    chunker.flush();
    chunks.extend(drain(&mut chunker));
    chunks.extend(cut(&mut chunker, &[&input[1500..]]));
    let sizes: Vec<_> = chunks
        .iter()
        .map(|c| (c.payload.len(), c.keyframe))
        .collect();
    assert_eq!(
        sizes,
        [(1000, true), (500, false), (1000, false), (500, false)]
    );
    assert_eq!(concat(&chunks), input);
    assert_eq!(chunker.discarded_bytes(), 0);
}

#[test]
fn opaque_mode_ignores_transport_packets() {
    let mut packets = [(VIDEO, false); 10];
    packets[5].1 = true;
    let ts = stream(&packets);
    let chunks = cut(
        &mut Chunker::new(Mode::Opaque, 1000).expect("valid"),
        &[&ts],
    );
    let sizes: Vec<_> = chunks
        .iter()
        .map(|c| (c.payload.len(), c.keyframe))
        .collect();
    assert_eq!(sizes, [(1000, true), (880, false)]);
}

#[test]
fn recycled_buffers_are_reused() {
    let ts = stream(&[(VIDEO, false); 4]);
    let mut chunker = ts_chunker(TS_PACKET_LEN);
    chunker.handle_input(&ts[..2 * TS_PACKET_LEN]);
    let first = chunker.poll_chunk().expect("one packet is framed");
    let address = first.payload.as_ptr();
    chunker.recycle(first.payload);
    chunker.recycle(Vec::new()); // too small to keep
    chunker.handle_input(&ts[2 * TS_PACKET_LEN..]);
    chunker.finish();
    let chunks = drain(&mut chunker);
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[1].payload.as_ptr(), address);
    assert_eq!(concat(&chunks), ts[TS_PACKET_LEN..]);
}

/// A stretch of input: a packet, or garbage that holds no sync byte.
#[derive(Clone, Debug)]
enum Piece {
    Packet { pid: u16, key: bool },
    Garbage(Vec<u8>),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        8 => (prop::sample::select(vec![VIDEO, AUDIO, 0x20, 0x1FFE]), prop::bool::weighted(0.15))
            .prop_map(|(pid, key)| Piece::Packet { pid, key }),
        1 => prop::collection::vec(0u8..SYNC_BYTE, 1..300).prop_map(Piece::Garbage),
    ]
}

/// The input, and the packets the framing rule keeps: those followed by
/// another packet or by the end.
fn build(pieces: &[Piece]) -> (Vec<u8>, Vec<u8>) {
    let mut input = Vec::new();
    let mut kept = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        match p {
            Piece::Packet { pid, key } => {
                let bytes = packet(*pid, i as u8, *key);
                input.extend_from_slice(&bytes);
                if !matches!(pieces.get(i + 1), Some(Piece::Garbage(_))) {
                    kept.extend_from_slice(&bytes);
                }
            }
            Piece::Garbage(bytes) => input.extend_from_slice(bytes),
        }
    }
    (input, kept)
}

/// Cuts `input` at `cuts` (any numbers; taken modulo the length).
fn split<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    at.push(0);
    at.push(input.len());
    at.sort_unstable();
    at.windows(2)
        .filter_map(|w| input.get(w[0]..w[1]))
        .collect()
}

fn chunk_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(TS_PACKET_LEN),
        Just(DEFAULT_CHUNK_SIZE),
        (1..=12usize).prop_map(|n| n * TS_PACKET_LEN)
    ]
}

proptest! {
    #[test]
    fn any_split_gives_the_same_chunks(
        pieces in prop::collection::vec(piece(), 0..60),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        chunk_size in chunk_size(),
    ) {
        let (input, kept) = build(&pieces);
        let mut whole = ts_chunker(chunk_size);
        let expected = cut(&mut whole, &[&input]);
        let mut pieced = ts_chunker(chunk_size);
        prop_assert_eq!(&cut(&mut pieced, &split(&input, &cuts)), &expected);
        prop_assert_eq!(pieced.discarded_bytes(), whole.discarded_bytes());
        prop_assert_eq!(pieced.sync_losses(), whole.sync_losses());

        prop_assert_eq!(concat(&expected), kept.clone());
        prop_assert_eq!(whole.discarded_bytes(), (input.len() - kept.len()) as u64);
        for (i, chunk) in expected.iter().enumerate() {
            prop_assert!(!chunk.payload.is_empty());
            prop_assert!(chunk.payload.len() <= chunk_size);
            prop_assert_eq!(chunk.payload.len() % TS_PACKET_LEN, 0);
            let starts_with_key = random_access_indicator(&chunk.payload[..TS_PACKET_LEN]);
            prop_assert_eq!(chunk.keyframe, starts_with_key || i == 0);
            // No random access point past a chunk's first packet.
            for packet in chunk.payload.chunks(TS_PACKET_LEN).skip(1) {
                prop_assert!(!random_access_indicator(packet));
            }
        }
    }

    #[test]
    fn opaque_split_gives_the_same_chunks(
        input in prop::collection::vec(any::<u8>(), 0..5000),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        chunk_size in 1..2000usize,
    ) {
        let mut whole = Chunker::new(Mode::Opaque, chunk_size).expect("valid");
        let expected = cut(&mut whole, &[&input]);
        let mut pieced = Chunker::new(Mode::Opaque, chunk_size).expect("valid");
        prop_assert_eq!(&cut(&mut pieced, &split(&input, &cuts)), &expected);
        prop_assert_eq!(concat(&expected), input.clone());
        for (i, chunk) in expected.iter().enumerate() {
            prop_assert_eq!(chunk.keyframe, i == 0);
            if i + 1 < expected.len() {
                prop_assert_eq!(chunk.payload.len(), chunk_size);
            } else {
                prop_assert!((1..=chunk_size).contains(&chunk.payload.len()));
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        input in prop::collection::vec(prop_oneof![Just(SYNC_BYTE), any::<u8>()], 0..3000),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut chunker = ts_chunker(DEFAULT_CHUNK_SIZE);
        let chunks = cut(&mut chunker, &split(&input, &cuts));
        let out = concat(&chunks).len() as u64;
        prop_assert_eq!(out + chunker.discarded_bytes(), input.len() as u64);
        for chunk in &chunks {
            prop_assert_eq!(chunk.payload.len() % TS_PACKET_LEN, 0);
            for packet in chunk.payload.chunks(TS_PACKET_LEN) {
                prop_assert_eq!(packet.first(), Some(&SYNC_BYTE));
            }
        }
    }
}
