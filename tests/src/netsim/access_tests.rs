//! A node's access link in the network: its uplink, one queue for all its
//! destinations before each link's own fate; its downlink's burst chain,
//! one for all its senders after each link's fate.

use std::net::SocketAddr;
use std::time::Duration;

use shoal_proto::Time;

use super::*;

const T0: Time = Network::START;

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

fn addr(host: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], 4433))
}

/// Sends `count` datagrams of `size` bytes at once when added, round robin
/// over `to`, each starting with its sequence number.
struct Spray {
    to: Vec<SocketAddr>,
    size: usize,
    count: u32,
    sent: u32,
}

impl Node for Spray {
    fn handle_datagram(&mut self, _now: Time, _from: SocketAddr, _bytes: &[u8]) {}
    fn handle_timeout(&mut self, _now: Time) {}
    fn poll_transmit(&mut self, _now: Time) -> Option<Outgoing> {
        if self.sent == self.count {
            return None;
        }
        let mut bytes = vec![0; self.size];
        bytes[..4].copy_from_slice(&self.sent.to_le_bytes());
        let to = self.to[self.sent as usize % self.to.len()];
        self.sent += 1;
        Some(Outgoing::new(to, bytes))
    }
    fn poll_timeout(&self) -> Option<Time> {
        None
    }
}

/// Keeps (arrival, sequence number) of every datagram.
#[derive(Default)]
struct Sink(Vec<(Time, u32)>);

impl Node for Sink {
    fn handle_datagram(&mut self, now: Time, _from: SocketAddr, bytes: &[u8]) {
        let seq = u32::from_le_bytes(bytes[..4].try_into().expect("a sequence number"));
        self.0.push((now, seq));
    }
    fn handle_timeout(&mut self, _now: Time) {}
    fn poll_transmit(&mut self, _now: Time) -> Option<Outgoing> {
        None
    }
    fn poll_timeout(&self) -> Option<Time> {
        None
    }
}

/// Two sinks, a sender spraying `count` datagrams of 1000 bytes over both,
/// with `uplink` if given and `link` everywhere; run for a second.
fn spray(
    seed: u64,
    count: u32,
    link: LinkConfig,
    uplink: Option<Uplink>,
) -> (Network, [NodeId<Sink>; 2], NodeId<Spray>) {
    let mut net = Network::new(seed);
    net.set_default_link(link);
    if let Some(uplink) = uplink {
        net.set_uplink(addr(1), uplink);
    }
    let sinks = [
        net.add_node(addr(2), Sink::default()),
        net.add_node(addr(3), Sink::default()),
    ];
    let to = vec![addr(2), addr(3)];
    let sender = net.add_node(
        addr(1),
        Spray {
            to,
            size: 1_000,
            count,
            sent: 0,
        },
    );
    net.run_until(T0 + Duration::from_secs(1));
    (net, sinks, sender)
}

#[test]
fn all_destinations_share_one_queue_and_its_tail_is_dropped() {
    // 1000 bytes per millisecond, room for 5 datagrams, 100 µs each on top.
    let uplink = Uplink {
        rate_bps: 8_000_000,
        queue_bytes: 5_000,
        per_datagram: us(100),
    };
    let link = LinkConfig::with_latency(Duration::from_millis(10));
    let (net, [a, b], sender) = spray(1, 8, link, Some(uplink));
    let mut got: Vec<(Time, u32)> = net.node(a).0.clone();
    got.extend_from_slice(&net.node(b).0);
    got.sort();
    // The first five leave one after another, alternating sinks, 1.1 ms
    // apart; the other three found the queue full.
    let expected: Vec<(Time, u32)> = (0..5)
        .map(|i| (T0 + us(1_100 * (u64::from(i) + 1) + 10_000), i))
        .collect();
    assert_eq!(got, expected);
    let (to_a, to_b) = (
        net.link_stats(addr(1), addr(2)),
        net.link_stats(addr(1), addr(3)),
    );
    assert_eq!((to_a.sent_datagrams, to_b.sent_datagrams), (4, 4));
    assert_eq!((to_a.dropped_uplink, to_b.dropped_uplink), (1, 2));
    assert_eq!(to_a.arrived_datagrams + to_a.dropped(), 4);
    assert_eq!(net.stats().dropped, 3);
    let sender = net.node_stats(sender);
    assert_eq!((sender.sent_datagrams, sender.uplink_dropped), (8, 3));
}

#[test]
fn with_room_for_everything_an_uplink_only_delays() {
    // Lossy, jittery links: the uplink must not shift the random draws, so
    // the same datagrams are lost, each survivor later by its wait.
    let link = LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(2),
        loss: 0.2,
        ..LinkConfig::default()
    };
    let uplink = Uplink {
        rate_bps: 80_000_000, // 100 µs per datagram
        queue_bytes: usize::MAX,
        per_datagram: Duration::ZERO,
    };
    let seqs = |net: &Network, sinks: &[NodeId<Sink>; 2]| {
        let mut v: Vec<(u32, Time)> = sinks
            .iter()
            .flat_map(|&s| net.node(s).0.iter().map(|&(at, seq)| (seq, at)))
            .collect();
        v.sort();
        v
    };
    let (plain, plain_sinks, _) = spray(9, 200, link, None);
    let (queued, queued_sinks, _) = spray(9, 200, link, Some(uplink));
    let (plain, queued) = (seqs(&plain, &plain_sinks), seqs(&queued, &queued_sinks));
    assert!(plain.len() > 120 && plain.len() < 190, "{}", plain.len());
    assert_eq!(plain.len(), queued.len());
    for (&(seq, at), &(seq_q, at_q)) in plain.iter().zip(&queued) {
        assert_eq!(seq, seq_q);
        assert_eq!(at_q - at, us(100 * (u64::from(seq) + 1)), "datagram {seq}");
    }
}

#[test]
fn a_node_without_an_uplink_sends_as_before() {
    let link = LinkConfig {
        latency: Duration::from_millis(5),
        jitter: Duration::from_millis(1),
        loss: 0.1,
        ..LinkConfig::default()
    };
    let (plain, ..) = spray(3, 100, link, None);
    // An uplink for an address no node holds changes nothing.
    let mut net = Network::new(3);
    net.set_uplink(
        addr(99),
        Uplink {
            rate_bps: 1_000,
            queue_bytes: 1,
            per_datagram: Duration::from_secs(1),
        },
    );
    net.set_default_link(link);
    net.add_node(addr(2), Sink::default());
    net.add_node(addr(3), Sink::default());
    net.add_node(
        addr(1),
        Spray {
            to: vec![addr(2), addr(3)],
            size: 1_000,
            count: 100,
            sent: 0,
        },
    );
    net.run_until(T0 + Duration::from_secs(1));
    assert_eq!(net.trace_hash(), plain.trace_hash());
    assert!(plain.stats().delivered > 50);
}

#[test]
fn a_downlink_chain_takes_bursts_from_every_sender() {
    let mut net = Network::new(4);
    // Bad a sixth of the time, stays of 2 datagrams on average.
    net.set_downlink_burst(
        addr(2),
        GilbertElliott {
            p_good_to_bad: 0.1,
            p_bad_to_good: 0.5,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        },
    );
    let sink = net.add_node(addr(2), Sink::default());
    for host in [1, 3] {
        net.add_node(
            addr(host),
            Spray {
                to: vec![addr(2)],
                size: 100,
                count: 3_000,
                sent: 0,
            },
        );
    }
    net.run_until(T0 + Duration::from_secs(1));
    let (a, b) = (
        net.link_stats(addr(1), addr(2)),
        net.link_stats(addr(3), addr(2)),
    );
    for link in [a, b] {
        assert_eq!(link.dropped(), link.dropped_burst);
        assert!(link.dropped_burst > 300, "{link:?}");
    }
    let lost = a.dropped_burst + b.dropped_burst;
    let rate = lost as f64 / 6_000.0;
    assert!((rate - 1.0 / 6.0).abs() < 0.02, "loss {rate}");
    // Runs of lost sequence numbers from the first sender (all of whose
    // datagrams stepped the chain before the second's): about 2 long.
    let mut got: Vec<u32> = net.node(sink).0.iter().map(|&(_, seq)| seq).collect();
    got.truncate(3_000 - a.dropped_burst as usize);
    let mut runs = 0;
    let mut prev = None;
    for &seq in &got {
        if prev.is_some_and(|p: u32| seq > p + 1) || (prev.is_none() && seq > 0) {
            runs += 1;
        }
        prev = Some(seq);
    }
    let mean_run = a.dropped_burst as f64 / f64::from(runs.max(1));
    assert!((mean_run - 2.0).abs() < 0.3, "mean run {mean_run}");
    assert_eq!(net.stats().dropped, lost);
}
