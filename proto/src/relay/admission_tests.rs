//! Who may create streams, idle streams, and per-host subscription caps
//! (issue 15, items 4 and 5c), in virtual time.

use std::net::SocketAddr;
use std::time::Duration;

use super::tests::{PUBLISHER, drain_to, kept, published, session, subscribe, t};
use super::*;
use crate::integrity::PublisherKey;
use crate::publisher::{Publisher, PublisherConfig};
use crate::testutil::addr;
use crate::transmit::SharedBuf;
use crate::wire::Codec;
use crate::wire::MessageType;

/// A throwaway stream: a fresh key's signed DESCRIPTOR.
fn throwaway(seed: u32) -> (StreamId, Vec<u8>) {
    let mut bytes = [0x5a; 32];
    bytes[..4].copy_from_slice(&seed.to_be_bytes());
    let key = PublisherKey::from_seed(bytes);
    let config = PublisherConfig {
        codec: Codec::Opaque,
        ..PublisherConfig::default()
    };
    let mut p = Publisher::new(key, config, vec![addr("127.0.0.1:7400")], t(0)).expect("publisher");
    for step in 0..100 {
        let now = t(step);
        p.handle_input(now, &[1; 400]);
        if p.poll_timeout().is_some_and(|at| at <= now) {
            p.handle_timeout(now);
        }
        let id = p.stream_id();
        while let Some(tx) = p.poll_transmit() {
            if peek_type(tx.payload) == Ok(MessageType::Descriptor) {
                return (id, tx.payload.to_vec());
            }
        }
    }
    panic!("publisher {seed} sent no descriptor");
}

/// The LEAVE reasons and REJECT reasons `relay` sends to `to`.
fn answers(relay: &mut Relay, to: SocketAddr) -> (Vec<LeaveReason>, Vec<RejectReason>) {
    let (mut leaves, mut rejects) = (Vec::new(), Vec::new());
    for b in drain_to(relay, to) {
        match Message::parse(&b) {
            Ok(Message::Leave(l)) => leaves.push(l.reason),
            Ok(Message::Reject(r)) => rejects.push(r.reason),
            _ => {}
        }
    }
    (leaves, rejects)
}

/// The publisher's first DESCRIPTOR.
fn descriptor(datagrams: &[Vec<u8>]) -> &[u8] {
    datagrams
        .iter()
        .find(|d| peek_type(d) == Ok(MessageType::Descriptor))
        .expect("a descriptor")
}

fn data_count(bufs: &[SharedBuf]) -> usize {
    bufs.iter()
        .filter(|b| peek_type(b) == Ok(MessageType::Data))
        .count()
}

#[test]
fn with_a_publisher_list_throwaway_keys_cannot_crowd_out_the_listed_stream() {
    let (stream, datagrams) = published(2000);
    let mut relay = Relay::new(RelayConfig {
        publishers: vec![stream],
        ..RelayConfig::default()
    });
    let viewer = addr("192.0.2.200:5000");
    let mut subscribed = false;
    let mut got = Vec::new();
    let mut throwaways = 0u64;
    for (i, d) in datagrams.iter().enumerate() {
        let now = t(i as u64);
        // Before each real datagram, a throwaway key's valid DESCRIPTOR
        // from its own address (100 keys in all, from 100 hosts).
        if i < 100 {
            let (_, junk) = throwaway(i as u32);
            let from = SocketAddr::from(([198, 51, 100, i as u8], 4000));
            relay.handle_datagram(now, from, &junk);
            throwaways += 1;
        }
        relay.handle_datagram(now, PUBLISHER, d);
        if !subscribed && relay.live_streams().count() == 1 {
            subscribe(&mut relay, now, viewer, stream);
            subscribed = true;
        }
        relay.handle_timeout(now);
        got.extend(drain_to(&mut relay, viewer));
    }
    assert!(subscribed);
    assert_eq!(relay.stream_count(), 1, "only the listed stream is carried");
    assert_eq!(relay.stats().drop_not_allowed, throwaways);
    assert_eq!(throwaways, 100);
    assert!(
        data_count(&got) > 300,
        "the viewer got {}",
        data_count(&got)
    );
    // A SUBSCRIBE cannot create an unlisted stream either.
    let (junk, _) = throwaway(7);
    let waiter = addr("192.0.2.201:5000");
    subscribe(&mut relay, t(2000), waiter, junk);
    assert_eq!(answers(&mut relay, waiter).1, [RejectReason::UnknownStream]);
    assert_eq!(relay.stats().drop_not_allowed, throwaways + 1);
    assert_eq!(relay.stream_count(), 1);
}

#[test]
fn junk_streams_are_capped_per_source_and_leave_when_idle() {
    let idle = Duration::from_secs(30);
    let mut relay = Relay::new(RelayConfig {
        max_streams: 8,
        stream_idle_timeout: idle,
        ..RelayConfig::default()
    });
    // Two hosts try ten junk streams each: four each get in, and the
    // table (8) is full.
    for (h, host) in ["198.51.100.1", "2001:db8:7:7::1"].iter().enumerate() {
        for j in 0..10u32 {
            let (_, junk) = throwaway(h as u32 * 100 + j);
            // Every datagram from another port (and, for IPv6, address
            // of the host's /64).
            let ip: std::net::IpAddr = host.parse().expect("ip");
            let ip = match ip {
                std::net::IpAddr::V6(v6) => {
                    std::net::IpAddr::V6((u128::from(v6) + u128::from(j)).into())
                }
                v4 => v4,
            };
            relay.handle_datagram(t(0), SocketAddr::new(ip, 4000 + j as u16), &junk);
        }
    }
    assert_eq!(relay.stream_count(), 8);
    assert_eq!(relay.stats().drop_source_streams, 12);
    // A junk stream's subscriber, to be told when it goes.
    let junk_viewer = addr("192.0.2.9:5000");
    let (junk0, _) = throwaway(0);
    subscribe(&mut relay, t(0), junk_viewer, junk0);
    assert!(answers(&mut relay, junk_viewer).1.is_empty());
    // The real publisher is refused while the table is full...
    let (stream, datagrams) = published(3000);
    relay.handle_datagram(t(1), PUBLISHER, descriptor(&datagrams));
    assert!(relay.window(&stream).is_none());
    assert_eq!(relay.stats().drop_full, 1);
    // ...and the junk goes within the idle timeout (and a quarter) of its
    // last data, in virtual time, while the viewer keeps its subscription.
    let keepalive = Message::Keepalive(crate::testutil::keepalive(
        junk0,
        session(&relay, junk_viewer),
    ));
    let keepalive = crate::testutil::emit(&keepalive);
    let mut leaves = Vec::new();
    let mut gone_at = None;
    for ms in (0..=40_000).step_by(100) {
        let now = t(ms);
        relay.handle_datagram(now, junk_viewer, &keepalive);
        if relay.poll_timeout().is_some_and(|at| at <= now) {
            relay.handle_timeout(now);
        }
        leaves.extend(answers(&mut relay, junk_viewer).0);
        if relay.stream_count() == 0 && gone_at.is_none() {
            gone_at = Some(ms);
        }
    }
    let gone_at = gone_at.expect("the junk streams were removed");
    assert!(
        (30_000..=37_500).contains(&gone_at),
        "removed after {gone_at} ms"
    );
    assert_eq!(leaves, [LeaveReason::EndOfStream]);
    assert_eq!(relay.stats().streams_removed, 8);
    assert_eq!(relay.subscriber_count(), 0);
    // The slots are free again: the real stream gets in and is served.
    let viewer = addr("192.0.2.10:5000");
    let mut got = Vec::new();
    for (i, d) in datagrams.iter().enumerate() {
        let now = t(41_000 + i as u64);
        relay.handle_datagram(now, PUBLISHER, d);
        if i == 10 {
            subscribe(&mut relay, now, viewer, stream);
        }
        got.extend(drain_to(&mut relay, viewer));
    }
    assert_eq!(relay.stream_count(), 1);
    assert!(
        data_count(&got) > 300,
        "the viewer got {}",
        data_count(&got)
    );
    // Slots were reused, not added.
    assert!(relay.streams.len() <= 8);
}

#[test]
fn subscribers_cannot_fill_the_table_with_empty_streams() {
    let idle = Duration::from_secs(30);
    let mut relay = Relay::new(RelayConfig {
        stream_idle_timeout: idle,
        handshake_rate: 0,
        ..RelayConfig::default()
    });
    // One host waits for ten streams that are not live.
    let mut rejects = Vec::new();
    for j in 0..10u32 {
        let from = SocketAddr::from(([203, 0, 113, 5], 6000 + j as u16));
        let (id, _) = throwaway(500 + j);
        subscribe(&mut relay, t(0), from, id);
        rejects.extend(answers(&mut relay, from).1);
    }
    assert_eq!(relay.stream_count(), 4);
    assert_eq!(rejects, [RejectReason::RateLimited; 6]);
    assert_eq!(relay.stats().drop_source_streams, 6);
    // While they wait (with keepalives) the streams stay; once they leave,
    // the empty streams go after the idle timeout.
    let leave = |id, session| {
        crate::testutil::emit(&Message::Leave(Leave {
            reason: LeaveReason::Done,
            stream: id,
            session,
        }))
    };
    for ms in (0..=80_000).step_by(500) {
        let now = t(ms);
        for j in 0..4u32 {
            let from = SocketAddr::from(([203, 0, 113, 5], 6000 + j as u16));
            let (id, _) = throwaway(500 + j);
            let session = session(&relay, from);
            let msg = if ms < 40_000 {
                crate::testutil::emit(&Message::Keepalive(crate::testutil::keepalive(id, session)))
            } else {
                leave(id, session)
            };
            relay.handle_datagram(now, from, &msg);
        }
        if relay.poll_timeout().is_some_and(|at| at <= now) {
            relay.handle_timeout(now);
        }
        while relay.poll_transmit().is_some() {}
        // Kept while waited for, and for the idle timeout after the last
        // sweep that saw a subscriber (sweeps are a quarter timeout apart).
        if ms <= 62_000 {
            assert_eq!(relay.stream_count(), 4, "at {ms} ms");
        }
    }
    assert_eq!(relay.stream_count(), 0, "the empty streams were removed");
}

#[test]
fn one_host_holds_at_most_its_share_of_subscriptions() {
    let (stream, datagrams) = published(50);
    let mut relay = Relay::new(RelayConfig {
        max_subscriptions_per_ip: 64,
        handshake_rate: 0,
        ..RelayConfig::default()
    });
    relay.handle_datagram(t(0), PUBLISHER, descriptor(&datagrams));
    // 100 IPv4 ports of one address, then 100 addresses of one IPv6 /64.
    let hosts: [Box<dyn Fn(u16) -> SocketAddr>; 2] = [
        Box::new(|i| SocketAddr::from(([192, 0, 2, 7], 10_000 + i))),
        Box::new(|i| {
            let ip =
                std::net::Ipv6Addr::from(0x2001_0db8_0000_0042u128 << 64 | u128::from(i) << 16);
            SocketAddr::new(ip.into(), 10_000)
        }),
    ];
    for host in &hosts {
        let mut rejects = Vec::new();
        for i in 0..100 {
            subscribe(&mut relay, t(1), host(i), stream);
            rejects.extend(answers(&mut relay, host(i)).1);
        }
        assert_eq!(rejects, [RejectReason::RateLimited; 36]);
    }
    assert_eq!(relay.subscriber_count(), 128);
    assert_eq!(relay.stats().drop_source_subscriptions, 72);
    // A resubscription is not a new one; another host is not affected; a
    // place freed by a LEAVE is taken again.
    subscribe(&mut relay, t(2), hosts[0](0), stream);
    assert!(answers(&mut relay, hosts[0](0)).1.is_empty());
    subscribe(&mut relay, t(2), addr("192.0.2.8:1"), stream);
    assert!(answers(&mut relay, addr("192.0.2.8:1")).1.is_empty());
    let leave = crate::testutil::emit(&Message::Leave(Leave {
        reason: LeaveReason::Done,
        stream,
        session: session(&relay, hosts[0](5)),
    }));
    relay.handle_datagram(t(3), hosts[0](5), &leave);
    subscribe(&mut relay, t(3), hosts[0](99), stream);
    assert!(answers(&mut relay, hosts[0](99)).1.is_empty());
    assert_eq!(relay.stats().drop_source_subscriptions, 72);
}

#[test]
fn a_mirror_goes_when_its_owner_says_so_not_by_its_own_clock() {
    let (stream, datagrams) = published(200);
    let mut owner = Relay::new(RelayConfig::default());
    owner.set_export(true);
    let mut mirror = Relay::new(RelayConfig::default());
    let viewer = addr("192.0.2.30:5000");
    for (i, d) in datagrams.iter().enumerate() {
        let now = t(i as u64);
        owner.handle_datagram(now, PUBLISHER, d);
        while owner.poll_transmit().is_some() {}
        while let Some(e) = owner.poll_export() {
            mirror.handle_adopt(now, e);
        }
    }
    subscribe(&mut mirror, t(200), viewer, stream);
    drain_to(&mut mirror, viewer);
    // An hour later, with the viewer's keepalives, the owner has let the
    // stream go; the mirror, which runs no idle timer, keeps it until told.
    let keepalive = crate::testutil::emit(&Message::Keepalive(crate::testutil::keepalive(
        stream,
        session(&mirror, viewer),
    )));
    for s in 1..=60 {
        let now = t(200 + s * 1000);
        owner.handle_timeout(now);
        mirror.handle_datagram(now, viewer, &keepalive);
        if mirror.poll_timeout().is_some_and(|at| at <= now) {
            mirror.handle_timeout(now);
        }
    }
    assert_eq!(owner.stream_count(), 0);
    assert!(
        owner
            .poll_event()
            .into_iter()
            .chain(std::iter::from_fn(|| owner.poll_event()))
            .any(|e| e == RelayEvent::StreamRemoved(stream))
    );
    assert_eq!(mirror.stream_count(), 1);
    assert!(answers(&mut mirror, viewer).0.is_empty());
    mirror.remove_stream(&stream);
    assert_eq!(mirror.stream_count(), 0);
    assert_eq!(answers(&mut mirror, viewer).0, [LeaveReason::EndOfStream]);
    assert_eq!(mirror.subscriber_count(), 0);
}

#[test]
fn a_configured_downstream_resubscribes_when_its_upstream_lets_an_idle_stream_go() {
    let (stream, datagrams) = published(6000);
    let a_addr = addr("10.0.0.1:7400");
    let b_addr = addr("10.0.0.2:7400");
    let viewer = addr("192.0.2.40:5000");
    let mut a = Relay::new(RelayConfig {
        stream_idle_timeout: Duration::from_secs(2),
        ..RelayConfig::default()
    });
    let mut b = Relay::new(RelayConfig {
        stream_idle_timeout: Duration::from_secs(2),
        ..RelayConfig::default()
    });
    b.add_upstream(t(0), a_addr, stream).expect("upstream");
    subscribe(&mut b, t(0), viewer, stream);
    let mut viewer_data = Vec::new();
    // The publisher sends the first half of its stream, is silent for 6 s,
    // then sends the rest (as if it had been cut off and came back).
    let half = datagrams.len() as u64 / 2;
    let restart = half + 6000;
    let mut next = 0;
    for ms in 0..restart + half + 1000 {
        let now = t(ms);
        if (ms < half || ms >= restart)
            && let Some(d) = datagrams.get(next)
        {
            a.handle_datagram(now, PUBLISHER, d);
            next += 1;
        }
        for r in [&mut a, &mut b] {
            if r.poll_timeout().is_some_and(|at| at <= now) {
                r.handle_timeout(now);
            }
        }
        // Deliver what each relay sent the other (no loss, no delay).
        let mut to_b = Vec::new();
        while let Some((dst, buf)) = kept(&mut a) {
            if dst == b_addr {
                to_b.push(buf);
            }
        }
        for d in &to_b {
            b.handle_datagram(now, a_addr, d);
        }
        let mut to_a = Vec::new();
        while let Some((dst, buf)) = kept(&mut b) {
            if dst == a_addr {
                to_a.push(buf);
            } else if dst == viewer && peek_type(&buf) == Ok(MessageType::Data) {
                viewer_data.push(ms);
            }
        }
        for d in &to_a {
            a.handle_datagram(now, b_addr, d);
        }
        // The viewer keeps its subscription to b.
        if ms % 500 == 0 {
            let keepalive = crate::testutil::emit(&Message::Keepalive(crate::testutil::keepalive(
                stream,
                session(&b, viewer),
            )));
            b.handle_datagram(now, viewer, &keepalive);
        }
    }
    assert_eq!(a.stats().streams_removed, 1, "a let the idle stream go");
    assert_eq!(
        b.stats().streams_removed,
        0,
        "b keeps its configured stream"
    );
    let before = viewer_data.iter().filter(|&&ms| ms < half).count();
    let after = viewer_data.iter().filter(|&&ms| ms >= restart).count();
    assert!(
        before > 300,
        "b's viewer got {before} chunks before the pause"
    );
    assert!(
        after > 300,
        "b's viewer got {after} chunks after the restart"
    );
}
