//! When a missing chunk is due its next NACK: what a chunk that neither
//! the relay nor FEC delivered remembers ([`Missing`]), how long it waits
//! for reordering, for its club's usual latency and between tries, and
//! when asking is no use any more ([`DueContext`]).

use std::net::SocketAddr;
use std::time::Duration;

use super::Playout;
use crate::Time;
use crate::wire::MAX_CLUBS;

/// How many times a chunk is NACKed at most.
pub(super) const NACK_TRIES: u8 = 6;
/// With `club_nack`, how long after a later chunk of its club arrived a
/// missing chunk is NACKed (reordering allowance).
pub const CLUB_REORDER: Duration = Duration::from_millis(20);
/// With `club_nack`, how long the stream must bring no new chunk at all
/// before a missing chunk that nothing of its club has overtaken is NACKed
/// anyway: a club's last chunks before the end of the stream (or a pause)
/// have no successor. While chunks flow, a club that lags behind the others
/// (a longer path of peers) is not NACKed early, which would only fetch
/// duplicates. Above a stream's gap between chunks at low bitrates, well
/// inside a peer's 2 s latency.
pub(super) const CLUB_SILENT: Duration = Duration::from_millis(500);
/// With `club_nack`, how many of its club's usual variations past the
/// club's usual latency a missing chunk is NACKed at the latest, when no
/// later chunk of its club has come to show it lost: a club's chunks come
/// [`CLUB_REORDER`] apart only in a stream of one club, and with 8 clubs
/// at 500 kbit/s the next chunk of a club comes 170 ms after the last, so
/// waiting for it added 170 ms to every repair on every hop. Each club
/// keeps its own latency (publisher's stamp to verified here, smoothed as
/// TCP smooths its round trip: 1/8 of each sample, its deviation 1/4);
/// chunks that were NACKed or rebuilt do not count. A chunk's stamp is
/// taken as the next arrived chunk's, so never too early.
///
/// 2, not 4, since the fifteenth session of issue 20: a chunk that is
/// only late costs a NACK its serving neighbour does not answer (the
/// chunk came to it too recently, [`RelayConfig::nack_skips_fresh`]: its
/// push is on the way), while one that is lost is asked for two
/// deviations sooner on every hop below the loss. With a lack wait of 3
/// round trips, in 10,000 peers x 60 s: p99 1110 -> 1010 ms, duplicates
/// 2.8 -> 4.8% of new stream bytes (BENCHMARKS.md, "Issue 20, fifteenth
/// session").
///
/// [`RelayConfig::nack_skips_fresh`]: crate::relay::RelayConfig::nack_skips_fresh
pub const CLUB_LATE: u32 = 2;

/// In half round trips, how long after its first NACK a chunk that the
/// neighbour serving its club says it lacks too
/// ([`Repair::neighbour_have`](super::repair::Repair::neighbour_have))
/// waits before it is asked again: 3 round trips, not 2. The loss
/// is further up; the neighbour is repairing it, and its copy and its push
/// to us take about as long as asking the relay would. Asked at 2 round
/// trips, both came in nearly every case, and those second copies were
/// most of all duplicates: in 10,000 peers x 30 s, 8.2% -> 4.9% of new
/// stream bytes, p99 1120 -> 1210 ms, relays 130 -> 107 kbit/s per peer
/// (BENCHMARKS.md, "Issue 20, eleventh session"; 4.5 round trips: 3.7%,
/// p99 1320 ms). 3.5 round trips until the fifteenth session, when the
/// duplicates had fallen to 2.8% and were spent on latency: with
/// [`CLUB_LATE`] 2, 3 round trips cost 1.3 points of duplicates (after
/// the first 10 s) and saved 20 ms of p99 at 10,000 x 20 s (2.5 round
/// trips 30 ms more there, but at 10,000 x 60 s p99 1020 ms against 1010,
/// duplicates 6.0% against 4.8%).
pub(super) const LACK_WAIT_HALF_RTTS: u32 = 6;

#[derive(Debug, Clone, Copy)]
pub(super) struct Missing {
    pub(super) noticed: Time,
    /// When a later chunk of its club was first seen (`club_nack`).
    pub(super) overtaken: Option<Time>,
    pub(super) last_nack: Option<Time>,
    pub(super) nacks: u8,
    /// The peer its last NACK went to (none: the relay).
    pub(super) asked: Option<SocketAddr>,
    /// That peer said it lacks it too.
    pub(super) lacks: bool,
}

impl Missing {
    /// How long after its last NACK it is NACKed again: the serving
    /// neighbour lacking it too is repairing it ([`LACK_WAIT_HALF_RTTS`]);
    /// another neighbour lacking it too sends it to the relay as soon as
    /// it says so.
    pub(super) fn retry_wait(&self, rtt: Duration) -> Duration {
        match (self.lacks, self.nacks) {
            (true, 1) => rtt * LACK_WAIT_HALF_RTTS / 2,
            (true, _) => rtt,
            (false, _) => rtt * 2,
        }
    }
}

/// When a chunk of `club`, stamped at `stamped` at the latest, is later
/// than its club's chunks usually are (see [`CLUB_LATE`]).
pub(super) fn late_at(
    club_latency: &[Option<(Duration, Duration)>],
    club: u64,
    stamped: Time,
) -> Option<Time> {
    let (smooth, deviation) = (*club_latency.get(club as usize)?)?;
    Some(stamped + smooth + deviation * CLUB_LATE)
}

/// What a missing chunk's due time depends on besides the chunk.
pub(super) struct DueContext {
    /// The number of clubs, with `club_nack`.
    pub(super) club_step: Option<u64>,
    pub(super) club_latency: [Option<(Duration, Duration)>; MAX_CLUBS as usize],
    pub(super) rtt: Duration,
    pub(super) fec_wait: Duration,
    pub(super) quiet_at: Option<Time>,
}

impl DueContext {
    /// When the missing chunk `seq` is next due a NACK (by the rules
    /// [`Repair`](super::repair::Repair)'s pass applies), if ever while
    /// nothing more arrives; notes it overtaken if a later chunk of its club is held.
    pub(super) fn due(
        &self,
        seq: u64,
        m: &mut Missing,
        now: Time,
        playout: &Playout,
    ) -> Option<Time> {
        if m.nacks >= NACK_TRIES {
            return None;
        }
        let window = playout.window();
        let stamped = playout.stamped_by(seq);
        let ripe = match self.club_step {
            Some(step) => {
                let overtaken = (1..=2).any(|k| {
                    seq.checked_add(k * step)
                        .is_some_and(|s| window.chunk(s).is_some())
                });
                if overtaken && m.overtaken.is_none() {
                    m.overtaken = Some(now);
                }
                let late = stamped.and_then(|t| late_at(&self.club_latency, seq % step, t));
                [
                    m.overtaken.map(|t| t + CLUB_REORDER),
                    self.quiet_at.map(|t| t.max(m.noticed + CLUB_REORDER)),
                    late,
                ]
                .into_iter()
                .flatten()
                .min()?
            }
            None => m.noticed + self.fec_wait,
        };
        let at = match m.last_nack {
            Some(t) => ripe.max(t + m.retry_wait(self.rtt)),
            None => ripe,
        };
        // Past asking once a repair could not come before the deadline.
        let deadline = stamped.map(|t| t + playout.budget());
        deadline.is_none_or(|d| at + self.rtt < d).then_some(at)
    }
}
