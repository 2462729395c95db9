//! A flood of forged MANIFESTs costs a bounded number of signature checks
//! and the real stream loses nothing (issue 15, item 3).

use super::*;
use crate::integrity::PublisherKey;
use crate::publisher::{Publisher, PublisherConfig};
use crate::wire::{HASH_LEN, Manifest, MessageType, SIGNATURE_LEN, peek_type};

/// 200 forged MANIFESTs for every real datagram, for the blocks around
/// the live one (the one in flight among them), each before the real one,
/// with random signatures: the window checks at most the guard's budget
/// of them and verifies every real chunk.
#[test]
fn forged_manifests_cost_a_bounded_number_of_checks_and_nothing_is_lost() {
    let key = PublisherKey::from_seed([4; 32]);
    let stream = key.stream_id();
    let mut w = Window::new(
        StreamKey::new(stream).expect("key"),
        WindowConfig::default(),
    );
    let config = PublisherConfig {
        codec: crate::wire::Codec::Opaque,
        ..PublisherConfig::default()
    };
    let relay = "127.0.0.1:7400".parse().expect("addr");
    let at = |ms: u64| Time::from_micros(1_000_000_000 + ms * 1000);
    let mut p = Publisher::new(key, config, vec![relay], at(0)).expect("publisher");
    let epoch = p.epoch();
    let hashes = [0x5au8; 20 * HASH_LEN];
    let mut rng = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut sent, mut verified, mut forged_sent) = (0u64, 0u64, 0u64);
    let seconds = 5;
    for ms in 0..seconds * 1000 {
        let now = at(ms);
        p.handle_input(now, &[ms as u8; 700]);
        while let Some(tx) = p.poll_transmit() {
            let real = tx.payload.to_vec();
            if peek_type(&real) == Ok(MessageType::Manifest) {
                // Forgeries for this block and its neighbours, first.
                let block = u64::from_be_bytes(real[40..48].try_into().expect("8"));
                for _ in 0..200 {
                    let b = block + next() % 4;
                    let mut signature = [0u8; SIGNATURE_LEN];
                    for c in signature.chunks_mut(8) {
                        c.copy_from_slice(&next().to_le_bytes());
                    }
                    // S < L: the top bits clear, so it gets as far as the
                    // curve arithmetic.
                    signature[63] &= 0x0f;
                    let man = Manifest {
                        k: 16,
                        m: 4,
                        symbol_len: 1330,
                        stream,
                        block: b,
                        first_seq: epoch + (b - epoch) * 16,
                        epoch,
                        timestamp_us: now.as_micros(),
                        hashes: &hashes,
                        signature,
                    };
                    let mut buf = vec![0; man.buffer_len()];
                    man.emit(&mut buf).expect("emit");
                    let _ = w.ingest(now, &buf);
                    forged_sent += 1;
                }
            }
            if peek_type(&real) == Ok(MessageType::Data) {
                sent += 1;
            }
            let _ = w.ingest(now, &real);
            while let Some(r) = w.poll_ready() {
                if matches!(r, Ready::Data { .. }) {
                    verified += 1;
                }
            }
        }
        w.handle_timeout(now);
    }
    let stats = w.stats();
    println!(
        "forged {forged_sent}, failed checks {}, throttled {}, chunks {sent} sent, {verified} verified",
        stats.failed_checks, stats.throttled
    );
    assert!(forged_sent > 10_000);
    assert_eq!(verified, sent, "every real chunk verified");
    assert!(
        stats.failed_checks <= FAILED_BURST + FAILED_PER_SEC * seconds,
        "{} failed checks in {seconds} s",
        stats.failed_checks
    );
    assert!(stats.throttled > forged_sent / 2);
}
