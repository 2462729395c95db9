//! The relay's part in the swarm: HAVE, MEMBER and PEERS, INTRODUCE,
//! club slots, and manifests NACKed upstream.

use std::net::SocketAddr;

use super::swarm::{INTRODUCE_RATE, MEMBER_GRACE};
use super::tests::{
    FIRST_SEQ, PUBLISHER, drain_to, kept, published, send, session, subscribe, subscribe_clubs, t,
    take_from_upstream,
};
use super::upstream::MANIFEST_NACK_AFTER;
use super::*;
use crate::transmit::SharedBuf;
use crate::wire::{DataView, Have, Introduce, Leave, LeaveReason, Member, NackKind, Peers};

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 9], 7000 + i))
}

fn data_seqs(bufs: &[SharedBuf]) -> Vec<u64> {
    bufs.iter()
        .filter_map(|b| DataView::new_checked(b).ok().map(|v| v.fields().seq))
        .collect()
}

/// A relay that has the stream's descriptor and one block, and nothing
/// queued.
fn relay_with_stream() -> (Relay, StreamId, Vec<Vec<u8>>) {
    let (stream, datagrams) = published(1500);
    let mut relay = Relay::new(RelayConfig::default());
    relay.handle_datagram(t(0), PUBLISHER, &datagrams[0]);
    while relay.poll_transmit().is_some() {}
    (relay, stream, datagrams)
}

#[test]
fn chunks_a_subscriber_has_announced_are_not_pushed_to_it() {
    let (mut relay, stream, datagrams) = relay_with_stream();
    let (a, b) = (addr(1), addr(2));
    subscribe(&mut relay, t(1), a, stream);
    subscribe(&mut relay, t(1), b, stream);
    while relay.poll_transmit().is_some() {}
    // `a` holds the first 8 chunks already.
    let have = Have {
        stream,
        session: session(&relay, a),
        base: FIRST_SEQ,
        mask: 0xff,
    };
    send(&mut relay, t(2), a, &Message::Have(have));
    for d in &datagrams[1..] {
        relay.handle_datagram(t(3), PUBLISHER, d);
    }
    let mut to_a = Vec::new();
    let mut to_b = Vec::new();
    while let Some((dst, buf)) = kept(&mut relay) {
        if dst == a {
            to_a.push(buf);
        } else if dst == b {
            to_b.push(buf);
        }
    }
    let (to_a, to_b) = (data_seqs(&to_a), data_seqs(&to_b));
    assert!(
        to_b.contains(&FIRST_SEQ) && to_b.contains(&(FIRST_SEQ + 7)),
        "{to_b:?}"
    );
    assert!(to_a.iter().all(|&s| s >= FIRST_SEQ + 8), "{to_a:?}");
    assert_eq!(to_a.len() + 8, to_b.len());
}

fn member(relay: &mut Relay, now: Time, from: SocketAddr, stream: StreamId, clubs: u64) {
    member_with_room(relay, now, from, stream, clubs, 3000);
}

fn member_with_room(
    relay: &mut Relay,
    now: Time,
    from: SocketAddr,
    stream: StreamId,
    clubs: u64,
    upload_kbps: u32,
) {
    let m = Member {
        stream,
        session: session(relay, from),
        clubs,
        upload_kbps,
    };
    send(relay, now, from, &Message::Member(m));
}

fn ask_peers(
    relay: &mut Relay,
    now: Time,
    from: SocketAddr,
    stream: StreamId,
    club: u8,
) -> Vec<SocketAddr> {
    let ask = Peers::new(stream, session(relay, from), club);
    send(relay, now, from, &Message::Peers(ask));
    drain_to(relay, from)
        .iter()
        .find_map(|b| match Message::parse(b) {
            Ok(Message::Peers(p)) => Some(p.addrs().to_vec()),
            _ => None,
        })
        .expect("a PEERS answer")
}

#[test]
fn peers_lists_only_members_and_a_member_only_older_ones() {
    let (mut relay, stream, _) = relay_with_stream();
    // Four peers join one after the other; 1, 2 and 4 are members of club
    // 3, peer 3 is a pure viewer.
    for i in 1..=4u16 {
        subscribe(&mut relay, t(10 * u64::from(i)), addr(i), stream);
        if i != 3 {
            member(&mut relay, t(10 * u64::from(i)), addr(i), stream, 1 << 3);
        }
    }
    while relay.poll_transmit().is_some() {}
    // The viewer has declared no club: in its first MEMBER_GRACE it gets
    // the members that joined before it, as a member would (see the next
    // test); after that every member, not itself.
    let mut got = ask_peers(&mut relay, t(100), addr(3), stream, 3);
    got.sort();
    assert_eq!(got, vec![addr(1), addr(2)]);
    let after = t(30) + MEMBER_GRACE;
    let mut got = ask_peers(&mut relay, after, addr(3), stream, 3);
    got.sort();
    assert_eq!(got, vec![addr(1), addr(2), addr(4)]);
    // Member 2 gets only the member that joined before it.
    assert_eq!(
        ask_peers(&mut relay, t(100), addr(2), stream, 3),
        vec![addr(1)]
    );
    // Member 1 gets nobody: it is fed by the relay.
    assert!(ask_peers(&mut relay, t(100), addr(1), stream, 3).is_empty());
    // Club 5 has no members.
    assert!(ask_peers(&mut relay, after, addr(3), stream, 5).is_empty());
}

/// The oldest members of a club, one per `MEMBERS_PER_ROOT` members, are
/// its roots: asked about their club, they get no one (the relay feeds
/// them), even when full, and the next oldest takes a root's place when
/// it leaves. Everyone else gets older members as before. It fails if the
/// relay names a root older members (the trees' tops then sink under
/// churn) or lets a full member out of the count.
#[test]
fn the_oldest_members_of_a_club_are_its_roots() {
    use super::roots::MEMBERS_PER_ROOT;
    let (mut relay, stream, _) = relay_with_stream();
    let members = 2 * MEMBERS_PER_ROOT as u16 + 4;
    for i in 1..=members {
        subscribe(&mut relay, t(u64::from(i)), addr(i), stream);
        member(&mut relay, t(u64::from(i)), addr(i), stream, 1 << 3);
    }
    // Member 2 fills up: still a member, still a root.
    member_with_room(&mut relay, t(100), addr(2), stream, 1 << 3, 0);
    while relay.poll_transmit().is_some() {}
    // 2 x MEMBERS_PER_ROOT + 4 members: 3 roots.
    for i in 1..=3 {
        assert!(
            ask_peers(&mut relay, t(200), addr(i), stream, 3).is_empty(),
            "{i}"
        );
    }
    let mut got = ask_peers(&mut relay, t(200), addr(4), stream, 3);
    got.sort();
    assert_eq!(got, vec![addr(1), addr(3)]);
    // A root of club 3 asking about another club is a last-hop viewer
    // there, and is answered as one.
    member(&mut relay, t(201), addr(members), stream, 1 << 3 | 1 << 4);
    while relay.poll_transmit().is_some() {}
    assert_eq!(
        ask_peers(&mut relay, t(202), addr(1), stream, 4),
        vec![addr(members)]
    );
    // Root 1 leaves: still 3 roots, and member 4 is one now.
    let leave = Leave {
        reason: LeaveReason::Done,
        stream,
        session: session(&relay, addr(1)),
    };
    send(&mut relay, t(300), addr(1), &Message::Leave(leave));
    assert!(ask_peers(&mut relay, t(301), addr(4), stream, 3).is_empty());
    assert_eq!(
        ask_peers(&mut relay, t(301), addr(5), stream, 3),
        vec![addr(3), addr(4)]
    );
}

/// A member's PEERS that reaches the relay before its MEMBER (the two go
/// out together) is answered as a member's: only older members, so that
/// its club links cannot close into a ring with a younger member's. It
/// fails if the relay answers an undeclared asker as a non-member.
#[test]
fn peers_before_member_gets_only_older_members() {
    let (mut relay, stream, _) = relay_with_stream();
    for i in 1..=3u16 {
        subscribe(&mut relay, t(10 * u64::from(i)), addr(i), stream);
    }
    member(&mut relay, t(10), addr(1), stream, 1 << 3);
    member(&mut relay, t(30), addr(3), stream, 1 << 3);
    while relay.poll_transmit().is_some() {}
    // Peer 2 has not declared its clubs yet: member 3 joined after it.
    assert_eq!(
        ask_peers(&mut relay, t(100), addr(2), stream, 3),
        vec![addr(1)]
    );
}

/// A member whose upload side is full says so (MEMBER with upload 0): it
/// is not handed out, yet still a member (it gets only older members when
/// it asks about its club), and is handed out again once it has room.
#[test]
fn a_full_member_is_not_listed_until_it_has_room() {
    let (mut relay, stream, _) = relay_with_stream();
    for i in 1..=3u16 {
        subscribe(&mut relay, t(10 * u64::from(i)), addr(i), stream);
        member(&mut relay, t(10 * u64::from(i)), addr(i), stream, 1 << 2);
    }
    while relay.poll_transmit().is_some() {}
    member_with_room(&mut relay, t(50), addr(1), stream, 1 << 2, 0);
    assert_eq!(
        ask_peers(&mut relay, t(60), addr(3), stream, 2),
        vec![addr(2)]
    );
    // Member 1 still asks as a member: nobody is older.
    assert!(ask_peers(&mut relay, t(60), addr(1), stream, 2).is_empty());
    member(&mut relay, t(70), addr(1), stream, 1 << 2);
    assert_eq!(
        ask_peers(&mut relay, t(80), addr(3), stream, 2),
        vec![addr(1), addr(2)],
        "listed again, oldest first"
    );
}

/// Each INTRODUCE naming a member takes a club-stream off the room its
/// last MEMBER told; at none it is not handed out, until a MEMBER says it
/// has room again.
#[test]
fn a_member_introduced_to_as_many_as_it_has_room_for_is_not_listed() {
    let (mut relay, stream, _) = relay_with_stream();
    let (d, _) = relay.streams[0].window.descriptor().expect("a descriptor");
    let club_kbps = (d.bitrate_bps + d.bitrate_bps / 4) / u64::from(d.clubs) / 1000;
    let room = |clubs: u64| u32::try_from(clubs * club_kbps).expect("kbit/s");
    for i in 1..=4u16 {
        subscribe(&mut relay, t(10 * u64::from(i)), addr(i), stream);
    }
    let tell = |relay: &mut Relay, now, upload_kbps| {
        let m = Member {
            stream,
            session: session(relay, addr(1)),
            clubs: 1 << 2,
            upload_kbps,
        };
        send(relay, now, addr(1), &Message::Member(m));
    };
    tell(&mut relay, t(50), room(2));
    while relay.poll_transmit().is_some() {}
    let introduce = |relay: &mut Relay, now, from| {
        let intro = Introduce {
            stream,
            session: session(relay, from),
            addr: addr(1),
        };
        send(relay, now, from, &Message::Introduce(intro));
        while relay.poll_transmit().is_some() {}
    };
    introduce(&mut relay, t(60), addr(2));
    assert_eq!(ask_peers(&mut relay, t(61), addr(4), stream, 2), [addr(1)]);
    introduce(&mut relay, t(62), addr(3));
    assert!(
        ask_peers(&mut relay, t(63), addr(4), stream, 2).is_empty(),
        "no room left: not handed out"
    );
    tell(&mut relay, t(70), room(1));
    assert_eq!(ask_peers(&mut relay, t(71), addr(4), stream, 2), [addr(1)]);
}

#[test]
fn introduce_is_forwarded_to_a_subscriber_only_and_rate_limited() {
    let (mut relay, stream, _) = relay_with_stream();
    let (a, b, stranger) = (addr(1), addr(2), addr(9));
    subscribe(&mut relay, t(1), a, stream);
    subscribe(&mut relay, t(1), b, stream);
    while relay.poll_transmit().is_some() {}
    let session_a = session(&relay, a);
    let intro = |to| {
        Message::Introduce(Introduce {
            stream,
            session: session_a,
            addr: to,
        })
    };
    send(&mut relay, t(2), a, &intro(b));
    let forwarded: Vec<_> = drain_to(&mut relay, b)
        .iter()
        .filter_map(|buf| match Message::parse(buf) {
            Ok(Message::Introduce(i)) => Some(i.addr),
            _ => None,
        })
        .collect();
    assert_eq!(forwarded, vec![a], "b learns a's address");
    // Not to an address that is not a subscriber, and not from one.
    send(&mut relay, t(3), a, &intro(stranger));
    send(&mut relay, t(3), stranger, &intro(b));
    assert!(relay.poll_transmit().is_none());
    // At most INTRODUCE_RATE per second per requester.
    for _ in 0..2 * INTRODUCE_RATE {
        send(&mut relay, t(4), a, &intro(b));
    }
    let n = drain_to(&mut relay, b).len() as u32;
    assert_eq!(n, INTRODUCE_RATE - 1);
    assert!(relay.stats().drop_rate_limited >= INTRODUCE_RATE.into());
}

#[test]
fn club_slots_bound_what_subscribers_may_take() {
    let (mut relay, stream, _) = relay_with_stream();
    relay.set_club_slots(Some(3));
    subscribe_clubs(&mut relay, t(1), addr(1), stream, 0b11);
    subscribe_clubs(&mut relay, t(1), addr(2), stream, 0b11);
    assert_eq!(relay.subscriber_count(), 1, "the second would need 4 slots");
    assert_eq!(relay.stats().drop_full, 1);
    subscribe_clubs(&mut relay, t(1), addr(3), stream, 0b100);
    assert_eq!(relay.used_club_slots(), 3);
    // Resubscribing with fewer clubs frees slots.
    subscribe_clubs(&mut relay, t(2), addr(1), stream, 0b1);
    subscribe_clubs(&mut relay, t(2), addr(2), stream, 0b1);
    assert_eq!(relay.subscriber_count(), 3);
}

#[test]
fn a_lost_manifest_is_nacked_to_the_upstream_relay() {
    let (stream, datagrams) = published(1500);
    let upstream = addr(50);
    let mut relay = Relay::new(RelayConfig::default());
    take_from_upstream(&mut relay, upstream, stream);
    // Everything but the first block's manifest (both copies) arrives.
    let block_of = |d: &[u8]| {
        crate::wire::ManifestView::new_checked(d)
            .ok()
            .map(|m| m.fields().block)
    };
    let skipped = datagrams.iter().find_map(|d| block_of(d));
    for d in &datagrams {
        if block_of(d).is_some() && block_of(d) == skipped {
            continue;
        }
        relay.handle_datagram(t(3), upstream, d);
    }
    let block = skipped.expect("a manifest");
    while relay.poll_transmit().is_some() {}
    assert!(
        relay.upstreams().all(|u| u.subscribed),
        "subscribed upstream"
    );
    let later = t(3) + MANIFEST_NACK_AFTER;
    assert!(relay.poll_timeout().is_some_and(|d| d <= later));
    relay.handle_timeout(later);
    let nacked: Vec<_> = drain_to(&mut relay, upstream)
        .iter()
        .filter_map(|b| match Message::parse(b) {
            Ok(Message::Nack(n)) => Some(n.entries().to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        nacked
            .iter()
            .any(|e| e.kind == NackKind::Manifests && e.start == block),
        "{nacked:?}"
    );
    assert_eq!(relay.stats().manifest_nacks, 1);
}

/// Once a pass has seen a subscriber that forwards (a member of a club it
/// takes), the next passes serve such subscribers before the rest: the
/// member in the later slot gets every chunk before the viewer in the
/// earlier one. It fails if fan-out goes in slot order alone.
#[test]
fn forwarders_get_each_chunk_before_viewers() {
    let (mut relay, stream, datagrams) = relay_with_stream();
    let (viewer, forwarder) = (addr(1), addr(2));
    subscribe(&mut relay, t(1), viewer, stream);
    subscribe(&mut relay, t(1), forwarder, stream);
    member(&mut relay, t(1), forwarder, stream, 1);
    // A first pass, in slot order, notes the forwarder.
    relay.handle_datagram(t(2), PUBLISHER, &datagrams[1]);
    while relay.poll_transmit().is_some() {}
    for d in &datagrams[2..] {
        relay.handle_datagram(t(3), PUBLISHER, d);
    }
    let mut order = Vec::new();
    while let Some((dst, buf)) = kept(&mut relay) {
        if DataView::new_checked(&buf).is_ok() {
            order.push(dst);
        }
    }
    let first_to_viewer = order.iter().position(|&d| d == viewer);
    let last_to_forwarder = order.iter().rposition(|&d| d == forwarder);
    let (Some(first_to_viewer), Some(last_to_forwarder)) = (first_to_viewer, last_to_forwarder)
    else {
        panic!("both get chunks: {order:?}");
    };
    assert!(last_to_forwarder < first_to_viewer, "{order:?}");
}
