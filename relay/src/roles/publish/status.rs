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
    [
        (stats.bytes_discarded, "bytes discarded (not TS)"),
        (
            losses.other_source,
            "input datagrams dropped (not from source=)",
        ),
        (losses.over_rate, "input datagrams dropped (over max_rate)"),
        (losses.send_errors, "sends failed"),
        (
            losses.relay_unreachable,
            "datagrams dropped (relay unreachable)",
        ),
    ]
    .into_iter()
    .filter(|&(count, _)| count > 0)
    .map(|(count, what)| format!(", {count} {what}"))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_names_each_loss_in_order() {
        let stats = PublisherStats::default();
        assert_eq!(note(stats, &Losses::default()), "");
        let stats = PublisherStats {
            bytes_discarded: 7,
            ..stats
        };
        let losses = Losses {
            send_errors: 1,
            relay_unreachable: 2,
            other_source: 3,
            over_rate: 0,
        };
        assert_eq!(
            note(stats, &losses),
            ", 7 bytes discarded (not TS), 3 input datagrams dropped (not from source=), \
             1 sends failed, 2 datagrams dropped (relay unreachable)"
        );
    }
}
