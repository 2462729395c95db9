//! End-to-end tests of the network with toy nodes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use shoal_proto::Time;

use super::*;

const T0: Time = Network::START;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn addr(host: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], 4433))
}

fn seq_of(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(
        bytes[..4]
            .try_into()
            .expect("datagram carries a sequence number"),
    )
}

/// Sends `per_tick` datagrams of `size` bytes to `to` on each of `ticks`
/// ticks, `interval` apart, the first at `start`. Each datagram begins with
/// its sequence number, then (if it has room) how many datagrams have come
/// back so far, so that what it sends depends on the order of its events.
/// Keeps what comes back.
struct Sender {
    to: SocketAddr,
    size: usize,
    per_tick: u32,
    interval: Duration,
    ticks_left: u32,
    next: Option<Time>,
    seq: u32,
    queue: VecDeque<Vec<u8>>,
    received: Vec<(Time, SocketAddr, Vec<u8>)>,
}

impl Sender {
    fn new(to: SocketAddr, start: Time, ticks: u32, interval: Duration) -> Self {
        Self {
            to,
            size: 64,
            per_tick: 1,
            interval,
            ticks_left: ticks,
            next: (ticks > 0).then_some(start),
            seq: 0,
            queue: VecDeque::new(),
            received: Vec::new(),
        }
    }

    fn per_tick(self, per_tick: u32) -> Self {
        Self { per_tick, ..self }
    }

    fn size(self, size: usize) -> Self {
        Self { size, ..self }
    }

    fn push(&mut self) {
        let mut bytes = vec![0; self.size.max(4)];
        bytes[..4].copy_from_slice(&self.seq.to_le_bytes());
        if let Some(room) = bytes.get_mut(4..8) {
            let back = u32::try_from(self.received.len()).expect("fewer than 2^32 echoes");
            room.copy_from_slice(&back.to_le_bytes());
        }
        self.seq += 1;
        self.queue.push_back(bytes);
    }
}

impl Node for Sender {
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.received.push((now, from, bytes.to_vec()));
    }

    fn handle_timeout(&mut self, now: Time) {
        for _ in 0..self.per_tick {
            self.push();
        }
        self.ticks_left -= 1;
        self.next = (self.ticks_left > 0).then(|| now + self.interval);
    }

    fn poll_transmit(&mut self, _now: Time) -> Option<Outgoing> {
        self.queue
            .pop_front()
            .map(|bytes| Outgoing::new(self.to, bytes))
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.next
    }
}

/// Keeps every datagram; with `idle` set, also times out that long after
/// the last one (a timer that moves on every arrival).
#[derive(Default)]
struct Sink {
    received: Vec<(Time, SocketAddr, Vec<u8>)>,
    idle: Option<Duration>,
    deadline: Option<Time>,
    idle_fired: Vec<Time>,
}

impl Sink {
    fn seqs(&self) -> Vec<u32> {
        self.received.iter().map(|(_, _, b)| seq_of(b)).collect()
    }
}

impl Node for Sink {
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        self.received.push((now, from, bytes.to_vec()));
        self.deadline = self.idle.map(|idle| now + idle);
    }

    fn handle_timeout(&mut self, now: Time) {
        self.idle_fired.push(now);
        self.deadline = None;
    }

    fn poll_transmit(&mut self, _now: Time) -> Option<Outgoing> {
        None
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.deadline
    }
}

/// Sends every datagram back where it came from.
#[derive(Default)]
struct Echo {
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
}

impl Node for Echo {
    fn handle_datagram(&mut self, _now: Time, from: SocketAddr, bytes: &[u8]) {
        self.queue.push_back((from, bytes.to_vec()));
    }

    fn handle_timeout(&mut self, _now: Time) {}

    fn poll_transmit(&mut self, _now: Time) -> Option<Outgoing> {
        let (to, bytes) = self.queue.pop_front()?;
        Some(Outgoing::new(to, bytes))
    }

    fn poll_timeout(&self) -> Option<Time> {
        None
    }
}

/// `n` ticks of `per_tick` datagrams, a millisecond apart, from a sender
/// to a sink over `link`; returns the network and the sink.
fn one_way(seed: u64, n: u32, per_tick: u32, link: LinkConfig) -> (Network, NodeId<Sink>) {
    let mut net = Network::new(seed);
    net.set_default_link(link);
    let sink = net.add_node(addr(2), Sink::default());
    net.add_node(
        addr(1),
        Sender::new(addr(2), T0, n, ms(1)).per_tick(per_tick),
    );
    net.run_until(T0 + ms(u64::from(n)) + ms(1_000));
    (net, sink)
}

#[test]
fn latency_is_applied_exactly() {
    let mut net = Network::new(1);
    net.set_default_link(LinkConfig::with_latency(ms(25)));
    net.set_links_from(addr(2), LinkConfig::with_latency(ms(5)));
    net.add_node(addr(2), Echo::default());
    let sender = net.add_node(addr(1), Sender::new(addr(2), T0, 10, ms(1)));
    net.run_until(T0 + ms(100));

    let echoes = &net.node(sender).received;
    assert_eq!(echoes.len(), 10);
    for (i, (at, from, bytes)) in echoes.iter().enumerate() {
        assert_eq!(*from, addr(2));
        assert_eq!(seq_of(bytes) as usize, i);
        assert_eq!(*at, T0 + ms(i as u64) + ms(25) + ms(5), "echo {i}");
    }
    assert_eq!(net.now(), T0 + ms(100));
}

#[test]
fn random_loss_matches_the_configured_rate() {
    let link = LinkConfig {
        loss: 0.1,
        ..LinkConfig::default()
    };
    // 100 000 datagrams: 100 per tick for 1000 ticks.
    let (net, sink) = one_way(2, 1_000, 100, link);

    let n = 100_000.0;
    let received = net.node(sink).received.len() as f64;
    let loss = 1.0 - received / n;
    // One standard deviation is about 0.001.
    assert!((loss - 0.1).abs() < 0.005, "loss {loss}");
    let stats = net.link_stats(addr(1), addr(2));
    assert_eq!(stats.sent_datagrams, 100_000);
    assert_eq!(stats.dropped_random, stats.dropped());
    assert_eq!(
        stats.arrived_datagrams + stats.dropped(),
        stats.sent_datagrams
    );
}

#[test]
fn burst_loss_comes_in_runs_of_one_over_p_bad_to_good() {
    let link = LinkConfig {
        burst: GilbertElliott {
            p_good_to_bad: 0.01,
            p_bad_to_good: 0.25,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        },
        ..LinkConfig::default()
    };
    // 100 000 datagrams: 100 per tick for 1000 ticks.
    let (net, sink) = one_way(3, 1_000, 100, link);

    let seqs = net.node(sink).seqs();
    let (mut lost, mut bursts, mut expected) = (0u32, 0u32, 0u32);
    for seq in seqs.iter().copied().chain([100_000]) {
        if seq > expected {
            lost += seq - expected;
            bursts += 1;
        }
        expected = seq + 1;
    }
    let mean = f64::from(lost) / f64::from(bursts);
    assert!((mean - 4.0).abs() < 0.3, "mean burst {mean}");
    let rate = f64::from(lost) / 100_000.0;
    assert!((rate - 0.01 / 0.26).abs() < 0.006, "loss {rate}");
    let stats = net.link_stats(addr(1), addr(2));
    assert_eq!(stats.dropped_burst, u64::from(lost));
    assert_eq!(stats.dropped_random, 0);
}

#[test]
fn duplication_happens_at_the_configured_rate() {
    let link = LinkConfig {
        latency: ms(10),
        duplicate: 0.05,
        ..LinkConfig::default()
    };
    let (net, sink) = one_way(4, 20_000, 1, link);
    let duplicated = net.link_stats(addr(1), addr(2)).duplicated;
    assert_eq!(net.node(sink).received.len() as u64, 20_000 + duplicated);
    // Expect 1000, one standard deviation about 31.
    assert!(
        (850..=1_150).contains(&duplicated),
        "{duplicated} duplicates"
    );
}

#[test]
fn reordering_happens_at_the_configured_rate() {
    let link = LinkConfig {
        latency: ms(10),
        reorder: 0.1,
        reorder_delay: ms(5),
        ..LinkConfig::default()
    };
    let (net, sink) = one_way(5, 10_000, 1, link);
    let seqs = net.node(sink).seqs();
    assert_eq!(seqs.len(), 10_000, "reordering loses nothing");
    let mut highest = None;
    let mut late = 0;
    for seq in seqs {
        if highest.is_some_and(|h| seq < h) {
            late += 1;
        }
        highest = highest.max(Some(seq));
    }
    // Expect 1000, one standard deviation 30.
    assert!((850..=1_150).contains(&late), "{late} overtaken");
}

#[test]
fn rate_limit_spreads_a_burst_and_drops_past_the_queue() {
    let link = LinkConfig {
        latency: ms(10),
        rate_bps: Some(8_000_000), // one 1000-byte datagram per millisecond
        queue_bytes: Some(10_000),
        ..LinkConfig::default()
    };
    let mut net = Network::new(6);
    net.set_link(addr(1), addr(2), link);
    let sink = net.add_node(addr(2), Sink::default());
    // Two bursts of 20: the queue holds 10 of each, the second burst comes
    // after the first has drained.
    let sender = Sender::new(addr(2), T0, 2, ms(50)).per_tick(20).size(1000);
    net.add_node(addr(1), sender);
    net.run_until(T0 + ms(200));

    let received = &net.node(sink).received;
    assert_eq!(received.len(), 20);
    for (i, (at, _, bytes)) in received.iter().enumerate() {
        let (burst, k) = (i as u64 / 10, i as u64 % 10);
        assert_eq!(seq_of(bytes) as u64, burst * 20 + k);
        assert_eq!(
            *at,
            T0 + ms(50 * burst) + ms(k + 1) + ms(10),
            "datagram {i}"
        );
    }
    assert_eq!(net.link_stats(addr(1), addr(2)).dropped_queue, 20);
    assert_eq!(net.stats().dropped, 20);
}

/// A bit of everything, for comparing traces: on `threads` threads.
fn messy_run(seed: u64, threads: usize) -> ([u8; 32], NetStats) {
    messy_run_in(seed, threads, false)
}

/// [`messy_run`], strictly in time order if `time_order` (one thread).
fn messy_run_in(seed: u64, threads: usize, time_order: bool) -> ([u8; 32], NetStats) {
    let link = LinkConfig {
        latency: ms(20),
        jitter: ms(5),
        loss: 0.05,
        burst: GilbertElliott {
            p_good_to_bad: 0.02,
            p_bad_to_good: 0.3,
            loss_in_good: 0.0,
            loss_in_bad: 0.8,
        },
        reorder: 0.05,
        reorder_delay: ms(7),
        duplicate: 0.02,
        rate_bps: Some(2_000_000),
        queue_bytes: Some(6_000),
    };
    let mut net = Network::with_threads(seed, threads);
    net.set_time_order(time_order);
    net.set_default_link(link);
    // Access links with their own queue and bursts, on some nodes.
    net.set_uplink(
        addr(1),
        Uplink {
            rate_bps: 1_000_000,
            queue_bytes: 4_000,
            per_datagram: Duration::from_micros(3),
        },
    );
    net.set_downlink_burst(
        addr(102),
        GilbertElliott {
            p_good_to_bad: 0.05,
            p_bad_to_good: 0.3,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        },
    );
    for host in 1..=4 {
        net.add_node(addr(100 + host), Echo::default());
        let sender = Sender::new(addr(100 + host), T0, 200, ms(3))
            .per_tick(3)
            .size(500);
        net.add_node(addr(host), sender);
    }
    net.run_until(T0 + ms(2_000));
    (net.trace_hash(), net.stats())
}

#[test]
fn same_seed_gives_the_same_trace() {
    let (hash, stats) = messy_run(7, 1);
    assert_eq!(messy_run(7, 1), (hash, stats));
    assert_ne!(messy_run(8, 1).0, hash);
    // The run exercised what it claims to.
    assert!(stats.delivered > 1_000 && stats.dropped > 100, "{stats:?}");
}

#[test]
fn any_number_of_threads_gives_the_same_trace() {
    let one = messy_run(7, 1);
    assert_eq!(messy_run(7, 2), one);
    assert_eq!(messy_run(7, 3), one);
}

/// Windows run node by node (`netsim/window.rs`) give the run that strict
/// time order gives, event for event. The run has nodes with several
/// timeouts and deliveries in one window (a sender ticks every 3 ms, the
/// window is 15 ms), and what a sender sends depends on their order.
#[test]
fn windows_node_by_node_give_the_same_trace() {
    let in_time_order = messy_run_in(7, 1, true);
    assert_eq!(messy_run(7, 1), in_time_order);
    assert_eq!(messy_run(7, 2), in_time_order);
    assert_ne!(messy_run_in(8, 1, true).0, in_time_order.0);
}

#[test]
#[should_panic(expected = "latency to exceed its jitter")]
fn threads_need_links_with_a_least_delay() {
    let mut net = Network::with_threads(1, 2);
    net.set_link(addr(1), addr(2), LinkConfig::with_latency(ms(0)));
    net.add_node(addr(1), Sink::default());
    net.run_for(ms(10));
}

#[test]
fn injected_datagram_arrives_with_the_claimed_source() {
    let victim = addr(66);
    let mut net = Network::new(9);
    net.set_default_link(LinkConfig::with_latency(ms(40)));
    let sink = net.add_node(addr(2), Sink::default());
    net.add_node(addr(3), Echo::default());
    net.inject(T0 + ms(5), victim, addr(2), b"forged".to_vec());
    net.inject(T0 + ms(5), victim, addr(3), vec![7; 100]);
    net.run_until(T0 + ms(100));

    // Injection bypasses the link: no latency.
    assert_eq!(
        net.node(sink).received,
        [(T0 + ms(5), victim, b"forged".to_vec())]
    );
    // The echo's reply went to the victim, where nobody listens.
    let to_victim = net.addr_stats(victim);
    assert_eq!(to_victim.sent_bytes, 100);
    assert_eq!(to_victim.undeliverable_bytes, 100);
    assert_eq!(to_victim.delivered_bytes, 0);
    assert_eq!(net.link_stats(addr(3), victim).arrived_datagrams, 1);
    assert_eq!(net.addr_stats(addr(3)).delivered_bytes, 100);
}

#[test]
fn sends_to_unknown_addresses_are_recorded() {
    let nowhere = addr(99);
    let mut net = Network::new(10);
    let sender = net.add_node(addr(1), Sender::new(nowhere, T0, 5, ms(1)).size(100));
    net.run_until(T0 + ms(10));

    let stats = net.addr_stats(nowhere);
    assert_eq!((stats.sent_datagrams, stats.sent_bytes), (5, 500));
    assert_eq!(
        (stats.undeliverable_datagrams, stats.undeliverable_bytes),
        (5, 500)
    );
    assert_eq!(net.stats().undeliverable, 5);
    assert_eq!(net.node_stats(sender).sent_bytes, 500);
}

#[test]
fn tap_rewrites_and_drops() {
    let mut net = Network::new(11);
    net.set_tap(addr(1), addr(2), |bytes: &mut Vec<u8>| {
        bytes[4] = 0xff;
        seq_of(bytes).is_multiple_of(2)
    });
    let sink = net.add_node(addr(2), Sink::default());
    let sender = net.add_node(addr(1), Sender::new(addr(2), T0, 10, ms(1)));
    net.run_until(T0 + ms(20));

    let received = net.node(sink);
    assert_eq!(received.seqs(), [0, 2, 4, 6, 8]);
    assert!(received.received.iter().all(|(_, _, b)| b[4] == 0xff));
    assert_eq!(net.link_stats(addr(1), addr(2)).dropped_tap, 5);

    net.clear_tap(addr(1), addr(2));
    net.with_node(sender, |sender, _now| {
        sender.seq = 11;
        sender.push();
    });
    net.run_for(ms(1));
    let last = net.node(sink).received.last().expect("received some");
    assert_eq!((seq_of(&last.2), last.2[4]), (11, 0), "tap gone");
}

#[test]
fn a_moving_timeout_fires_once_and_stale_events_are_skipped() {
    let mut net = Network::new(12);
    let sink = Sink {
        idle: Some(ms(10)),
        ..Sink::default()
    };
    let sink = net.add_node(addr(2), sink);
    net.add_node(addr(1), Sender::new(addr(2), T0, 10, ms(1)));
    net.run_until(T0 + ms(100));

    assert_eq!(net.node(sink).idle_fired, [T0 + ms(9) + ms(10)]);
    assert_eq!(net.node_stats(sink).timeouts, 1);
    assert_eq!(net.stats().stale_timeouts, 9);
}

#[test]
fn with_node_sends_what_the_node_queued() {
    let mut net = Network::new(13);
    let sink = net.add_node(addr(2), Sink::default());
    let sender = net.add_node(addr(1), Sender::new(addr(2), T0, 0, ms(1)));
    net.run_for(ms(10));
    assert!(net.node(sink).received.is_empty());

    net.with_node(sender, |sender, _now| sender.push());
    net.run_for(ms(1));
    assert_eq!(
        net.node(sink).received,
        [(T0 + ms(10), addr(1), vec![0; 64])]
    );
}

#[test]
fn disconnected_node_gets_nothing_and_frees_its_address() {
    let mut net = Network::new(14);
    let sink = Sink {
        idle: Some(ms(50)),
        ..Sink::default()
    };
    let old = net.add_node(addr(2), sink);
    net.add_node(addr(1), Sender::new(addr(2), T0, 20, ms(1)));
    net.run_until(T0 + ms(4) + Duration::from_micros(500));
    net.disconnect(old);
    assert!(!net.is_connected(old));
    net.run_until(T0 + ms(10) + Duration::from_micros(500));
    let new = net.add_node(addr(2), Sink::default());
    net.run_until(T0 + ms(200));

    assert_eq!(net.node(old).seqs(), [0, 1, 2, 3, 4]);
    assert!(net.node(old).idle_fired.is_empty(), "no timeouts once gone");
    assert_eq!(net.node(new).seqs(), (11..20).collect::<Vec<_>>());
    assert_eq!(net.addr_stats(addr(2)).undeliverable_datagrams, 6);
    assert_eq!(net.addr(old), net.addr(new));
}

/// Wants a timeout at the epoch forever.
struct Spinner;

impl Node for Spinner {
    fn handle_datagram(&mut self, _now: Time, _from: SocketAddr, _bytes: &[u8]) {}
    fn handle_timeout(&mut self, _now: Time) {}
    fn poll_transmit(&mut self, _now: Time) -> Option<Outgoing> {
        None
    }
    fn poll_timeout(&self) -> Option<Time> {
        Some(Time::ZERO)
    }
}

#[test]
#[should_panic(expected = "never moves on")]
fn a_livelocked_node_is_reported() {
    let mut net = Network::new(15);
    net.add_node(addr(1), Spinner);
    net.run_for(ms(1));
}

#[test]
fn a_thousand_nodes_in_a_ring() {
    let mut net = Network::new(16);
    net.set_default_link(LinkConfig {
        latency: ms(30),
        jitter: ms(3),
        loss: 0.01,
        ..LinkConfig::default()
    });
    let hosts = 1_000u16;
    let host_addr = |i: u16| SocketAddr::from(([10, 1, (i / 256) as u8, (i % 256) as u8], 4433));
    let senders: Vec<NodeId<Sender>> = (0..hosts)
        .map(|i| {
            let sender = Sender::new(
                host_addr((i + 1) % hosts),
                T0 + Duration::from_micros(u64::from(i)),
                100,
                ms(10),
            );
            net.add_node(host_addr(i), sender)
        })
        .collect();
    net.run_until(T0 + ms(1_100));

    let received: usize = senders.iter().map(|&s| net.node(s).received.len()).sum();
    assert_eq!(received as u64, net.stats().delivered);
    assert_eq!(received as u64 + net.stats().dropped, 100_000);
    assert!(net.pending_events() < 10, "everything delivered");
}
