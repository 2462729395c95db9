//! 1000 subscribers on real sockets receive every chunk of a stream, in
//! order.

mod support;

use std::time::{Duration, Instant};

use shoal_relay::io::BackendKind;
use support::*;

const SUBSCRIBERS: usize = 1000;
const BLOCKS: usize = 12;

fn thousand_subscribers(backend: BackendKind) {
    let server = start(&settings(backend, 2));
    let mut source = Source::new(vec![server.local_addr()], 2);
    let mut subs: Vec<Sub> = (0..SUBSCRIBERS)
        .map(|i| Sub::new(i, server.local_addr(), source.stream))
        .collect();
    subscribe_all(&mut subs);
    // The stream was not live yet: everyone starts at its first chunk.
    assert!(subs.iter().all(|s| s.start_seq == Some(0)));

    let mut blocks = 0;
    let mut last = Instant::now();
    let total = BLOCKS as u64 * 16;
    let done = drive(&mut subs, Duration::from_secs(30), |subs| {
        // A block every 100 ms: about 220k datagrams a second out of
        // the relay, inside what this test's one reading thread keeps
        // up with.
        if blocks < BLOCKS && last.elapsed() >= Duration::from_millis(100) {
            last = Instant::now();
            source.block();
            blocks += 1;
        }
        source.pump();
        blocks == BLOCKS && subs.iter().all(|s| s.seqs.len() as u64 >= total)
    });
    // Sequence numbers start at the run's epoch (SPEC §4.2).
    let first = source.publisher.epoch();
    let complete = subs
        .iter()
        .filter(|s| s.got_in_order(first, first + total))
        .count();
    assert!(
        done && complete == SUBSCRIBERS,
        "{complete}/{SUBSCRIBERS} subscribers got all {total} chunks in order"
    );
    let snaps = metrics_until(&server, "counters published", |m| {
        sum(m, |w| w.relay.forwarded) >= total * SUBSCRIBERS as u64
    });
    assert_eq!(sum(&snaps, |w| w.relay.dropped()), 0);
    server.shutdown();
}

both_backends!(thousand_subscribers, super::thousand_subscribers);
