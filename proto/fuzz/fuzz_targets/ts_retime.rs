//! Transport packets moved in time: `ts::shift_timestamps` and the readers
//! it stands on, `Packet::pcr` and `PesHeader::parse`, on arbitrary bytes.
//!
//! Input: an offset (8 bytes, little endian), then packets of 188 bytes,
//! each given a sync byte so that most are packets (a short last one is
//! not). Beyond "no panic": a packet's PCR moves by the offset (×300,
//! modulo the PCR's wrap) and its PES header's PTS and DTS by the offset
//! (modulo 2^33), nothing else it reads changes, and shifting again by the
//! rest of the turn gives the packet back byte for byte; what is not a
//! packet is refused and left as it was.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::ts::{
    Packet, PesHeader, SYNC_BYTE, TIMESTAMP_WRAP, TS_PACKET_LEN, shift_timestamps,
};

/// The PCR wraps with its base: 2^33 × 300 ticks of 27 MHz.
const PCR_WRAP: u64 = TIMESTAMP_WRAP * 300;

/// What a packet says about time: its PCR, PID and PES header.
fn clocks(packet: &[u8]) -> Option<(Option<u64>, u16, Option<PesHeader>)> {
    let view = Packet::new_checked(packet).ok()?;
    let pes = view
        .payload()
        .filter(|_| view.payload_unit_start())
        .and_then(PesHeader::parse);
    Some((view.pcr(), view.pid(), pes))
}

fuzz_target!(|bytes: &[u8]| {
    let Some((offset, packets)) = bytes.split_first_chunk::<8>() else {
        return;
    };
    let ticks = u64::from_le_bytes(*offset);
    let turn = ticks % TIMESTAMP_WRAP;
    let _ = PesHeader::parse(packets);
    for piece in packets.chunks(TS_PACKET_LEN) {
        let mut packet = piece.to_vec();
        packet[0] = SYNC_BYTE;
        let before = packet.clone();
        let shifted = shift_timestamps(&mut packet, ticks);
        let Some((pcr, pid, pes)) = clocks(&before) else {
            assert!(shifted.is_err());
            assert_eq!(packet, before);
            continue;
        };
        shifted.expect("a packet is shifted");
        let (moved_pcr, moved_pid, moved_pes) = clocks(&packet).expect("still a packet");
        assert_eq!(moved_pid, pid);
        // Modulo the wrap on both sides: an extension out of range (300 to
        // 511) on the last base reads as a PCR past it.
        assert_eq!(
            moved_pcr.map(|p| p % PCR_WRAP),
            pcr.map(|p| (p + turn * 300) % PCR_WRAP)
        );
        let moved = |ts: Option<u64>| ts.map(|t| (t + turn) % TIMESTAMP_WRAP);
        assert_eq!(moved_pes.map(|h| h.stream_id), pes.map(|h| h.stream_id));
        assert_eq!(
            moved_pes.and_then(|h| h.pts),
            moved(pes.and_then(|h| h.pts))
        );
        assert_eq!(
            moved_pes.and_then(|h| h.dts),
            moved(pes.and_then(|h| h.dts))
        );
        shift_timestamps(&mut packet, TIMESTAMP_WRAP - turn).expect("a packet is shifted");
        assert_eq!(packet, before);
    }
});
