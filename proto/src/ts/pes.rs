//! The head of a PES packet (ISO/IEC 13818-1, 2.4.3.6 and 2.4.3.7) where
//! it starts, at the front of a transport packet's payload: the stream id
//! and, for most streams, a PTS and a DTS; and the 5-byte timestamp field,
//! read and written.

/// PTS, DTS and the PCR's base count 90 kHz ticks modulo this: 2^33, about
/// 26.5 hours.
pub const TIMESTAMP_WRAP: u64 = 1 << 33;

/// packet_start_code_prefix, then the stream_id.
const START_CODE: [u8; 3] = [0, 0, 1];
/// The first flags byte of the optional header, '10' in its top bits.
const MARKER_AT: usize = 6;
const MARKER_MASK: u8 = 0xC0;
const MARKER: u8 = 0x80;
/// The second flags byte: PTS_DTS_flags in its top two bits.
const FLAGS_AT: usize = 7;
const HAS_PTS: u8 = 0x80;
const HAS_DTS: u8 = 0x40;
/// PES_header_data_length: the optional fields' bytes after it.
const HEADER_DATA_LEN_AT: usize = 8;
/// Where the PTS field starts, when there is one.
pub(super) const PTS_AT: usize = HEADER_DATA_LEN_AT + 1;
/// Where the DTS field starts, when there is one: right after the PTS.
pub(super) const DTS_AT: usize = PTS_AT + TIMESTAMP_LEN;
/// A PTS or DTS field: a 4-bit prefix, the 33 bits in three pieces, a
/// marker bit after each.
const TIMESTAMP_LEN: usize = 5;
/// The bits of a timestamp field's bytes that are not the timestamp's: the
/// prefix and the marker in the first, a marker in the third and fifth.
const FIRST_BYTE_OTHER: u8 = 0xF1;
const MARKER_BIT: u8 = 0x01;

/// Stream ids whose PES packets have no optional header, so no PTS or DTS
/// (2.4.3.7): program_stream_map, padding_stream, private_stream_2, ECM,
/// EMM, DSMCC, ITU-T H.222.1 type E, program_stream_directory.
const NO_OPTIONAL_HEADER: [u8; 8] = [0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF];

/// Video stream ids: 1110 xxxx.
const VIDEO_STREAM_IDS: std::ops::RangeInclusive<u8> = 0xE0..=0xEF;

/// The head of a PES packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PesHeader {
    /// The stream_id: 0xC0 to 0xDF audio, 0xE0 to 0xEF video, and others.
    pub stream_id: u8,
    /// The presentation time stamp, 90 kHz ticks.
    pub pts: Option<u64>,
    /// The decoding time stamp, 90 kHz ticks; only beside a PTS, and only
    /// when it differs from it.
    pub dts: Option<u64>,
}

impl PesHeader {
    /// The header at the front of `payload`, the payload of a transport
    /// packet with the payload_unit_start_indicator set; `None` if it does
    /// not start with a start code prefix and a stream id. A PSI section
    /// cannot start that way (table_id 0 is the PAT, whose next byte has
    /// the section_syntax_indicator set). A PTS or DTS that the flags
    /// announce but that the optional header's length or the payload does
    /// not hold reads as absent, as do both in an optional header without
    /// its '10' marker.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let (prefix, rest) = payload.split_first_chunk::<3>()?;
        let (&stream_id, _) = rest.split_first()?;
        if *prefix != START_CODE {
            return None;
        }
        let mut header = Self {
            stream_id,
            pts: None,
            dts: None,
        };
        if NO_OPTIONAL_HEADER.contains(&stream_id) {
            return Some(header);
        }
        let (Some(&marker), Some(&flags), Some(&data_len)) = (
            payload.get(MARKER_AT),
            payload.get(FLAGS_AT),
            payload.get(HEADER_DATA_LEN_AT),
        ) else {
            return Some(header);
        };
        if marker & MARKER_MASK != MARKER {
            return Some(header);
        }
        // The optional fields end here, and inside the payload.
        let end = (PTS_AT + usize::from(data_len)).min(payload.len());
        let field = |at: usize| {
            payload
                .get(at..at + TIMESTAMP_LEN)
                .filter(|_| at + TIMESTAMP_LEN <= end)
                .map(read_timestamp)
        };
        // PTS_DTS_flags: 10 a PTS, 11 both, 01 is forbidden.
        if flags & HAS_PTS != 0 {
            header.pts = field(PTS_AT);
            if flags & HAS_DTS != 0 && header.pts.is_some() {
                header.dts = field(DTS_AT);
            }
        }
        Some(header)
    }

    /// Whether the stream id is a video stream's.
    pub fn is_video(&self) -> bool {
        VIDEO_STREAM_IDS.contains(&self.stream_id)
    }
}

/// The 33-bit timestamp in a 5-byte PTS or DTS field; `field` must be at
/// least 5 bytes. Marker bits are not checked.
fn read_timestamp(field: &[u8]) -> u64 {
    let byte = |i: usize| u64::from(field.get(i).copied().unwrap_or(0));
    (byte(0) >> 1 & 0x07) << 30 | byte(1) << 22 | (byte(2) >> 1) << 15 | byte(3) << 7 | byte(4) >> 1
}

/// Writes `ts` (modulo 2^33) into the 5-byte PTS or DTS field `field`,
/// keeping its prefix and marker bits; shorter fields are left alone.
pub(super) fn write_timestamp(field: &mut [u8], ts: u64) {
    let Some(field) = field.first_chunk_mut::<TIMESTAMP_LEN>() else {
        return;
    };
    let ts = ts % TIMESTAMP_WRAP;
    field[0] = field[0] & FIRST_BYTE_OTHER | (ts >> 29) as u8 & !FIRST_BYTE_OTHER;
    field[1] = (ts >> 22) as u8;
    field[2] = field[2] & MARKER_BIT | (ts >> 14) as u8 & !MARKER_BIT;
    field[3] = (ts >> 7) as u8;
    field[4] = field[4] & MARKER_BIT | (ts << 1) as u8 & !MARKER_BIT;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A video PES header with a PTS and, if given, a DTS.
    fn header(pts: u64, dts: Option<u64>) -> Vec<u8> {
        let (flags, prefix, len) = match dts {
            Some(_) => (0xC0, 0x31, 10),
            None => (0x80, 0x21, 5),
        };
        let mut bytes = vec![0, 0, 1, 0xE0, 0, 0, 0x80, flags, len];
        let mut field = [prefix, 0, 1, 0, 1];
        write_timestamp(&mut field, pts);
        bytes.extend_from_slice(&field);
        if let Some(dts) = dts {
            let mut field = [0x11, 0, 1, 0, 1];
            write_timestamp(&mut field, dts);
            bytes.extend_from_slice(&field);
        }
        bytes.extend_from_slice(&[0, 0, 0, 1, 0x09]);
        bytes
    }

    #[test]
    fn a_pts_field_as_the_standard_lays_it_out() {
        // PTS 0x1_2345_6789 with prefix 0010: bits 32..30, then 29..15,
        // then 14..0, each followed by a marker bit.
        let bytes = header(0x1_2345_6789, None);
        assert_eq!(bytes[PTS_AT..DTS_AT], [0x29, 0x8D, 0x15, 0xCF, 0x13]);
        let parsed = PesHeader::parse(&bytes).expect("a header");
        assert_eq!(parsed.pts, Some(0x1_2345_6789));
        assert_eq!(parsed.dts, None);
        assert!(parsed.is_video());
    }

    #[test]
    fn pts_and_dts_read_back() {
        let parsed = PesHeader::parse(&header(900_000, Some(897_000))).expect("a header");
        assert_eq!(
            parsed,
            PesHeader {
                stream_id: 0xE0,
                pts: Some(900_000),
                dts: Some(897_000)
            }
        );
    }

    #[test]
    fn what_is_not_a_pes_header_or_has_no_timestamps() {
        // A PAT section behind its pointer field.
        assert_eq!(PesHeader::parse(&[0, 0, 0xB0, 0x0D, 0, 1]), None);
        assert_eq!(PesHeader::parse(&[0, 0, 1]), None);
        assert_eq!(PesHeader::parse(&[]), None);
        // Padding has no optional header: what looks like flags is data.
        let mut padding = header(1, None);
        padding[3] = 0xBE;
        let parsed = PesHeader::parse(&padding).expect("a header");
        assert_eq!((parsed.pts, parsed.is_video()), (None, false));
        // Cut inside the PTS.
        let full = header(1, Some(0));
        assert_eq!(
            PesHeader::parse(&full[..PTS_AT + 4]).and_then(|h| h.pts),
            None
        );
        // The DTS cut off, or beyond the header's declared length.
        let parsed = PesHeader::parse(&full[..DTS_AT + 2]).expect("a header");
        assert_eq!((parsed.pts, parsed.dts), (Some(1), None));
        let mut short = full.clone();
        short[HEADER_DATA_LEN_AT] = 5;
        let parsed = PesHeader::parse(&short).expect("a header");
        assert_eq!((parsed.pts, parsed.dts), (Some(1), None));
        // PTS_DTS_flags 01 is forbidden: nothing.
        let mut forbidden = full.clone();
        forbidden[FLAGS_AT] = HAS_DTS;
        assert_eq!(PesHeader::parse(&forbidden).and_then(|h| h.dts), None);
        // No '10' marker (an MPEG-1 style header).
        let mut unmarked = full;
        unmarked[MARKER_AT] = 0x0F;
        assert_eq!(PesHeader::parse(&unmarked).and_then(|h| h.pts), None);
    }

    proptest! {
        #[test]
        fn timestamps_round_trip_and_keep_the_other_bits(
            ts in any::<u64>(),
            other in any::<[u8; 5]>(),
        ) {
            let mut field = other;
            write_timestamp(&mut field, ts);
            prop_assert_eq!(read_timestamp(&field), ts % TIMESTAMP_WRAP);
            prop_assert_eq!(field[0] & FIRST_BYTE_OTHER, other[0] & FIRST_BYTE_OTHER);
            prop_assert_eq!(field[2] & MARKER_BIT, other[2] & MARKER_BIT);
            prop_assert_eq!(field[4] & MARKER_BIT, other[4] & MARKER_BIT);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = PesHeader::parse(&bytes);
        }
    }
}
