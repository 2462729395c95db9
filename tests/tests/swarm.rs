//! The swarm in the simulator: ordinary peers and relays together, with
//! the real proto code.

use std::time::Duration;

use shoal_tests::harness::{PeerNode, Swarm, SwarmConfig};
use shoal_tests::netsim::NodeId;

/// A swarm small enough for CI.
fn small(peers: u32, seconds: f64) -> SwarmConfig {
    SwarmConfig {
        peers,
        seconds,
        ramp: Duration::from_secs(1),
        keep_output: true,
        ..SwarmConfig::default()
    }
}

/// Every peer present at the end played an exact suffix of the stream,
/// starting at a keyframe, to its end.
fn assert_exact(swarm: &Swarm, peers: &[NodeId<PeerNode>]) {
    for &p in peers {
        let node = swarm.net.node(p);
        let out = node.output.as_deref().expect("output kept");
        assert!(node.ended, "{}: did not see the end", swarm.net.addr(p));
        assert_eq!(node.gaps, 0, "{}: gaps", swarm.net.addr(p));
        assert!(!out.is_empty());
        assert!(
            swarm.stream.bytes.ends_with(out),
            "{}: output is not the stream's tail",
            swarm.net.addr(p)
        );
        let start = swarm.stream.bytes.len() - out.len();
        assert!(swarm.stream.keyframes.contains(&start));
    }
}

#[test]
fn peers_carry_most_of_the_stream_and_play_it_exactly() {
    let mut swarm = Swarm::new(SwarmConfig {
        churn_per_minute: 0.0,
        loss: 0.0,
        relays: 1,
        ..small(60, 8.0)
    });
    let report = swarm.run();
    let present = swarm.present.clone();
    assert_exact(&swarm, &present);
    assert!(
        report.peer_bytes > report.relay_bytes,
        "peers uploaded less than the relays:\n{report}"
    );
    assert!(report.relay_vs_direct < 0.6, "{report}");
    // Pure viewers upload nothing; uploaders stay under their limit.
    let now = swarm.net.now();
    let mut uploaders = 0;
    for &p in &present {
        let node = swarm.net.node(p);
        let s = node.peer.stats();
        let limit = node.peer.upload_limit_bps();
        if limit == 0 {
            assert_eq!(s.uploaded_bytes, 0);
            assert_eq!(s.member_clubs, 0);
            continue;
        }
        uploaders += u32::from(s.uploaded_bytes > 0);
        let secs = now.saturating_since(node.joined).as_secs_f64() + 0.25;
        let allowed = limit as f64 / 8.0 * secs;
        assert!(
            s.uploaded_bytes as f64 <= allowed,
            "uploaded {} over a limit of {allowed:.0} bytes",
            s.uploaded_bytes
        );
    }
    assert!(uploaders > 0);
}

/// Datagram type byte of DATA and MANIFEST.
const DATA: u8 = 0x01;
const MANIFEST: u8 = 0x03;

fn be_u64(d: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[at..at + 8]);
    u64::from_be_bytes(b)
}

fn put_u64(d: &mut [u8], at: usize, v: u64) {
    d[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// Three peers inside the swarm turn bad once it has formed: one corrupts
/// every chunk it forwards, one sends a MANIFEST signed by another key and
/// chunks to match, one replays chunks from the stream's first second.
/// Each is dropped by every neighbour it attacked and counted; no honest
/// peer forwards anything they sent, and every honest peer plays the exact
/// stream.
#[test]
fn poisoning_neighbours_are_dropped_and_nothing_they_sent_is_forwarded_or_played() {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    let mut swarm = Swarm::new(SwarmConfig {
        churn_per_minute: 0.0,
        loss: 0.0,
        // About 2.7 s of stream, so that the first second is out of every
        // window when the replay starts.
        peer_window: 128,
        ..small(40, 9.0)
    });
    // What the publisher sends, to replay and to forge from.
    let published: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let (p_addr, r_addr) = (
        swarm.net.addr(swarm.publisher),
        swarm.net.addr(swarm.relays[0]),
    );
    swarm.net.set_tap(p_addr, r_addr, {
        let published = published.clone();
        move |d: &mut Vec<u8>| {
            published.lock().expect("no tap panicked").push(d.clone());
            true
        }
    });
    let t = swarm.net.now() + Duration::from_secs(4);
    swarm.run_until(t);

    // The three busiest uploaders turn bad.
    let mut by_load = swarm.present.clone();
    by_load.sort_by_key(|&p| std::cmp::Reverse(swarm.net.node(p).peer.subscriber_addrs().count()));
    let liars: Vec<_> = by_load[..3].to_vec();
    // A liar's victims: the honest peers that take a club from it now.
    let victims: Vec<Vec<_>> = liars
        .iter()
        .map(|&l| {
            let liar = swarm.net.addr(l);
            swarm
                .present
                .iter()
                .filter(|p| !liars.contains(p))
                .filter(|&&p| swarm.net.node(p).peer.source_addrs().any(|a| a == liar))
                .map(|&p| swarm.net.addr(p))
                .collect()
        })
        .collect();
    assert!(
        victims.iter().all(|v| !v.is_empty()),
        "every liar serves someone"
    );
    let addr_of: Vec<_> = liars.iter().map(|&l| swarm.net.addr(l)).collect();
    // Everything the liars send in bad faith.
    let poison: Arc<Mutex<HashSet<Vec<u8>>>> = Arc::default();

    // 1: corrupts every chunk it forwards (a victim whose HAVEs keep the
    // liar from sending it anything is not attacked).
    let corrupted_to: Arc<Mutex<HashSet<std::net::SocketAddr>>> = Arc::default();
    for &to in &victims[0] {
        let (poison, corrupted_to) = (poison.clone(), corrupted_to.clone());
        swarm.net.set_tap(addr_of[0], to, move |d: &mut Vec<u8>| {
            if d.get(1) == Some(&DATA)
                && let Some(last) = d.last_mut()
            {
                *last ^= 0x55;
                poison.lock().expect("no tap panicked").insert(d.clone());
                corrupted_to.lock().expect("no tap panicked").insert(to);
            }
            true
        });
    }
    let now = swarm.net.now();
    let sent = published.lock().expect("no tap panicked").clone();
    // 2: a MANIFEST for a block two ahead of the publisher, signed by
    // another key, and a chunk for it.
    let newest = sent
        .iter()
        .rev()
        .find(|d| d.get(1) == Some(&MANIFEST))
        .expect("a manifest")
        .clone();
    let k = u64::from(newest[2]);
    let mut forged = newest.clone();
    put_u64(&mut forged, 40, be_u64(&newest, 40) + 2);
    put_u64(&mut forged, 48, be_u64(&newest, 48) + 2 * k);
    shoal_proto::integrity::PublisherKey::from_seed([0xee; 32]).sign_trailer(&mut forged);
    let mut fake_chunk = sent
        .iter()
        .rev()
        .find(|d| d.get(1) == Some(&DATA))
        .expect("a chunk")
        .clone();
    let seq = be_u64(&forged, 48);
    put_u64(&mut fake_chunk, 36, seq);
    put_u64(&mut fake_chunk, 44, be_u64(&forged, 40));
    fake_chunk[3] = (seq % u64::from(swarm.config.clubs)) as u8;
    fake_chunk[60] = 0;
    if let Some(last) = fake_chunk.last_mut() {
        *last ^= 0xaa;
    }
    poison
        .lock()
        .expect("no tap panicked")
        .extend([forged.clone(), fake_chunk.clone()]);
    for &to in &victims[1] {
        swarm.net.inject(now, addr_of[1], to, fake_chunk.clone());
        swarm.net.inject(now, addr_of[1], to, forged.clone());
    }
    // 3: replays 40 chunks of the first second, 4 ms apart.
    let stale: Vec<_> = sent
        .iter()
        .filter(|d| d.get(1) == Some(&DATA))
        .take(40)
        .cloned()
        .collect();
    let newest_stale = stale
        .iter()
        .map(|d| be_u64(d, 36))
        .max()
        .expect("stale chunks");
    for &to in &victims[2] {
        for (i, d) in stale.iter().enumerate() {
            swarm.net.inject(
                now + Duration::from_millis(4 * i as u64),
                addr_of[2],
                to,
                d.clone(),
            );
        }
    }
    // Every honest peer's every send is checked from here on.
    let leaks = Arc::new(Mutex::new(0u32));
    let honest: Vec<_> = swarm
        .present
        .iter()
        .copied()
        .filter(|p| !liars.contains(p))
        .collect();
    let everyone: Vec<_> = swarm.present.iter().map(|&p| swarm.net.addr(p)).collect();
    for &p in &honest {
        let from = swarm.net.addr(p);
        for &to in everyone.iter().filter(|&&a| a != from) {
            let (poison, leaks) = (poison.clone(), leaks.clone());
            swarm.net.set_tap(from, to, move |d: &mut Vec<u8>| {
                let stale_again = d.get(1) == Some(&DATA) && be_u64(d, 36) <= newest_stale;
                if stale_again || poison.lock().expect("no tap panicked").contains(d) {
                    *leaks.lock().expect("no tap panicked") += 1;
                }
                true
            });
        }
    }

    let report = swarm.run();
    assert_eq!(
        *leaks.lock().expect("no tap panicked"),
        0,
        "an honest peer forwarded poison"
    );
    let mut victims = victims;
    victims[0].retain(|v| corrupted_to.lock().expect("no tap panicked").contains(v));
    for (i, (liar, victims)) in addr_of.iter().zip(&victims).enumerate() {
        for &v in victims {
            let &p = honest
                .iter()
                .find(|&&p| swarm.net.addr(p) == v)
                .expect("victims are honest");
            let peer = &swarm.net.node(p).peer;
            assert!(
                !peer.source_addrs().any(|a| a == *liar),
                "liar {i} is still a neighbour of {v}: {:?}",
                peer.stats()
            );
        }
    }
    let (dropped_bad, poisoned): (u64, u64) = honest
        .iter()
        .map(|&p| swarm.net.node(p).peer.stats())
        .fold((0, 0), |(d, q), s| (d + s.dropped_bad, q + s.poisoned));
    let attacked: usize = victims.iter().map(Vec::len).sum();
    assert!(
        dropped_bad >= attacked as u64,
        "{dropped_bad} drops for {attacked} attacked links\n{report}"
    );
    assert!(poisoned >= dropped_bad);
    assert_exact(&swarm, &honest);
}

#[test]
fn a_silent_neighbour_is_replaced_and_the_recovery_is_measured() {
    // The recovery (1 s of silence, then a new source: 1.25-1.35 s here)
    // fits the 2 s budget only on the ideal network: with access uplinks
    // (the defaults) one chunk of some 17,000 missed its deadline, and
    // with 5 ms of jitter alone one too under seed 2 (issue 20, fidelity:
    // reported, not hidden). This test is about the recovery's mechanism,
    // so it keeps the network it was written for.
    let mut swarm = Swarm::new(SwarmConfig {
        churn_per_minute: 0.0,
        loss: 0.0,
        jitter: Duration::ZERO,
        peer_uplink: None,
        ..small(40, 8.0)
    });
    let t = swarm.net.now() + Duration::from_secs(4);
    swarm.run_until(t);
    // The busiest uploader vanishes without a word.
    let (i, _) = swarm
        .present
        .iter()
        .enumerate()
        .max_by_key(|&(_, &p)| swarm.net.node(p).peer.subscriber_addrs().count())
        .expect("peers");
    let gone = swarm.present.swap_remove(i);
    let had = swarm.net.node(gone).peer.subscriber_addrs().count();
    assert!(had > 0);
    swarm.net.disconnect(gone);
    let report = swarm.run();
    assert!(report.dropped.0 >= had as u64, "{report}");
    let (_, _, max, n) = report.recovery;
    assert!(n >= 1, "{report}");
    assert!(max < Duration::from_secs(5), "{report}");
    let present = swarm.present.clone();
    assert_exact(&swarm, &present);
}

/// A neighbour that stays alive (its HAVE beacons come) but brings no
/// stream data is replaced after `STARVED`, and everyone still plays the
/// exact stream: the shape of a club ring cut off from the relay, or of a
/// neighbour that lost its own source.
#[test]
fn a_neighbour_that_beacons_but_brings_nothing_is_replaced() {
    // As the silent neighbour's test, on the ideal network: with access
    // uplinks a chunk of one subscriber missed its deadline behind the
    // 1 s the mute neighbour is given.
    let mut swarm = Swarm::new(SwarmConfig {
        churn_per_minute: 0.0,
        loss: 0.0,
        jitter: Duration::ZERO,
        peer_uplink: None,
        ..small(40, 8.0)
    });
    let t = swarm.net.now() + Duration::from_secs(4);
    swarm.run_until(t);
    let &mute = swarm
        .present
        .iter()
        .max_by_key(|&&p| swarm.net.node(p).peer.subscriber_addrs().count())
        .expect("peers");
    let from = swarm.net.addr(mute);
    let served: Vec<_> = swarm.net.node(mute).peer.subscriber_addrs().collect();
    assert!(!served.is_empty());
    for &to in &served {
        // Its DATA and PARITY go nowhere; everything else (its beacons,
        // its answers) still does.
        swarm
            .net
            .set_tap(from, to, |d| !matches!(d.get(1), Some(0x01 | 0x02)));
    }
    let report = swarm.run();
    assert_eq!(report.dropped.0, 0, "nobody is silent: {report}");
    assert!(report.starved >= served.len() as u64, "{report}");
    for &to in &served {
        let still = swarm.present.iter().any(|&p| {
            swarm.net.addr(p) == to
                && swarm
                    .net
                    .node(p)
                    .peer
                    .working_sources()
                    .any(|(a, _)| a == from)
        });
        assert!(!still, "{to} still takes a club from the mute neighbour");
    }
    let present = swarm.present.clone();
    assert_exact(&swarm, &present);
}
