//! NAT traversal (SPEC §11.9): the order of a new neighbour's first
//! datagrams, a candidate whose NAT maps it anew toward us, and a
//! candidate nothing comes back from.

use super::tests::accept;
use super::*;
use crate::integrity::PublisherKey;
use crate::publisher::{Publisher, PublisherConfig};
use crate::testutil::{addr, emit, handshake_answers, hello_nonce, sent, sent_to, t};
use crate::wire::{
    Challenge, Codec, HELLO_MIN_LEN, Have, Hello, MessageType, Peers, Punch, SUPPORTED_VERSIONS,
    Subscribe, peek_type,
};

const RELAY: &str = "127.0.0.1:7401";

/// A peer subscribed to its relay, with the stream's descriptor, and told
/// of `candidates` for every club.
fn joined(candidates: &[SocketAddr]) -> Peer {
    joined_by(|_| candidates.to_vec())
}

/// As [`joined`], told of `named(club)` for each club.
fn joined_by(named: impl Fn(u8) -> Vec<SocketAddr>) -> Peer {
    let config = PublisherConfig {
        codec: Codec::Opaque,
        ..PublisherConfig::default()
    };
    let key = PublisherKey::from_seed([5; 32]);
    let publisher = Publisher::new(key, config, vec![addr(RELAY)], t(0)).expect("publisher");
    let stream = publisher.stream_id();
    let mut p = Peer::new(PeerConfig::new(addr(RELAY), stream), t(0)).expect("peer");
    let out = sent(&mut p);
    accept(&mut p, t(0), addr(RELAY), &out);
    p.handle_datagram(t(10), addr(RELAY), publisher.descriptor());
    tell_by(&mut p, t(20), named);
    sent(&mut p);
    p
}

/// The relay lists `candidates` for every club.
fn tell(p: &mut Peer, now: Time, candidates: &[SocketAddr]) {
    tell_by(p, now, |_| candidates.to_vec());
}

/// The relay lists `named(club)` for each club.
fn tell_by(p: &mut Peer, now: Time, named: impl Fn(u8) -> Vec<SocketAddr>) {
    for club in 0..8 {
        let mut peers = Peers::new(p.config.stream, crate::testutil::SESSION, club);
        for c in named(club) {
            peers.push(c);
        }
        p.handle_datagram(now, addr(RELAY), &emit(&Message::Peers(peers)));
    }
}

/// A PUNCH from the peer the relay sees at `seen_as`.
fn punch(p: &Peer, seen_as: SocketAddr) -> Vec<u8> {
    emit(&Message::Punch(Punch {
        stream: p.config.stream,
        seen_as,
    }))
}

/// Answers the HELLO to `server` among `out` with a CHALLENGE and, to the
/// SUBSCRIBE, an ACCEPT, both from `server`.
fn serve(p: &mut Peer, now: Time, server: SocketAddr, out: &[(SocketAddr, Vec<u8>)]) {
    let nonce = hello_nonce(out, server);
    let [challenge, accept] = handshake_answers(p.config.stream, nonce, 0);
    p.handle_datagram(now, server, &emit(&challenge));
    assert!(sent_to(&sent(p), MessageType::Subscribe).contains(&server));
    p.handle_datagram(now, server, &emit(&accept));
    sent(p);
}

/// A new neighbour's first datagram is a PUNCH at [`FIRST_PUNCH_TTL`],
/// before the INTRODUCE; its HELLO waits for the candidate's PUNCH, or for
/// [`PUNCH_WAIT`]; the link says which way it got through.
#[test]
fn a_new_neighbour_is_punched_short_first_and_greeted_after_its_punch() {
    let (c, d) = (addr("192.0.2.7:9000"), addr("192.0.2.8:9000"));
    let mut p = joined(&[c, d]);
    // Upkeep picks neighbours among C and D.
    p.handle_timeout(t(100));
    let mut first = Vec::new();
    let mut out = Vec::new();
    while let Some(tx) = p.poll_transmit() {
        if tx.dst == c || tx.dst == d {
            first.push((tx.dst, peek_type(tx.payload), tx.ttl));
        }
        out.push((tx.dst, tx.payload.to_vec()));
    }
    assert!(!first.is_empty(), "no neighbour picked");
    for (to, ty, ttl) in &first {
        assert_eq!(
            (*ty, *ttl),
            (Ok(MessageType::Punch), Some(FIRST_PUNCH_TTL)),
            "to {to}"
        );
    }
    assert!(!sent_to(&out, MessageType::Introduce).is_empty());
    assert!(
        sent_to(&out, MessageType::Hello)
            .iter()
            .all(|to| *to == addr(RELAY))
    );
    // C punches back: C gets its HELLO at once; D, silent, after the wait.
    p.handle_datagram(t(150), c, &punch(&p, c));
    let to_c = sent(&mut p);
    let hellos = sent_to(&to_c, MessageType::Hello);
    assert!(hellos.contains(&c) && !hellos.contains(&d), "{hellos:?}");
    p.handle_timeout(t(100) + PUNCH_WAIT);
    let to_d = sent(&mut p);
    assert!(sent_to(&to_d, MessageType::Hello).contains(&d));
    // (C's HELLO may have been sent again meanwhile: answer the latest.)
    let log = [to_c, to_d].concat();
    serve(&mut p, t(700), c, &log);
    serve(&mut p, t(700), d, &log);
    let mut links: Vec<LinkUp> = std::iter::from_fn(|| p.poll_link()).collect();
    links.sort_by_key(|l| l.addr);
    let seen: Vec<_> = links.iter().map(|l| (l.addr, l.reach, l.after)).collect();
    let after = Duration::from_millis(600);
    assert_eq!(
        seen,
        [(c, Reach::Punched, after), (d, Reach::Direct, after)]
    );
    assert_eq!(p.stats().working_by_reach, [1, 1, 0]);
}

/// A candidate behind a NAT that maps it anew per destination PUNCHes
/// from another port than the relay named: the handshake goes there.
#[test]
fn a_punch_from_another_port_of_the_candidate_moves_the_handshake_there() {
    let named = addr("192.0.2.7:9000");
    let mapped = addr("192.0.2.7:41234");
    let mut p = joined(&[named]);
    p.handle_timeout(t(100));
    sent(&mut p);
    // Another peer's PUNCH moves nothing, even from the candidate's IP
    // (several peers can share one).
    p.handle_datagram(
        t(140),
        addr("192.0.2.7:41999"),
        &punch(&p, addr("192.0.2.7:9999")),
    );
    p.handle_datagram(
        t(140),
        addr("192.0.2.99:41234"),
        &punch(&p, addr("192.0.2.99:9000")),
    );
    assert!(sent(&mut p).is_empty());
    p.handle_datagram(t(150), mapped, &punch(&p, named));
    let out = sent(&mut p);
    assert_eq!(sent_to(&out, MessageType::Hello), [mapped]);
    assert_eq!(p.source_addrs().collect::<Vec<_>>(), [mapped]);
    // The relay names the candidate again: it is the same peer, not a
    // second neighbour.
    tell(&mut p, t(160), &[named]);
    p.handle_timeout(t(200));
    let again = sent(&mut p);
    assert!(!again.iter().any(|(to, _)| *to == named), "{again:?}");
    serve(&mut p, t(250), mapped, &out);
    let link = p.poll_link().expect("a link");
    assert_eq!((link.addr, link.reach), (mapped, Reach::Remapped));
    assert_eq!(p.stats().working_by_reach, [0, 0, 1]);
}

/// A candidate from which nothing comes is given up at [`GIVE_UP`], long
/// before [`HANDSHAKE_TIMEOUT`], and not tried again for [`UNREACHABLE`].
#[test]
fn a_candidate_that_never_answers_is_given_up_fast_and_remembered() {
    let c = addr("192.0.2.7:9000");
    let mut p = joined(&[c]);
    p.handle_timeout(t(100));
    sent(&mut p);
    let chose = t(100);
    let mut now = chose;
    while p.stats().unreachable == 0 {
        now = p.poll_timeout().expect("a timer");
        assert!(now <= chose + HANDSHAKE_TIMEOUT, "not given up by {now:?}");
        p.handle_timeout(now);
        sent(&mut p);
    }
    assert!(now >= chose + GIVE_UP, "given up at {now:?}");
    assert_eq!(p.source_addrs().count(), 0);
    assert_eq!(p.stats().handshake_timeouts, 0);
    // Named again and again, it is not tried within UNREACHABLE.
    let until = now + UNREACHABLE;
    while now + Duration::from_secs(5) < until {
        now += Duration::from_secs(5);
        tell(&mut p, now, &[c]);
        p.handle_timeout(now);
        let out = sent(&mut p);
        assert!(
            !out.iter().any(|(to, _)| *to == c),
            "tried again at {now:?}"
        );
    }
}

/// What peer `p` sends `public`, a neighbour that beacons and answers
/// every handshake (or, with `widenings` false, only the first) from
/// `t(100)` to `t(4000)`: the peer, the clubs of each SUBSCRIBE `public`
/// got, and the HELLOs it got after its first ACCEPT.
fn with_public(mut p: Peer, public: SocketAddr, widenings: bool) -> (Peer, Vec<u64>, usize) {
    let (mut subscribes, mut late_hellos) = (Vec::new(), 0);
    let mut now = t(100);
    while now < t(4000) {
        // The neighbour's beacon (SPEC §11.9): it is alive.
        let beacon = Have {
            stream: p.config.stream,
            session: crate::testutil::SESSION,
            base: 0,
            mask: 0,
        };
        p.handle_datagram(now, public, &emit(&Message::Have(beacon)));
        p.handle_timeout(now);
        let out = sent(&mut p);
        for (to, d) in out.iter().filter(|(to, _)| *to == public) {
            let [challenge, accept] = handshake_answers(p.config.stream, 0, 0);
            let Message::Challenge(c) = challenge else {
                unreachable!()
            };
            match Message::parse(d) {
                Ok(Message::Hello(_)) if !subscribes.is_empty() && !widenings => {
                    late_hellos += 1;
                }
                Ok(Message::Hello(h)) => {
                    late_hellos += usize::from(!subscribes.is_empty());
                    let c = Challenge {
                        nonce: h.nonce,
                        ..c
                    };
                    p.handle_datagram(now, *to, &emit(&Message::Challenge(c)));
                }
                Ok(Message::Subscribe(s)) => {
                    subscribes.push(s.clubs);
                    p.handle_datagram(now, *to, &emit(&accept));
                }
                _ => {}
            }
        }
        now = p.poll_timeout().expect("a timer").clamp(
            now + Duration::from_millis(1),
            now + Duration::from_millis(100),
        );
    }
    (p, subscribes, late_hellos)
}

/// A peer that most candidates cannot reach (behind a NAT that maps every
/// flow anew, only peers without one get through) asks the neighbour it
/// has for more clubs on the same subscription, one at a time, rather than
/// take every club but one from its relay; a peer that reaches its
/// candidates does not.
#[test]
fn a_peer_few_can_reach_asks_its_neighbour_for_more_clubs() {
    let public = addr("192.0.2.1:9000");
    let unreachable = [addr("192.0.2.7:9000"), addr("192.0.2.8:9000")];
    let (p, subscribes, _) = with_public(
        joined(&[public, unreachable[0], unreachable[1]]),
        public,
        true,
    );
    assert_eq!(p.stats().unreachable, 2);
    let clubs: Vec<u8> = p
        .working_sources()
        .filter(|&(a, _)| a == public)
        .map(|(_, c)| c)
        .collect();
    assert!(clubs.len() >= 3, "{clubs:?}");
    // Each SUBSCRIBE after the first asks for one club more.
    assert_eq!(subscribes.len(), clubs.len(), "{subscribes:?}");
    for pair in subscribes.windows(2) {
        assert_eq!(pair[1] & pair[0], pair[0]);
        assert_eq!(pair[1].count_ones(), pair[0].count_ones() + 1);
    }
    // Reaching its candidate, it keeps one club per neighbour.
    let (p, subscribes, late_hellos) = with_public(joined(&[public]), public, true);
    assert_eq!(p.working_sources().count(), 1);
    assert_eq!((subscribes.len(), late_hellos), (1, 0));
}

/// A neighbour that does not answer a widening is not asked again every
/// tick: one handshake (with its retransmits) per [`WIDEN_HOLD`], and the
/// subscription in force goes on.
#[test]
fn a_neighbour_that_never_answers_a_widening_is_asked_once_per_hold() {
    let public = addr("192.0.2.1:9000");
    let unreachable = [addr("192.0.2.7:9000"), addr("192.0.2.8:9000")];
    let candidates = [public, unreachable[0], unreachable[1]];
    let (p, subscribes, late_hellos) = with_public(joined(&candidates), public, false);
    assert_eq!(subscribes.len(), 1);
    assert!((1..=3).contains(&late_hellos), "{late_hellos} HELLOs");
    assert_eq!(p.working_sources().filter(|&(a, _)| a == public).count(), 1);
}

/// For a club it is not a member of, a peer few can reach asks a working
/// neighbour the relay did not name for that club, one club at a time;
/// for a member club only a named one (SPEC §11.9); and never a neighbour
/// that takes that club from it, which would have only what it gave.
#[test]
fn a_peer_few_can_reach_widens_at_any_neighbour_for_clubs_it_is_not_a_member_of() {
    let public = addr("192.0.2.1:9000");
    let unreachable = [addr("192.0.2.7:9000"), addr("192.0.2.8:9000")];
    let named = |club: u8| match club {
        0 => vec![public],
        _ => unreachable.to_vec(),
    };
    let (p, subscribes, _) = with_public(joined_by(named), public, true);
    let member = p.membership.member;
    assert!(member != 0 && member != 0xff, "{member:#x}");
    assert_eq!(p.stats().unreachable, 2);
    let widened = subscribes.last().copied().unwrap_or(0) & !1;
    // Every club but its own that it takes from no one else, and no
    // member club of its own but the one the neighbour was named for.
    let others: u64 = p
        .working_sources()
        .filter(|&(a, _)| a != public)
        .fold(0, |m, (_, c)| m | 1 << c);
    assert_eq!(widened, 0xfe & !member & !others, "{subscribes:?}");
    assert!(widened.count_ones() >= 2, "{subscribes:?}");
    for pair in subscribes.windows(2) {
        assert_eq!(pair[1].count_ones(), pair[0].count_ones() + 1);
    }

    // The same, with the neighbour taking every club from it.
    let mut p = joined_by(named);
    // Its upload side is sized at the first tick with the descriptor.
    p.handle_timeout(t(50));
    sent(&mut p);
    subscribe_to(&mut p, t(50), public, 0xff);
    assert_eq!(p.upload.relay.subscriber_clubs(public), 0xff);
    let (p, subscribes, _) = with_public(p, public, true);
    assert_eq!(subscribes, [1], "asked for no club it serves the neighbour");
    assert_eq!(p.stats().unreachable, 2);
}

/// `from` subscribes to `p`'s upload side for `clubs`.
fn subscribe_to(p: &mut Peer, now: Time, from: SocketAddr, clubs: u64) {
    let hello = emit(&Message::Hello(Hello {
        versions: SUPPORTED_VERSIONS,
        nonce: 1,
        padded_len: HELLO_MIN_LEN as u16,
    }));
    p.handle_datagram(now, from, &hello);
    let cookie = sent(p)
        .iter()
        .filter(|(to, _)| *to == from)
        .find_map(|(_, d)| match Message::parse(d) {
            Ok(Message::Challenge(c)) => Some(c.cookie),
            _ => None,
        })
        .expect("a CHALLENGE");
    let subscribe = Message::Subscribe(Subscribe {
        stream: p.config.stream,
        clubs,
        start_seq: None,
        cookie,
        token: &[],
    });
    p.handle_datagram(now, from, &emit(&subscribe));
    assert!(sent_to(&sent(p), MessageType::Accept).contains(&from));
}
