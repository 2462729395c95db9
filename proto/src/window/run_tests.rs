//! Runs: a restarted publisher takes over, an old run never comes back,
//! and recorded data cannot be replayed as live (SPEC §8.1, §9.2).

use super::*;
use crate::integrity::{PublisherKey, Rejection};
use crate::publisher::{Publisher, PublisherConfig};
use crate::{WallClock, WallTime};

const SEED: [u8; 32] = [7; 32];

fn window() -> Window {
    let key = PublisherKey::from_seed(SEED);
    Window::new(
        StreamKey::new(key.stream_id()).expect("key"),
        WindowConfig::default(),
    )
}

/// A run of the publisher started at `start_ms`: every datagram it sends
/// in `ms` milliseconds, with the time it was sent.
fn run(start_ms: u64, ms: u64) -> Vec<(Time, Vec<u8>)> {
    run_on(start_ms, ms, WallClock::default())
}

/// [`run`] by a publisher whose wall clock is `clock`.
fn run_on(start_ms: u64, ms: u64, clock: WallClock) -> Vec<(Time, Vec<u8>)> {
    let key = PublisherKey::from_seed(SEED);
    let config = PublisherConfig {
        codec: crate::wire::Codec::Opaque,
        wall_clock: clock,
        ..PublisherConfig::default()
    };
    let relay = "127.0.0.1:7400".parse().expect("addr");
    let at = |ms: u64| Time::from_micros(ms * 1000);
    let mut p = Publisher::new(key, config, vec![relay], at(start_ms)).expect("publisher");
    let mut out = Vec::new();
    for step in start_ms..start_ms + ms {
        p.handle_input(at(step), &[step as u8; 500]);
        while let Some(tx) = p.poll_transmit() {
            out.push((at(step), tx.payload.to_vec()));
        }
    }
    out
}

/// Feeds `datagrams` at their own times, shifted by `late`; returns what
/// became ready and the rejections.
fn feed(
    w: &mut Window,
    datagrams: &[(Time, Vec<u8>)],
    late: Duration,
) -> (Vec<Ready>, Vec<Rejection>) {
    let (mut ready, mut refused) = (Vec::new(), Vec::new());
    for (at, d) in datagrams {
        if let Err(r) = w.ingest(*at + late, d) {
            refused.push(r);
        }
        while let Some(r) = w.poll_ready() {
            ready.push(r);
        }
    }
    (ready, refused)
}

fn data_seqs(ready: &[Ready]) -> Vec<u64> {
    ready
        .iter()
        .filter_map(|r| match r {
            Ready::Data { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

/// Found trying it as a user: a publisher restarted with the same key
/// began again at seq 0 and the window refused the new run as replayed
/// for as long as the old one's window lasted. Now the new run takes
/// over at its first DESCRIPTOR or MANIFEST, and the old one is shut out.
#[test]
fn a_restarted_publisher_takes_over_and_the_old_run_never_comes_back() {
    let first = run(1_000, 2_000);
    let second = run(3_500, 1_000);
    let mut w = window();
    let (ready, refused) = feed(&mut w, &first, Duration::ZERO);
    assert!(refused.is_empty(), "{refused:?}");
    let old_newest = w.newest_seq().expect("the first run played");
    assert_eq!(w.epoch(), Some(1_000_000));

    let (ready2, refused2) = feed(&mut w, &second, Duration::ZERO);
    assert!(refused2.is_empty(), "{refused2:?}");
    assert_eq!(w.epoch(), Some(3_500_000));
    assert_eq!(
        ready2.first(),
        Some(&Ready::Reset {
            epoch: 3_500_000,
            floor_seq: 3_500_000,
            previous: Some(old_newest),
        })
    );
    let seqs = data_seqs(&ready2);
    assert_eq!(seqs.first(), Some(&3_500_000), "the new run from its start");
    assert!(seqs.len() > 100 && seqs.iter().all(|&s| s > old_newest));
    assert!(data_seqs(&ready).iter().all(|&s| s < 3_500_000));

    // The old run, even fresh, is refused: its datagrams all come before
    // the new run's floor or carry an older epoch.
    let (_, refused3) = feed(&mut w, &first, Duration::from_millis(2_600));
    assert_eq!(refused3.len(), first.len());
    assert!(
        refused3.iter().all(|r| *r == Rejection::Replayed),
        "{refused3:?}"
    );
    assert_eq!(w.epoch(), Some(3_500_000));
}

/// Found by reading the code: a window with nothing yet (a relay that
/// has just started) took recorded data as live, pinned itself to the
/// past, and then refused the live stream as too far ahead. A recording
/// older than the freshness bound now starts nothing.
#[test]
fn a_recording_replayed_later_starts_nothing_and_the_live_stream_gets_in() {
    let recorded = run(1_000, 1_000);
    let mut w = window();
    let late = MAX_AGE + CLOCK_SKEW + Duration::from_secs(1);
    let (ready, refused) = feed(&mut w, &recorded, late);
    // Chunks wait for a manifest that is never taken: nothing verifies.
    assert!(
        ready
            .iter()
            .all(|r| matches!(r, Ready::AwaitingManifest { .. })),
        "{ready:?}"
    );
    assert!(refused.contains(&Rejection::Stale), "{refused:?}");
    assert_eq!(w.epoch(), None);
    // The live run, of the same publisher, later.
    let live_start = 1_000 + u64::try_from(late.as_millis()).expect("ms") + 500;
    let live = run(live_start, 500);
    let (ready, refused) = feed(&mut w, &live, Duration::ZERO);
    assert!(refused.is_empty(), "{refused:?}");
    assert!(data_seqs(&ready).len() > 50);
}

/// A recording fresh enough to be taken (the live run's own recent past)
/// pins the window only until the live run's next MANIFEST: a signed
/// block beyond the window moves it forward.
#[test]
fn a_window_pinned_in_the_past_follows_the_live_stream_at_its_next_block() {
    let stream = run(1_000, 20_000);
    let split = stream.len() / 20;
    let mut w = window();
    // The first second of the run, replayed 10 s late to a fresh window.
    let (_, refused) = feed(&mut w, &stream[..split], Duration::from_secs(10));
    assert!(refused.is_empty(), "{refused:?}");
    let pinned = w.newest_seq().expect("took the recording");
    // Then the live stream, 10 s on.
    let at = stream.len() / 2;
    let (ready, refused) = feed(&mut w, &stream[at..], Duration::ZERO);
    let reset = ready
        .iter()
        .position(|r| matches!(r, Ready::Reset { .. }))
        .expect("the window moved");
    // At most what came before the live run's first MANIFEST is lost.
    let before = refused
        .iter()
        .filter(|r| **r == Rejection::Replayed)
        .count();
    assert!(before <= 64, "{before} refused before the move");
    let live = data_seqs(&ready[reset..]);
    assert!(live.len() > 1000, "{}", live.len());
    assert!(live.iter().all(|&s| s > pinned + 2048));
    assert_eq!(w.stats().resets, 1);
}

/// Two publishers running at once under one key: the later-started run
/// wins and keeps winning, whatever order their datagrams interleave in.
#[test]
fn of_two_runs_at_once_the_later_started_one_wins() {
    let early = run(1_000, 3_000);
    let late = run(2_000, 2_000);
    let mut both: Vec<(Time, Vec<u8>)> = early.into_iter().chain(late).collect();
    both.sort_by_key(|(at, _)| *at);
    let mut w = window();
    let (ready, _) = feed(&mut w, &both, Duration::ZERO);
    assert_eq!(w.epoch(), Some(2_000_000));
    let resets = ready
        .iter()
        .filter(|r| matches!(r, Ready::Reset { .. }))
        .count();
    assert_eq!(resets, 1, "one move, no flapping");
    let after: Vec<u64> = data_seqs(
        &ready[ready
            .iter()
            .position(|r| matches!(r, Ready::Reset { .. }))
            .expect("reset")..],
    );
    assert!(after.len() > 100 && after.iter().all(|&s| s >= 2_000_000));
}

/// Freshness is judged on the wall clock, not on the monotonic one: two
/// hosts whose monotonic clocks are an hour apart but whose wall clocks
/// agree take each other's runs; a receiver that (wrongly) took its
/// monotonic time for wall time would refuse them as stale.
#[test]
fn freshness_is_judged_on_the_wall_clock() {
    let wall = WallTime::from_micros(1_800_000_000_000_000);
    let hour = Duration::from_secs(3600);
    // The publisher's monotonic clock reads 1 s when the wall reads `wall`.
    let sent = run_on(
        1_000,
        200,
        WallClock::new(Time::from_micros(1_000_000), wall),
    );
    // The receiver's reads an hour more at that moment.
    let mut w = window();
    w.set_wall_clock(WallClock::new(Time::from_micros(1_000_000) + hour, wall));
    let (ready, refused) = feed(&mut w, &sent, hour);
    assert!(refused.is_empty(), "refused {refused:?}");
    assert!(!data_seqs(&ready).is_empty());

    let mut wrong = window();
    let (ready, refused) = feed(&mut wrong, &sent, hour);
    assert!(data_seqs(&ready).is_empty());
    assert!(refused.contains(&Rejection::Stale), "refused {refused:?}");
}
