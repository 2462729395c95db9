//! No allocation per forwarded chunk in steady state: a counting global
//! allocator counts what relay worker threads allocate while a stream is
//! fanned out to subscribers, on both backends.
//!
//! Workers publish their counters for the metrics endpoint four times a
//! second; that snapshot (a histogram copy) is periodic, not per chunk, and
//! is left out of the count (the worker marks it).

mod support;

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shoal_relay::io::BackendKind;
use shoal_relay::server::worker::IN_WORKER;
use support::*;

struct Counting;

static WORKER_ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed straight to mimalloc, which upholds the
// GlobalAlloc contract; counting has no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if IN_WORKER.with(|w| w.get()) {
            WORKER_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if IN_WORKER.with(|w| w.get()) {
            WORKER_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn forwarded(server: &shoal_relay::server::Server, at_least: u64) -> u64 {
    let snaps = metrics_until(server, "forwarded counted", |m| {
        sum(m, |w| w.relay.forwarded) >= at_least
    });
    sum(&snaps, |w| w.relay.forwarded)
}

/// The counter is global: the two backends' runs take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn no_allocation_per_chunk(backend: BackendKind) {
    let _turn = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // A small window (512 chunks, 128 block slots), so that warming up
    // touches every slot.
    let mut s = settings(backend, 2);
    s.window_chunks = 512;
    let server = start(&s);
    let mut source = Source::new(vec![server.local_addr()], 7);
    let mut subs: Vec<Sub> = (0..50)
        .map(|i| Sub::new(i, server.local_addr(), source.stream))
        .collect();
    subscribe_all(&mut subs);
    let run = |subs: &mut [Sub], source: &mut Source, blocks: usize| {
        let target = source.next_seq() + blocks as u64 * 16;
        let mut sent = 0;
        let mut last = Instant::now();
        let ok = drive(subs, Duration::from_secs(60), |subs| {
            if sent < blocks && last.elapsed() >= Duration::from_millis(10) {
                last = Instant::now();
                source.block();
                sent += 1;
            }
            source.pump();
            sent == blocks && subs.iter().all(|s| s.seqs.last() == Some(&(target - 1)))
        });
        assert!(ok, "subscribers kept up");
    };
    // Warm up past a whole window, so every slot, queue and pool has
    // reached its size.
    run(&mut subs, &mut source, 140);
    let before_fwd = forwarded(&server, 0);
    let before = WORKER_ALLOCS.load(Ordering::Relaxed);
    run(&mut subs, &mut source, 160);
    let after = WORKER_ALLOCS.load(Ordering::Relaxed);
    let fwd = forwarded(&server, before_fwd + 160 * 16 * 50) - before_fwd;
    let allocs = after - before;
    println!("{backend:?}: {allocs} allocations in workers for {fwd} datagrams forwarded");
    assert!(fwd >= 160 * 16 * 50);
    assert!(
        allocs * 10_000 < fwd,
        "{allocs} allocations for {fwd} forwarded datagrams: the data plane allocates per chunk"
    );
    server.shutdown();
}

both_backends!(no_allocation_per_chunk, super::no_allocation_per_chunk);
