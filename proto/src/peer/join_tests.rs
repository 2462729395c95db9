//! How fast a peer that waited for the stream finds its neighbours: at
//! the descriptor, not at its next tick, and a candidate as soon as the
//! relay names it.

use super::neighbour::Neighbour;
use super::tests::accept;
use super::*;
use crate::integrity::PublisherKey;
use crate::publisher::{Publisher, PublisherConfig};
use crate::testutil::{SESSION, addr, emit, sent, sent_to, t};
use crate::wire::{Codec, MessageType, Peers};

const RELAY: &str = "127.0.0.1:7421";
const CANDIDATE: &str = "198.51.100.7:4000";

/// A peer subscribed at `t(0)` to a stream that went live at `t(450)`,
/// with nothing queued.
fn live_peer() -> Peer {
    let (publisher, mut p) = subscribed_peer();
    p.handle_datagram(t(450), addr(RELAY), publisher.descriptor());
    run_until(&mut p, t(450));
    p
}

/// A publisher not yet live, and a peer its relay accepted at `t(0)`.
fn subscribed_peer() -> (Publisher, Peer) {
    let config = PublisherConfig {
        codec: Codec::Opaque,
        ..PublisherConfig::default()
    };
    let key = PublisherKey::from_seed([6; 32]);
    let publisher = Publisher::new(key, config, vec![addr(RELAY)], t(0)).expect("publisher");
    let mut p = Peer::new(PeerConfig::new(addr(RELAY), publisher.stream_id()), t(0)).expect("peer");
    let out = sent(&mut p);
    accept(&mut p, t(0), addr(RELAY), &out);
    (publisher, p)
}

/// Runs every timer due up to `until`; returns what the peer sent.
fn run_until(p: &mut Peer, until: Time) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(now) = p.poll_timeout().filter(|&at| at <= until) {
        p.handle_timeout(now);
        out.extend(sent(p));
    }
    out
}

#[test]
fn a_peer_that_waited_for_the_stream_asks_at_the_descriptor_and_tries_a_candidate_at_once() {
    let (publisher, mut p) = subscribed_peer();
    let stream = publisher.stream_id();
    // Subscribed to a stream not yet live: nothing to join or ask.
    let waiting = run_until(&mut p, t(440));
    assert!(sent_to(&waiting, MessageType::Peers).is_empty());

    // The stream goes live between two ticks: upkeep is due at once.
    p.handle_datagram(t(450), addr(RELAY), publisher.descriptor());
    assert_eq!(p.poll_timeout(), Some(t(450)), "upkeep at the descriptor");
    let asked = run_until(&mut p, t(450));
    assert_eq!(sent_to(&asked, MessageType::Member), [addr(RELAY)]);
    assert!(!sent_to(&asked, MessageType::Peers).is_empty());

    // The relay names a candidate for club 0: tried now, not at the tick.
    let mut peers = Peers::new(stream, SESSION, 0);
    peers.push(addr(CANDIDATE));
    p.handle_datagram(t(470), addr(RELAY), &emit(&Message::Peers(peers)));
    assert_eq!(
        p.poll_timeout(),
        Some(t(470)),
        "upkeep at the new candidate"
    );
    let tried = run_until(&mut p, t(470));
    assert_eq!(sent_to(&tried, MessageType::Introduce), [addr(RELAY)]);
    assert_eq!(sent_to(&tried, MessageType::Punch), [addr(CANDIDATE)]);
}

/// Candidates the relay named more than `ASK_EVERY` ago are not tried: they
/// may have filled up since, and the relay would not name them now. The
/// peer asks again instead; fresh ones it tries.
#[test]
fn a_peer_asks_again_rather_than_try_candidates_named_long_ago() {
    let mut p = live_peer();
    let club = 3;
    let ci = usize::from(club);
    p.neighbours.list.retain(|s| s.club != club);
    p.neighbours.candidates[ci] = vec![addr(CANDIDATE)];
    p.neighbours.asked[ci] = Some(t(450));
    let now = t(450) + neighbours::ASK_EVERY;
    p.fill_club(now, club);
    let out = sent(&mut p);
    assert!(
        sent_to(&out, MessageType::Introduce).is_empty(),
        "not tried"
    );
    assert_eq!(sent_to(&out, MessageType::Peers), [addr(RELAY)]);
    assert!(p.neighbours.candidates[ci].is_empty());

    p.neighbours.candidates[ci] = vec![addr(CANDIDATE)];
    p.fill_club(now + Duration::from_millis(100), club);
    let out = sent(&mut p);
    assert_eq!(sent_to(&out, MessageType::Introduce), [addr(RELAY)]);
}

/// Candidates that are all banned or already serve us another club are
/// no candidates: with the club left to the relay, the peer asks again as
/// soon as after an empty answer, not after `ASK_EVERY` (swarm_loopback:
/// the relay's share in the second second 0.13-0.18 -> 0.07-0.09 of the
/// stream).
#[test]
fn a_peer_whose_candidates_are_all_of_no_use_asks_again_soon() {
    let mut p = live_peer();
    let club = 3;
    let ci = usize::from(club);
    let serving = SocketAddr::from(([198, 51, 100, 8], 4000));
    p.neighbours.list.retain(|s| s.club != club);
    p.neighbours.list.push(Neighbour::new(
        serving,
        club + 1,
        p.config.stream,
        t(450),
        1,
    ));
    p.neighbours.banned.insert(addr(CANDIDATE), t(60_000));
    p.neighbours.candidates[ci] = vec![addr(CANDIDATE), serving];
    p.neighbours.asked[ci] = Some(t(450));

    let early = t(450) + neighbours::ASK_EMPTY - Duration::from_millis(1);
    p.fill_club(early, club);
    assert!(sent_to(&sent(&mut p), MessageType::Peers).is_empty());

    let now = t(450) + neighbours::ASK_EMPTY;
    assert!(now < t(450) + neighbours::ASK_EVERY);
    p.fill_club(now, club);
    let out = sent(&mut p);
    assert_eq!(sent_to(&out, MessageType::Peers), [addr(RELAY)]);
    assert!(sent_to(&out, MessageType::Introduce).is_empty());
    assert!(p.neighbours.candidates[ci].is_empty(), "forgotten");
}

/// The mean place, among 20 candidates listed oldest first, of the one
/// the peer tries for `club` over 200 tries.
fn mean_pick(p: &mut Peer, club: u8) -> f64 {
    let ci = usize::from(club);
    let list: Vec<SocketAddr> = (0..20)
        .map(|i| SocketAddr::from(([198, 51, 100, 9], 5000 + i)))
        .collect();
    let now = t(500);
    let mut sum = 0;
    for _ in 0..200 {
        p.neighbours.list.retain(|s| s.club != club);
        p.neighbours.candidates[ci] = list.clone();
        p.neighbours.asked[ci] = Some(now);
        p.fill_club(now, club);
        let picked = p
            .neighbours
            .list
            .iter()
            .find(|s| s.club == club)
            .expect("a pick");
        sum += list.iter().position(|&a| picked.is(a)).expect("listed");
    }
    sum as f64 / 200.0
}

/// In a club it is a member of, a peer takes the oldest of a few
/// candidates (a shallow tree); in another, the youngest of a few
/// (leaving the old members' room to members). A uniform pick among 20
/// would average 9.5.
#[test]
fn members_take_old_candidates_and_last_hop_viewers_young_ones() {
    let mut p = live_peer();
    let member = (0..p.membership.clubs)
        .find(|&c| p.membership.joined(c))
        .expect("a member club");
    let other = (0..p.membership.clubs)
        .find(|&c| !p.membership.joined(c))
        .expect("another club");
    let (old, young) = (mean_pick(&mut p, member), mean_pick(&mut p, other));
    assert!(old < 3.0, "member club: mean place {old}");
    assert!(young > 13.0, "last hop: mean place {young}");
}
