//! Handshake, subscribe, keepalive and expiry, on real sockets.

mod support;

use std::time::{Duration, Instant};

use shoal_relay::io::BackendKind;
use support::*;

fn subscribe_keepalive_expire(backend: BackendKind) {
    let mut s = settings(backend, 2);
    s.keepalive = Duration::from_millis(200);
    s.subscriber_timeout = Duration::from_secs(1);
    let server = start(&s);
    let source = Source::new(vec![server.local_addr()], 1);
    let mut subs: Vec<Sub> = (0..2)
        .map(|i| Sub::new(i, server.local_addr(), source.stream))
        .collect();
    subscribe_all(&mut subs);
    assert!(
        subs.iter()
            .all(|s| s.others.contains(&shoal_proto::wire::MessageType::Accept))
    );

    // Subscriber 0 keeps alive; subscriber 1 falls silent and is expired.
    let mut last = Instant::now();
    let expired = drive(&mut subs, Duration::from_secs(5), |subs| {
        if last.elapsed() >= Duration::from_millis(200) {
            last = Instant::now();
            subs[0].keepalive();
        }
        subs[1].state == SubState::Left
    });
    assert!(expired, "a silent subscriber is told it expired");
    assert_eq!(
        subs[0].state,
        SubState::Subscribed,
        "keepalives keep a subscriber"
    );
    let snaps = metrics_until(&server, "one subscriber left", |m| {
        sum(m, |w| w.subscribers) == 1 && sum(m, |w| w.relay.expired) == 1
    });
    assert_eq!(sum(&snaps, |w| w.relay.accepted), 2);

    // Shutdown tells the remaining subscriber.
    let started = Instant::now();
    server.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shutdown within a second"
    );
    let told = drive(&mut subs, Duration::from_secs(2), |s| {
        s[0].state == SubState::Left
    });
    assert!(told, "a subscriber is told when the relay shuts down");
}

both_backends!(
    subscribe_keepalive_expire,
    super::subscribe_keepalive_expire
);
