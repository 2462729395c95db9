//! Forged and corrupted chunks injected between publisher and relay never
//! reach a viewer; FEC fills the holes they leave.

use std::time::Duration;

use shoal_proto::integrity::PublisherKey;
use shoal_proto::wire::{DATA_HEADER_LEN, Manifest, MessageType};
use shoal_tests::harness::{Star, StarConfig, addr};

#[test]
fn forged_and_corrupted_chunks_never_reach_a_viewer() {
    let mut star = Star::new(&StarConfig {
        seed: 3,
        viewers: 20,
        seconds: 2.0,
        ..StarConfig::default()
    });
    // Corrupt the payload of every 11th DATA chunk on the ingest link.
    let mut n = 0u32;
    star.net
        .set_tap(addr(0), addr(1), move |bytes: &mut Vec<u8>| {
            if bytes.get(1) == Some(&(MessageType::Data as u8)) && bytes.len() > DATA_HEADER_LEN {
                n += 1;
                if n.is_multiple_of(11) {
                    let last = bytes.len() - 1;
                    bytes[last] ^= 0xff;
                }
            }
            true
        });
    // Manifests for the real stream, signed by someone else.
    let forger = PublisherKey::from_seed([9; 32]);
    let hashes = [0x5a; 20 * 16];
    // The publisher's run: its blocks and sequence numbers start here.
    let epoch = star.net.node(star.publisher).publisher.epoch();
    for block in 0..20u64 {
        let forged = Manifest {
            k: 16,
            m: 4,
            symbol_len: 1328,
            stream: star.stream_id,
            block: epoch + block,
            first_seq: epoch + block * 16,
            epoch,
            timestamp_us: epoch,
            hashes: &hashes,
            signature: [0; 64],
        };
        let mut buf = vec![0; forged.buffer_len()];
        forged.emit(&mut buf).expect("fits");
        forger.sign_trailer(&mut buf);
        let at = star.net.now() + Duration::from_millis(290 + block * 50);
        star.net.inject(at, addr(0), addr(1), buf);
    }
    star.run(Duration::from_secs(1));

    let relay = star.net.node(star.relay).relay.stats();
    println!(
        "relay drops: corrupted {}, forged {}",
        relay.drop_corrupted, relay.drop_forged
    );
    assert!(
        relay.drop_corrupted > 0,
        "corruption was not detected: {relay:?}"
    );
    assert!(
        relay.drop_forged > 0,
        "forged manifests were not detected: {relay:?}"
    );
    for &v in &star.viewers {
        let node = star.net.node(v);
        let stats = node.viewer.stats();
        assert_eq!(
            stats.rejected_integrity, 0,
            "a forged datagram reached a viewer"
        );
        assert!(
            node.output == star.stream.bytes,
            "viewer output differs: {stats:?}"
        );
    }
}
