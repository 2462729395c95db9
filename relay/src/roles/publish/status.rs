//! The publisher's once-a-second status line on stderr, and the last one:
//! what went in, and every way a datagram was lost on the way, each
//! counted apart so an operator can tell a bad input from a bad relay.

use std::time::Duration;

use shoal_proto::Time;
use shoal_proto::publisher::PublisherStats;

use crate::os;

/// How often the status line is printed.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Datagrams lost, by cause, since the start.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Losses {
    /// Sends to a relay that failed.
    pub send_errors: u64,
    /// Datagrams not sent because their relay was refusing.
    pub relay_unreachable: u64,
    /// UDP input from a sender not in `source=`.
    pub other_source: u64,
    /// UDP input over `max_rate`.
    pub over_rate: u64,
}

/// The once-a-second status line.
pub(super) struct Status {
    quiet: bool,
    next: Time,
    last: PublisherStats,
}

impl Status {
    pub(super) fn new(quiet: bool) -> Self {
        Self {
            quiet,
            next: os::now() + STATUS_INTERVAL,
            last: PublisherStats::default(),
        }
    }

    /// When the next line is due.
    pub(super) fn next(&self) -> Time {
        self.next
    }

    /// Whether the next line is due.
    pub(super) fn due(&self, now: Time) -> bool {
        now >= self.next
    }

    pub(super) fn print(&mut self, now: Time, stats: PublisherStats, losses: &Losses) {
        let elapsed = STATUS_INTERVAL + now.saturating_since(self.next);
        self.next = now + STATUS_INTERVAL;
        let bits = (stats.bytes_in - self.last.bytes_in) * 8;
        let kbps = bits * 1000 / elapsed.as_micros().max(1) as u64;
        self.last = stats;
        if !self.quiet {
            eprintln!(
                "shoal: {} chunks, {} blocks, {kbps} kbit/s in{}",
                stats.chunks,
                stats.blocks,
                note(stats, losses)
            );
        }
    }

    pub(super) fn print_final(&self, stats: PublisherStats, losses: &Losses) {
        if !self.quiet {
            eprintln!(
                "shoal: done: {} chunks, {} blocks, {} bytes{}",
                stats.chunks,
                stats.blocks,
                stats.bytes_in,
                note(stats, losses)
            );
        }
    }
}

/// The losses part of a status line: empty when nothing was lost.
fn note(stats: PublisherStats, losses: &Losses) -> String {
    let mut note = String::new();
    if stats.bytes_discarded > 0 {
        note += &format!(", {} bytes discarded (not TS)", stats.bytes_discarded);
    }
    if losses.other_source > 0 {
        note += &format!(
            ", {} input datagrams dropped (not from source=)",
            losses.other_source
        );
    }
    if losses.over_rate > 0 {
        note += &format!(
            ", {} input datagrams dropped (over max_rate)",
            losses.over_rate
        );
    }
    if losses.send_errors > 0 {
        note += &format!(", {} sends failed", losses.send_errors);
    }
    if losses.relay_unreachable > 0 {
        note += &format!(
            ", {} datagrams dropped (relay unreachable)",
            losses.relay_unreachable
        );
    }
    note
}
