//! Paces a recorded MPEG-TS file at the rate it was recorded.
//!
//! A file read flat out would arrive at relays as one huge burst and be a
//! stream nobody can watch live. The program clock reference (PCR) says
//! when each packet was meant to leave the encoder: a packet carrying a PCR
//! is held until the wall time since the first PCR has caught up with the
//! PCR's own distance from it; the packets between two PCRs go out as soon
//! as they are read. Until the first PCR, and in a file without one, bytes
//! are paced at [`FALLBACK_BPS`].

use std::time::Duration;

use shoal_proto::ts::Packet;

/// Rate for input without a PCR: a typical SD/720p live stream.
pub const FALLBACK_BPS: u64 = 3_000_000;

/// The PCR ticks at 27 MHz.
const PCR_HZ: u64 = 27_000_000;

/// The PCR wraps at 2^33 × 300 ticks (about 26.5 hours).
const PCR_WRAP: u64 = (1 << 33) * 300;

/// A PCR further than this from the expected one is a discontinuity (a
/// spliced or looped file): pacing restarts from it instead of stalling.
const MAX_PCR_JUMP: Duration = Duration::from_secs(10);

/// The 42-bit PCR of one 188-byte TS packet, in 27 MHz ticks, with its PID.
pub fn pcr(packet: &[u8]) -> Option<(u16, u64)> {
    let packet = Packet::new_checked(packet).ok()?;
    Some((packet.pid(), packet.pcr()?))
}

/// When each packet of a file may be sent, as an offset from the start.
#[derive(Debug, Default)]
pub struct Pacer {
    /// The PID whose PCRs are followed (a file may carry several programs).
    pcr_pid: Option<u16>,
    /// The PCR the clock is anchored to, and the offset it was due at.
    anchor: Option<(u64, Duration)>,
    /// The offset the last packet was due at.
    last_due: Duration,
    /// Bytes taken since the anchor (or the start) without a PCR.
    bytes_since_anchor: u64,
}

impl Pacer {
    /// Whether a PCR has been seen.
    pub fn has_pcr(&self) -> bool {
        self.pcr_pid.is_some()
    }

    /// When `packet` (one 188-byte TS packet, or stray bytes) is due,
    /// counted from the moment the first packet went out.
    pub fn due(&mut self, packet: &[u8]) -> Duration {
        if let Some((pid, pcr)) = pcr(packet)
            && *self.pcr_pid.get_or_insert(pid) == pid
        {
            self.last_due = self.due_at_pcr(pcr);
            self.bytes_since_anchor = 0;
            return self.last_due;
        }
        if self.anchor.is_none() {
            // No PCR to go by: space bytes at the fallback rate.
            self.bytes_since_anchor += packet.len() as u64;
            self.last_due = byte_time(self.bytes_since_anchor);
        }
        self.last_due
    }

    fn due_at_pcr(&mut self, pcr: u64) -> Duration {
        let Some((anchor_pcr, anchor_due)) = self.anchor else {
            self.anchor = Some((pcr, self.last_due));
            return self.last_due;
        };
        let ticks = (pcr + PCR_WRAP - anchor_pcr) % PCR_WRAP;
        let due = anchor_due + ticks_to_duration(ticks);
        let jumped = due > self.last_due + MAX_PCR_JUMP || due < self.last_due;
        if jumped {
            self.anchor = Some((pcr, self.last_due));
            return self.last_due;
        }
        due
    }
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_micros(ticks / (PCR_HZ / 1_000_000))
}

fn byte_time(bytes: u64) -> Duration {
    Duration::from_micros(bytes.saturating_mul(8_000_000) / FALLBACK_BPS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::ts::{SYNC_BYTE, TS_PACKET_LEN, pcr_field};

    fn packet_with_pcr(pid: u16, pcr: u64) -> [u8; TS_PACKET_LEN] {
        let mut p = [0xff; TS_PACKET_LEN];
        p[0] = SYNC_BYTE;
        p[1..3].copy_from_slice(&pid.to_be_bytes());
        // An adaptation field only, 183 bytes of it: the PCR flag, the PCR.
        p[3] = 0x20;
        p[4] = 183;
        p[5] = 0x10;
        p[6..12].copy_from_slice(&pcr_field(pcr / 300, (pcr % 300) as u16));
        p
    }

    fn plain_packet(pid: u16) -> [u8; TS_PACKET_LEN] {
        let mut p = [0; TS_PACKET_LEN];
        p[0] = SYNC_BYTE;
        p[1..3].copy_from_slice(&pid.to_be_bytes());
        p[3] = 0x10;
        p
    }

    #[test]
    fn pcr_round_trips() {
        for value in [0, 1, 299, 300, 27_000_000 * 3600 + 17, PCR_WRAP - 1] {
            assert_eq!(pcr(&packet_with_pcr(0x100, value)), Some((0x100, value)));
        }
        assert_eq!(pcr(&plain_packet(0x100)), None);
    }

    #[test]
    fn packets_are_due_at_their_pcr_distance() {
        let mut pacer = Pacer::default();
        let start = 27_000_000 * 5;
        assert_eq!(pacer.due(&packet_with_pcr(0x100, start)), Duration::ZERO);
        assert_eq!(pacer.due(&plain_packet(0x100)), Duration::ZERO);
        let later = packet_with_pcr(0x100, start + 27_000 * 40);
        assert_eq!(pacer.due(&later), Duration::from_millis(40));
        assert_eq!(pacer.due(&plain_packet(0x101)), Duration::from_millis(40));
        // Another program's clock is ignored.
        assert_eq!(
            pacer.due(&packet_with_pcr(0x200, 0)),
            Duration::from_millis(40)
        );
        assert!(pacer.has_pcr());
    }

    #[test]
    fn pcr_wrap_and_jumps_do_not_stall() {
        let mut pacer = Pacer::default();
        pacer.due(&packet_with_pcr(0x100, PCR_WRAP - 27_000));
        let wrapped = pacer.due(&packet_with_pcr(0x100, 27_000));
        assert_eq!(wrapped, Duration::from_millis(2));
        // Backwards: restart from here rather than wait a day.
        let back = pacer.due(&packet_with_pcr(0x100, 0));
        assert_eq!(back, Duration::from_millis(2));
        let next = pacer.due(&packet_with_pcr(0x100, 27_000 * 10));
        assert_eq!(next, Duration::from_millis(12));
    }

    #[test]
    fn without_pcr_bytes_go_at_the_fallback_rate() {
        let mut pacer = Pacer::default();
        let mut due = Duration::ZERO;
        for _ in 0..2_000 {
            due = pacer.due(&plain_packet(0x100));
        }
        // 2000 × 188 × 8 bits at 3 Mbit/s.
        assert_eq!(due, Duration::from_micros(1_002_666));
        assert!(!pacer.has_pcr());
    }
}
