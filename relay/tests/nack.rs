//! A NACK is answered from the relay's window.

mod support;

use std::time::Duration;

use shoal_relay::io::BackendKind;
use support::*;

fn nack_served_from_window(backend: BackendKind) {
    let server = start(&settings(backend, 2));
    let mut source = Source::new(vec![server.local_addr()], 3);
    let mut subs = vec![Sub::new(0, server.local_addr(), source.stream)];
    subs[0].keep = true;
    subscribe_all(&mut subs);
    for _ in 0..4 {
        source.block();
    }
    let all = drive(&mut subs, Duration::from_secs(10), |s| {
        s[0].seqs.len() >= 64
    });
    assert!(all, "the subscriber got the stream");
    let original = subs[0].data.clone();

    // Ask again for chunks 10..30, as a viewer that lost them would.
    subs[0].seqs.clear();
    subs[0].data.clear();
    // Sequence numbers start at the run's epoch (SPEC §4.2).
    let first = source.publisher.epoch();
    subs[0].nack(first + 10, 20);
    let resent = drive(&mut subs, Duration::from_secs(10), |s| {
        s[0].seqs.len() >= 20
    });
    assert!(resent, "the NACK was answered");
    assert_eq!(subs[0].seqs, (first + 10..first + 30).collect::<Vec<_>>());
    for seq in first + 10..first + 30 {
        assert_eq!(
            subs[0].data[&seq], original[&seq],
            "chunk {seq} resent exactly"
        );
    }
    let snaps = metrics_until(&server, "nack counted", |m| {
        sum(m, |w| w.relay.nack_served) >= 20
    });
    assert_eq!(sum(&snaps, |w| w.relay.nack_served), 20);
    server.shutdown();
}

both_backends!(nack_served_from_window, super::nack_served_from_window);
