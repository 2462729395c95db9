//! A spoofed address gets no stream data, and never more bytes than were
//! sent in its name.

use std::net::SocketAddr;
use std::time::Duration;

use shoal_proto::wire::{
    Cookie, HELLO_MIN_LEN, Hello, Keepalive, Message, Nack, NackEntry, NackKind,
    SUPPORTED_VERSIONS, Subscribe,
};
use shoal_tests::harness::{Star, StarConfig, addr, encode};

#[test]
fn spoofed_victim_gets_no_stream_data_and_no_amplification() {
    let mut star = Star::new(&StarConfig {
        viewers: 3,
        seconds: 2.0,
        ..StarConfig::default()
    });
    let victim: SocketAddr = addr(9999);
    let stream = star.stream_id;
    let hello = encode(&Message::Hello(Hello {
        versions: SUPPORTED_VERSIONS,
        nonce: 1,
        padded_len: HELLO_MIN_LEN as u16,
    }));
    // A guessed cookie, and no token.
    let subscribe = encode(&Message::Subscribe(Subscribe {
        stream,
        clubs: u64::MAX,
        start_seq: None,
        cookie: Cookie {
            issued_at_us: star.net.now().as_micros(),
            tag: [7; 16],
        },
        token: &[],
    }));
    let keepalive = encode(&Message::Keepalive(Keepalive::empty(stream, 1)));
    let mut nack = Nack::new(stream, 1);
    nack.push(NackEntry {
        kind: NackKind::Chunks,
        start: 0,
        len: 100,
    });
    let nack = encode(&Message::Nack(nack));
    let mut injected = 0usize;
    let mut count = 0usize;
    for i in 0..200u64 {
        let at = star.net.now() + Duration::from_millis(10 * i);
        for d in [&hello, &subscribe, &keepalive, &nack] {
            star.net.inject(at, victim, addr(1), d.clone());
            injected += d.len();
            count += 1;
        }
    }
    star.run(Duration::from_secs(1));

    let to_victim = star.net.addr_stats(victim);
    println!(
        "spoofed: {count} datagrams / {injected} bytes in the victim's name; relay sent it {} datagrams / {} bytes",
        to_victim.sent_datagrams, to_victim.sent_bytes
    );
    assert!(to_victim.sent_bytes <= injected as u64, "amplification");
    assert!(to_victim.sent_datagrams <= count as u64);
    // CHALLENGE and REJECT are at most 40 bytes; any stream datagram is larger.
    assert!(
        to_victim.sent_bytes <= 40 * to_victim.sent_datagrams,
        "stream data reached the victim"
    );
    let relay = star.net.node(star.relay).relay.stats();
    assert_eq!(
        relay.accepted, 3,
        "only the real viewers subscribed: {relay:?}"
    );
    assert!(relay.drop_bad_cookie >= 200);
    for &v in &star.viewers {
        assert!(star.net.node(v).output == star.stream.bytes);
    }
}
