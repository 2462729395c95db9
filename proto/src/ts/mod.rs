//! MPEG-TS awareness for the publisher: cutting a live byte stream into
//! chunks.
//!
//! The publisher reads its input in whatever pieces the source hands out and
//! feeds them to a [`Chunker`], which cuts the stream into [`Chunk`]s of at
//! most `chunk_size` bytes. Run loop, after every mutation:
//!
//! ```text
//! chunker.handle_input(&read_buf[..n]);     // or flush() at a latency deadline,
//!                                           // or finish() at end of input
//! while let Some(chunk) = chunker.poll_chunk() { publish(chunk) }
//! ```
//!
//! In [`Mode::MpegTs`] chunks hold whole 188-byte transport packets, only
//! packets that are framed by sync bytes (garbage is dropped and counted),
//! and a chunk starts at every video random access point so that a viewer
//! joining there can decode from its first packet. [`Mode::Opaque`] cuts
//! any byte stream into fixed-size pieces. [`looks_like_ts`] lets a caller
//! tell the two apart before choosing.
//!
//! For streams made or remade here (fixtures, fuzz seeds, the demo's
//! looped clip) the module also writes what it reads: a packet [`Header`],
//! a [`pcr_field`], a PAT or PMT in one packet ([`pat_packet`],
//! [`pmt_packet`]), and a packet moved in time ([`shift_timestamps`]: PCR,
//! PTS and DTS, as read by [`Packet::pcr`] and [`PesHeader`]).

mod chunker;
mod framer;
mod packet;
mod pes;
mod psi;
mod retime;
mod tables;
#[cfg(test)]
mod testutil;

pub use chunker::{Chunk, Chunker, ChunkerError, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, Mode};
pub use packet::{
    Header, Packet, PacketError, SYNC_BYTE, TS_PACKET_LEN, pcr_field, random_access_indicator,
};
pub use pes::{PesHeader, TIMESTAMP_WRAP};
pub use psi::{PAT_PID, STREAM_TYPE_AAC, STREAM_TYPE_H264, crc32_mpeg2};
pub use retime::shift_timestamps;
pub use tables::{pat_packet, pmt_packet};

/// Consecutive sync bytes, [`TS_PACKET_LEN`] apart, that [`looks_like_ts`]
/// wants to see.
pub const PROBE_PACKETS: usize = 5;

/// Bytes of input [`looks_like_ts`] needs to decide with full confidence,
/// wherever in the stream the prefix begins.
pub const PROBE_LEN: usize = PROBE_PACKETS * TS_PACKET_LEN;

/// Whether `prefix`, the first bytes of an input, looks like an MPEG
/// transport stream.
///
/// With at least [`PROBE_LEN`] bytes: true when some offset below
/// [`TS_PACKET_LEN`] holds [`PROBE_PACKETS`] sync bytes at 188-byte spacing
/// (so a stream caught mid-packet, e.g. a pipe opened late, still counts);
/// five random bytes matching by chance is a one-in-a-trillion event per
/// offset. A shorter prefix is taken to be the whole input: it must start
/// with a sync byte, and so must every later 188-byte step it reaches. An
/// empty prefix is not a transport stream.
pub fn looks_like_ts(prefix: &[u8]) -> bool {
    if prefix.len() >= PROBE_LEN {
        (0..TS_PACKET_LEN).any(|offset| syncs_at(prefix, offset, PROBE_PACKETS))
    } else {
        let steps = prefix.len().div_ceil(TS_PACKET_LEN);
        steps > 0 && syncs_at(prefix, 0, steps)
    }
}

/// Whether `count` sync bytes sit at `offset`, `offset + 188`, ...
fn syncs_at(bytes: &[u8], offset: usize, count: usize) -> bool {
    (0..count).all(|k| bytes.get(offset + k * TS_PACKET_LEN) == Some(&SYNC_BYTE))
}

#[cfg(test)]
mod tests {
    use super::testutil::{packet, stream};
    use super::*;

    #[test]
    fn transport_stream_is_recognised() {
        let ts = stream(&[(0x100, false); 8]);
        assert!(looks_like_ts(&ts));
        assert!(looks_like_ts(&ts[..PROBE_LEN]));
        // Caught mid-packet.
        assert!(looks_like_ts(&ts[77..77 + PROBE_LEN]));
        assert!(looks_like_ts(&ts[77..]));
    }

    #[test]
    fn short_whole_input_is_recognised() {
        let one = packet(0x100, 0, false);
        assert!(looks_like_ts(&one));
        assert!(looks_like_ts(&stream(&[(0x100, false); 3])));
        assert!(!looks_like_ts(&[]));
        // A short input that does not start on a packet.
        assert!(!looks_like_ts(&one[1..]));
    }

    #[test]
    fn other_data_is_not_recognised() {
        assert!(!looks_like_ts(&[0u8; 4096]));
        let text = b"Lorem ipsum dolor sit amet. ".repeat(100);
        assert!(!looks_like_ts(&text));
        // Sync bytes at the wrong spacing.
        let mut wrong = vec![0u8; 2000];
        for i in (0..wrong.len()).step_by(187) {
            wrong[i] = SYNC_BYTE;
        }
        assert!(!looks_like_ts(&wrong));
        // Four good packets then garbage is not enough.
        let mut four = stream(&[(0x100, false); 4]);
        four.extend_from_slice(&[0u8; 400]);
        assert!(!looks_like_ts(&four));
    }
}
