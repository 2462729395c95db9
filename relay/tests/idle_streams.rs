//! A stream that stops is removed from every worker of a multi-worker relay
//! (owner and mirrors), its subscribers told, and the same stream can come
//! back and be served again.

mod support;

use std::time::Duration;

use shoal_relay::io::BackendKind;
use support::*;

fn an_idle_stream_leaves_every_worker_and_may_come_back(backend: BackendKind) {
    let mut settings = settings(backend, 2);
    settings.stream_idle_timeout = Duration::from_millis(400);
    let server = start(&settings);
    let relay = server.local_addr();
    let mut source = Source::new(vec![relay], 7);
    // Subscribers on both workers (the kernel's hash spreads them).
    let mut subs: Vec<Sub> = (0..8).map(|i| Sub::new(i, relay, source.stream)).collect();
    subscribe_all(&mut subs);
    let mut blocks = 0;
    let flowing = drive(&mut subs, Duration::from_secs(5), |s| {
        if blocks < 8 {
            source.block();
            blocks += 1;
        }
        s.iter().all(|s| s.seqs.len() >= 64)
    });
    assert!(flowing, "every subscriber got the stream");
    let snaps = metrics_until(&server, "mirrored in both workers", |m| {
        m.len() == 2 && m.iter().all(|w| w.streams == 1)
    });
    assert_eq!(snaps.len(), 2);

    // The source stops: within the idle timeout (and a sweep), every
    // subscriber is told and every worker lets the stream go.
    let told = drive(&mut subs, Duration::from_secs(5), |s| {
        s.iter().all(|s| s.state == SubState::Left)
    });
    assert!(told, "every subscriber was told the stream went");
    let snaps = metrics_until(&server, "removed from both workers", |m| {
        m.len() == 2 && m.iter().all(|w| w.streams == 0)
    });
    assert!(sum(&snaps, |w| w.relay.streams_removed) >= 1);

    // The same stream comes back from another socket and is served again.
    let mut again = Source::new(vec![relay], 7);
    let mut late = vec![Sub::new(20, relay, again.stream)];
    let mut blocks = 0;
    let served = drive(&mut late, Duration::from_secs(5), |s| {
        if blocks < 16 {
            again.block();
            blocks += 1;
        }
        s[0].state == SubState::Subscribed && s[0].seqs.len() >= 64
    });
    assert!(
        served,
        "the stream came back: {} chunks",
        late[0].seqs.len()
    );
    server.shutdown();
}

both_backends!(
    an_idle_stream_leaves_every_worker_and_may_come_back,
    super::an_idle_stream_leaves_every_worker_and_may_come_back
);
