//! `shoal relay --publisher ID` as an operator runs it: the listed stream
//! is served while twenty throwaway keys, each sending valid signed
//! DESCRIPTORs and data, are refused and counted; a bad id is one line
//! naming the flag.

mod support;

use std::time::{Duration, Instant};

use shoal_proto::wire::MessageType;
use support::cli::*;
use support::*;

/// The value of `drops_total{reason="REASON"}` (the sum over workers).
fn drops(text: &str, reason: &str) -> u64 {
    let series = format!("shoal_relay_drops_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn only_the_listed_publisher_is_carried() {
    let dir = TempDir::create("admission-cli");
    let listed = stream_id(1);
    let mut relay = Proc::spawn(
        "relay",
        &mut relay_on_loopback("2", &["--publisher", &listed]),
        &dir,
    );
    let addr = relay.logged_addr("addr", Duration::from_secs(5));
    let metrics = relay.logged_addr("metrics", Duration::from_secs(5));

    let mut source = Source::new(vec![addr], 1);
    assert_eq!(source.stream.to_string(), listed);
    let mut junk: Vec<Source> = (100..120)
        .map(|seed| Source::new(vec![addr], seed))
        .collect();
    let mut subs = vec![
        Sub::new(0, addr, source.stream),
        Sub::new(1, addr, junk[0].stream),
    ];
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut next_block = Instant::now();
    let mut text = String::new();
    let done = loop {
        if Instant::now() >= next_block {
            source.block();
            for j in &mut junk {
                j.block();
            }
            next_block = Instant::now() + Duration::from_millis(20);
        }
        let served = drive(&mut subs, Duration::from_millis(20), |s| {
            s[0].seqs.len() >= 128
        });
        if served {
            text = scrape(metrics);
            if drops(&text, "not_allowed") >= 20 {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    assert!(
        done,
        "listed stream: {} chunks; not_allowed: {}\n{}",
        subs[0].seqs.len(),
        drops(&text, "not_allowed"),
        relay.stderr()
    );
    // Only the listed stream is carried: at most once per worker.
    let streams = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("shoal_relay_streams ")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .expect("the streams gauge");
    assert!((1.0..=2.0).contains(&streams), "{streams} streams carried");
    // The throwaway stream's subscriber was refused, never accepted.
    assert!(
        subs[1].others.contains(&MessageType::Reject),
        "{:?}",
        subs[1].others
    );
    assert!(!subs[1].others.contains(&MessageType::Accept));
    assert!(subs[1].seqs.is_empty());
    assert!(!relay.stderr().contains("panicked"));
}

#[test]
fn a_bad_publisher_id_names_the_flag() {
    let (status, err, _) = run(
        &[
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "off",
            "--publisher",
            "not-a-key",
        ],
        Duration::from_secs(5),
    );
    assert!(!status.success());
    assert_one_line(
        &err,
        r#"--publisher "not-a-key": not a stream id (52 base32 characters, as printed by shoal keygen)"#,
    );
}
