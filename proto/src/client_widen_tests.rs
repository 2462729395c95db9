//! Widening a subscription in force ([`ClientSession::widen`]): the server
//! is asked for more clubs by a new handshake while the old subscription
//! goes on, and a refusal, or no answer, leaves it as it was.

use super::*;
use crate::testutil::{handshake_answers, t};
use crate::wire::{Leave, LeaveReason, MessageType, Reject};

const STREAM: StreamId = StreamId([9; 32]);
const CLUB_1: u64 = 1 << 1;
const CLUB_5: u64 = 1 << 5;

fn sent(tx: &mut TxQueue) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| tx.pop().map(|t| t.payload.to_vec())).collect()
}

/// The clubs of the SUBSCRIBE among `datagrams`.
fn subscribed_clubs(datagrams: &[Vec<u8>]) -> Option<u64> {
    datagrams.iter().find_map(|d| match Message::parse(d) {
        Ok(Message::Subscribe(s)) => Some(s.clubs),
        _ => None,
    })
}

/// A session subscribed to club 1 at `t(0)`.
fn serving_club_1(tx: &mut TxQueue) -> ClientSession {
    let server = "127.0.0.1:7400".parse().expect("addr");
    let mut s = ClientSession::new(server, STREAM, CLUB_1, Vec::new(), 1);
    s.start(t(0), tx);
    for answer in handshake_answers(STREAM, s.nonce, 0) {
        s.handle(t(0), &answer, None, tx);
    }
    assert_eq!(s.state(), SessionState::Subscribed);
    assert_eq!(s.accepted_clubs(), CLUB_1);
    sent(tx);
    s
}

/// Starts widening to club 5 at `t(10)` and answers the HELLO with its
/// CHALLENGE: the SUBSCRIBE asks for both clubs.
fn widen_to_club_5(s: &mut ClientSession, tx: &mut TxQueue) -> Message<'static> {
    s.widen(t(10), CLUB_5, tx);
    let hello = sent(tx);
    assert_eq!(
        hello.iter().map(|d| peek_type_of(d)).collect::<Vec<_>>(),
        [MessageType::Hello]
    );
    let [challenge, accept] = handshake_answers(STREAM, s.nonce, 0);
    s.handle(t(11), &challenge, Some(7), tx);
    assert_eq!(subscribed_clubs(&sent(tx)), Some(CLUB_1 | CLUB_5));
    accept
}

fn peek_type_of(d: &[u8]) -> MessageType {
    crate::wire::peek_type(d).expect("a datagram")
}

#[test]
fn a_widened_subscription_serves_the_old_clubs_until_the_new_are_accepted() {
    let mut tx = TxQueue::default();
    let mut s = serving_club_1(&mut tx);
    let accept = widen_to_club_5(&mut s, &mut tx);
    assert!(s.serving(), "the subscription in force goes on");
    assert_eq!(s.accepted_clubs(), CLUB_1);
    assert_eq!(
        s.handle(t(12), &accept, Some(7), &mut tx),
        Some(SessionEvent::Accepted { start_seq: 0 })
    );
    assert_eq!(s.state(), SessionState::Subscribed);
    assert_eq!(s.accepted_clubs(), CLUB_1 | CLUB_5);
}

#[test]
fn a_refused_widening_keeps_the_subscription_in_force() {
    let mut tx = TxQueue::default();
    let mut s = serving_club_1(&mut tx);
    widen_to_club_5(&mut s, &mut tx);
    let full = Message::Reject(Reject {
        reason: RejectReason::Full,
        versions: SUPPORTED_VERSIONS,
        stream: STREAM,
    });
    assert_eq!(
        s.handle(t(12), &full, Some(7), &mut tx),
        Some(SessionEvent::WidenRefused(RejectReason::Full))
    );
    assert_eq!(s.state(), SessionState::Subscribed);
    assert_eq!(s.accepted_clubs(), CLUB_1);
    // Its KEEPALIVEs go on; a later handshake asks for club 1 only.
    assert_eq!(s.poll_timeout(), Some(t(12) + Duration::from_secs(1)));
    s.start(t(2000), &mut tx);
    let [challenge, _] = handshake_answers(STREAM, s.nonce, 0);
    s.handle(t(2001), &challenge, None, &mut tx);
    assert_eq!(subscribed_clubs(&sent(&mut tx)), Some(CLUB_1));
}

#[test]
fn an_unanswered_widening_is_given_up_after_a_second() {
    let mut tx = TxQueue::default();
    let mut s = serving_club_1(&mut tx);
    widen_to_club_5(&mut s, &mut tx);
    let report = crate::testutil::keepalive(STREAM, 0);
    let give_up = t(10) + WIDEN_GIVE_UP;
    let mut now = t(11);
    // SUBSCRIBE retransmitted, never answered.
    while let Some(at) = s.poll_timeout().filter(|&at| at <= give_up) {
        now = at;
        s.handle_timeout(now, Some(7), report, &mut tx);
    }
    assert_eq!(now, give_up, "the give-up is a timer of its own");
    assert_eq!(s.state(), SessionState::Subscribed);
    assert!(!s.widening);
    assert_eq!(s.accepted_clubs(), CLUB_1);
}

#[test]
fn a_session_not_yet_subscribed_takes_the_clubs_in_its_next_subscribe() {
    let server = "127.0.0.1:7400".parse().expect("addr");
    let mut tx = TxQueue::default();
    let mut s = ClientSession::new(server, STREAM, CLUB_1, Vec::new(), 1);
    s.start(t(0), &mut tx);
    sent(&mut tx);
    s.widen(t(1), CLUB_5, &mut tx);
    assert!(sent(&mut tx).is_empty(), "no second handshake");
    assert!(!s.serving());
    let [challenge, _] = handshake_answers(STREAM, s.nonce, 0);
    s.handle(t(2), &challenge, None, &mut tx);
    assert_eq!(subscribed_clubs(&sent(&mut tx)), Some(CLUB_1 | CLUB_5));
}

#[test]
fn a_session_closed_or_left_while_widening_is_no_longer_served() {
    let mut tx = TxQueue::default();
    let mut s = serving_club_1(&mut tx);
    s.widen(t(10), CLUB_5, &mut tx);
    sent(&mut tx);
    // Closed while widening: the server still holds the subscription in
    // force, so it is told.
    s.close(&mut tx);
    assert_eq!(
        sent(&mut tx)
            .iter()
            .map(|d| peek_type_of(d))
            .collect::<Vec<_>>(),
        [MessageType::Leave]
    );
    assert!(!s.serving());
    assert_eq!(s.accepted_clubs(), 0);
    // The server leaving while widening ends what it served.
    let mut s = serving_club_1(&mut tx);
    s.widen(t(10), CLUB_5, &mut tx);
    let leave = Message::Leave(Leave {
        reason: LeaveReason::ShuttingDown,
        stream: STREAM,
        session: crate::testutil::SESSION,
    });
    assert_eq!(
        s.handle(t(11), &leave, None, &mut tx),
        Some(SessionEvent::ServerLeft(LeaveReason::ShuttingDown))
    );
    assert!(!s.serving());
}
