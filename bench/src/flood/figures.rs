//! The flood's part of the report: what was sent, and where the relay
//! counted it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::FloodReport;
use super::mix::Kind;
use crate::target::RelayCounters;
use crate::text::count;

/// See the module docs.
#[derive(Debug, Clone, Serialize)]
pub struct FloodFigures {
    /// The flood process's own report.
    pub flooder: FloodReport,
    /// Datagrams the kernel dropped at the relay's port (full receive
    /// buffers) over the run, from /proc/net/udp; null if unreadable.
    pub relay_socket_drops: Option<u64>,
    /// HELLOs the relay answered (with a CHALLENGE) instead of dropping:
    /// within the per-IP handshake budget.
    pub hellos_answered: u64,
    /// The relay's drops, all reasons, over the measurement (null when
    /// its counters cannot be read).
    pub relay_dropped: Option<u64>,
    /// Datagrams the relay took for copies of what it already held (not
    /// drops): forged DATA and MANIFESTs that name a chunk or block it has
    /// verified can land here.
    pub relay_duplicates: Option<u64>,
    /// `relay_dropped + relay_duplicates + relay_socket_drops +
    /// hellos_answered`: every flood datagram should be one of these.
    pub accounted: Option<u64>,
    /// `accounted / flooder.sent`.
    pub accounted_ratio: Option<f64>,
    /// Per drop reason: the flood datagrams whose kind should land there
    /// (several kinds may share a reason; forged DATA may land in any of
    /// four) and what the relay counted.
    pub by_reason: BTreeMap<&'static str, ReasonFigures>,
}

/// One drop reason: expected from the flood's kinds, and counted.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReasonFigures {
    /// Flood datagrams of the kinds that name this reason first.
    pub flooded: u64,
    /// The relay's count.
    pub counted: u64,
}

impl FloodFigures {
    /// Puts the flood's report beside the relay's counters over the
    /// measurement.
    pub fn new(
        flooder: FloodReport,
        relay_socket_drops: Option<u64>,
        relay: Option<&RelayCounters>,
    ) -> Self {
        let hellos_answered = flooder.replies.get("challenge").copied().unwrap_or(0);
        let relay_dropped = relay.map(|r| r.dropped);
        let relay_duplicates = relay.map(|r| r.duplicates);
        let accounted = relay
            .map(|r| r.dropped + r.duplicates + relay_socket_drops.unwrap_or(0) + hellos_answered);
        let mut by_reason: BTreeMap<&'static str, ReasonFigures> = BTreeMap::new();
        for kind in Kind::ALL {
            let first = kind.reasons()[0];
            by_reason
                .entry(first)
                .or_insert(ReasonFigures {
                    flooded: 0,
                    counted: 0,
                })
                .flooded += flooder.sent_by_kind.get(kind.name()).copied().unwrap_or(0);
        }
        for (&reason, &n) in relay.iter().flat_map(|r| &r.drops) {
            by_reason
                .entry(reason)
                .or_insert(ReasonFigures {
                    flooded: 0,
                    counted: 0,
                })
                .counted = n;
        }
        Self {
            accounted_ratio: accounted.map(|a| a as f64 / flooder.sent.max(1) as f64),
            flooder,
            relay_socket_drops,
            hellos_answered,
            relay_dropped,
            relay_duplicates,
            accounted,
            by_reason,
        }
    }

    /// The table's rows.
    pub fn rows(&self, rows: &mut Vec<(&'static str, String)>) {
        let f = &self.flooder;
        rows.push((
            "flood",
            format!(
                "{} datagrams in {:.1} s: {} /s (asked {} /s), {}, {} ports, {} trains refused",
                count(f.sent as f64),
                f.duration_s,
                count(f.achieved_pps),
                count(f.rate_asked as f64),
                if f.gso { "GSO trains" } else { "one per send" },
                f.ports,
                f.send_failures
            ),
        ));
        let kinds: Vec<String> = f
            .sent_by_kind
            .iter()
            .map(|(k, n)| format!("{} {k}", count(*n as f64)))
            .collect();
        rows.push(("flood kinds", kinds.join(", ")));
        let reasons: Vec<String> = self
            .by_reason
            .iter()
            .filter(|(_, x)| x.flooded > 0 || x.counted > 0)
            .map(|(r, x)| {
                format!(
                    "{r} {}/{}",
                    count(x.counted as f64),
                    count(x.flooded as f64)
                )
            })
            .collect();
        rows.push((
            "flood drops",
            format!("counted/flooded by reason: {}", reasons.join(", ")),
        ));
        rows.push((
            "flood sum",
            match (self.accounted, self.accounted_ratio) {
                (Some(a), Some(ratio)) => format!(
                    "{} relay drops + {} taken for duplicates + {} socket-buffer drops + {} \
                     HELLOs answered = {} of {} sent ({:.2}%)",
                    count(self.relay_dropped.unwrap_or(0) as f64),
                    count(self.relay_duplicates.unwrap_or(0) as f64),
                    self.relay_socket_drops
                        .map_or("?".to_owned(), |d| count(d as f64)),
                    count(self.hellos_answered as f64),
                    count(a as f64),
                    count(f.sent as f64),
                    ratio * 100.0
                ),
                _ => "the relay's counters are unknown (external relay: give --relay-metrics)"
                    .to_owned(),
            },
        ));
    }
}
