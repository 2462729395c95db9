//! Moving a transport packet in time. When a recorded stream is looped or
//! spliced, its clocks must keep counting forward across the join for a
//! player to take it as one stream: each packet's PCR, and the PTS and DTS
//! of a PES packet that starts in it, move by the same offset.

use super::packet::{PCR_AT, PCR_LEN, Packet, PacketError, TS_PACKET_LEN, pcr_parts};
use super::pes::{DTS_AT, PTS_AT, PesHeader, TIMESTAMP_WRAP, write_timestamp};

/// Adds `ticks` of the 90 kHz clock to the clocks in `packet`, one 188-byte
/// transport packet, each wrapping at [`TIMESTAMP_WRAP`] ticks: the PCR
/// (its base; the extension, below one tick, stays) and, when a PES packet
/// starts in it, that header's PTS and DTS. Every other bit stays as it
/// was, reserved and marker bits included. Fails, changing nothing, if
/// `packet` is not a transport packet.
pub fn shift_timestamps(packet: &mut [u8], ticks: u64) -> Result<(), PacketError> {
    let view = Packet::new_checked(packet)?;
    let has_pcr = view.pcr().is_some();
    let pes = view
        .payload()
        .filter(|_| view.payload_unit_start())
        .and_then(|payload| {
            let header = PesHeader::parse(payload)?;
            Some((TS_PACKET_LEN - payload.len(), header))
        });
    let ticks = ticks % TIMESTAMP_WRAP;
    if has_pcr && let Some(field) = packet.get_mut(PCR_AT..).and_then(<[u8]>::first_chunk_mut) {
        shift_pcr_base(field, ticks);
    }
    if let Some((start, header)) = pes {
        for (at, ts) in [(PTS_AT, header.pts), (DTS_AT, header.dts)] {
            if let (Some(ts), Some(field)) = (ts, packet.get_mut(start + at..)) {
                write_timestamp(field, ts + ticks);
            }
        }
    }
    Ok(())
}

/// Adds `ticks` (below [`TIMESTAMP_WRAP`]) to the base of the PCR field
/// `field`; the reserved bits and the extension stay as they are, even an
/// extension out of range.
fn shift_pcr_base(field: &mut [u8; PCR_LEN], ticks: u64) {
    let (base, _) = pcr_parts(field);
    let base = (base + ticks) % TIMESTAMP_WRAP;
    field[..4].copy_from_slice(&((base >> 1) as u32).to_be_bytes());
    field[4] = field[4] & 0x7F | ((base & 1) as u8) << 7;
}

#[cfg(test)]
mod tests {
    use super::super::packet::{Header, SYNC_BYTE, pcr_field};
    use super::*;
    use proptest::prelude::*;

    /// A video packet starting a PES packet with `pts` and `dts`, behind an
    /// adaptation field with `pcr` (27 MHz) if given.
    fn video(pcr: Option<u64>, pts: u64, dts: u64) -> [u8; TS_PACKET_LEN] {
        let mut p = [0xAAu8; TS_PACKET_LEN];
        let header = Header {
            payload_unit_start: true,
            pid: 0x100,
            adaptation_field: pcr.is_some(),
            continuity_counter: 3,
        };
        p[..Header::LEN].copy_from_slice(&header.to_bytes());
        let mut at = Header::LEN;
        if let Some(pcr) = pcr {
            p[4] = 7;
            p[5] = 0x50;
            p[PCR_AT..PCR_AT + PCR_LEN].copy_from_slice(&pcr_field(pcr / 300, (pcr % 300) as u16));
            at = PCR_AT + PCR_LEN;
        }
        let pes = [0, 0, 1, 0xE0, 0, 0, 0x80, 0xC0, 10];
        p[at..at + pes.len()].copy_from_slice(&pes);
        at += pes.len();
        p[at..at + 10].copy_from_slice(&[0x31, 0, 1, 0, 1, 0x11, 0, 1, 0, 1]);
        write_timestamp(&mut p[at..], pts);
        write_timestamp(&mut p[at + 5..], dts);
        p
    }

    fn clocks(p: &[u8]) -> (Option<u64>, Option<u64>, Option<u64>) {
        let view = Packet::new_checked(p).expect("a packet");
        let pes = view.payload().and_then(PesHeader::parse);
        (view.pcr(), pes.and_then(|h| h.pts), pes.and_then(|h| h.dts))
    }

    #[test]
    fn every_clock_moves_by_the_offset() {
        let mut p = video(Some(27_000_000 + 17), 183_000, 180_000);
        shift_timestamps(&mut p, 360_000).expect("a packet");
        assert_eq!(
            clocks(&p),
            (
                Some(27_000_000 + 17 + 360_000 * 300),
                Some(543_000),
                Some(540_000)
            )
        );
        let before = video(Some(27_000_000 + 17), 183_000, 180_000);
        // Only the clocks' bytes changed.
        let changed: Vec<usize> = (0..TS_PACKET_LEN).filter(|&i| p[i] != before[i]).collect();
        assert!(
            changed
                .iter()
                .all(|&i| (PCR_AT..PCR_AT + PCR_LEN).contains(&i) || (21..31).contains(&i)),
            "{changed:?}"
        );
    }

    #[test]
    fn clocks_wrap_at_33_bits() {
        let top = TIMESTAMP_WRAP - 1000;
        let mut p = video(Some(top * 300 + 5), top + 500, top);
        shift_timestamps(&mut p, 3000).expect("a packet");
        assert_eq!(clocks(&p), (Some(2000 * 300 + 5), Some(2500), Some(2000)));
        // A whole turn of the clock is no change; nor is an offset above it
        // by more than a turn.
        let before = p;
        shift_timestamps(&mut p, TIMESTAMP_WRAP).expect("a packet");
        assert_eq!(p, before);
        shift_timestamps(&mut p, 3 * TIMESTAMP_WRAP + 1).expect("a packet");
        assert_eq!(clocks(&p), (Some(2001 * 300 + 5), Some(2501), Some(2001)));
    }

    #[test]
    fn packets_without_clocks_are_untouched() {
        // A PES continuation: its payload is not a header even if it looks
        // like one.
        let mut p = video(None, 1, 1);
        p[1] &= !0x40;
        let before = p;
        shift_timestamps(&mut p, 12_345).expect("a packet");
        assert_eq!(p, before);
        // A PAT.
        let mut pat = [0xFFu8; TS_PACKET_LEN];
        pat[..8].copy_from_slice(&[SYNC_BYTE, 0x40, 0, 0x10, 0, 0, 0xB0, 0x0D]);
        let before = pat;
        shift_timestamps(&mut pat, 12_345).expect("a packet");
        assert_eq!(pat, before);
        // Not a packet: an error, nothing changed.
        let mut short = [SYNC_BYTE; 100];
        assert!(shift_timestamps(&mut short, 1).is_err());
        assert_eq!(short, [SYNC_BYTE; 100]);
    }

    proptest! {
        /// Any 188 bytes: no panic, and shifting back undoes the shift.
        #[test]
        fn a_shift_and_its_inverse_leave_any_packet_as_it_was(
            mut bytes in proptest::collection::vec(any::<u8>(), TS_PACKET_LEN),
            flags in any::<u8>(),
            ticks in 0..TIMESTAMP_WRAP,
        ) {
            bytes[0] = SYNC_BYTE;
            // Often a header with an adaptation field and a PES start.
            if flags & 1 != 0 {
                bytes[1] |= 0x40;
                bytes[3] |= 0x30;
                bytes[4] = flags >> 2 & 0x1F;
                let at = 5 + usize::from(bytes[4]);
                bytes[at..at + 3].copy_from_slice(&[0, 0, 1]);
            }
            let before = bytes.clone();
            shift_timestamps(&mut bytes, ticks).expect("a packet");
            shift_timestamps(&mut bytes, TIMESTAMP_WRAP - ticks).expect("a packet");
            prop_assert_eq!(bytes, before);
        }
    }
}
