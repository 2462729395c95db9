//! Issue 7, flood: while 500 viewers are served, another process sends
//! 200,000 malformed, random, truncated, oversized and forged datagrams a
//! second at the relay for 10 s: the viewers lose nothing, their one-way
//! p99 stays under 5 ms, and the relay counts the drops by reason.
//!
//! Three runs of the built `shoal-bench`: a 4 s reference without the
//! flood, 10 s with `--flood 200000` (the flooder is `shoal-bench flood`, a
//! second process), and the reference again. The stream is 500 kbit/s in
//! blocks of one chunk (`--fec 1,0`): a block reaches every subscriber in one send, the
//! shortest fan-out there is (see BENCHMARKS.md: the latency is the block
//! fan-out, N × datagrams per block). The latency bound is 5 ms, or twice
//! the reference's p99 when the machine cannot give 1000 viewers 5 ms
//! even without a flood (a shared CI host under load), so that what the
//! test judges is what the flood costs; of the two references, the
//! slower (the host's speed drifts by 30-45% for minutes at a time: in
//! one CI run a single reference before the flood gave 10.5 ms and the
//! flood 21.7 ms, 2.07 times). On the 2-core VM, in one of its slow
//! phases, 500 viewers gave a reference of 7.4–8.9 ms and the flood's p99
//! 8.3–9.9 ms. The flood's own sends land on the generator's core, beside
//! the viewers.
//!
//! The drops are checked per reason: each reason gets at most what the
//! flood sent of the kinds that belong there, and at least that minus
//! what the kernel dropped at the relay's full socket buffer
//! (/proc/net/udp), which cannot be told apart by kind. Every flood
//! datagram must be a drop, a kernel drop, or a HELLO the relay answered.
//!
//! Every criterion is checked and the failures are reported together.

mod common;

use std::time::Duration;

use common::{num, run_bench};

/// 500, not 1000 as until issue 15: with 1000 the debug relay ran at
/// 80-90% of a core under the flood, and in the host's slow phases (the
/// reference p99 10-17 ms instead of 3.7 ms) the flood's p99 went past
/// twice the reference on the base commit too. At 500 it runs at 55%.
const VIEWERS: &str = "500";
const RATE: f64 = 200_000.0;
/// The latency bound, microseconds.
const P99_LIMIT_US: f64 = 5_000.0;
/// Each run is well under 30 s; past this it hangs.
const LIMIT: Duration = Duration::from_secs(60);

const STREAM: [&str; 12] = [
    "--viewers",
    VIEWERS,
    "--bitrate",
    "500kbit",
    "--fec",
    "1,0",
    "--backend",
    "mmsg",
    "--workers",
    "1",
    "--warmup",
    "1s",
];

#[test]
fn a_flood_costs_the_viewers_nothing_and_is_counted_by_reason() {
    let reference = || run_bench(&[&STREAM[..], &["--duration", "4s"]].concat(), LIMIT).0;
    let before = reference();
    let (report, table) = run_bench(
        &[&STREAM[..], &["--duration", "10s", "--flood", "200000"]].concat(),
        LIMIT,
    );
    let after = reference();
    let mut failures = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failures.push(what);
        }
    };

    let flood = &report["flood"];
    let sent = num(flood, &["flooder", "sent"]);
    let achieved = num(flood, &["flooder", "achieved_pps"]);
    check(
        achieved >= 0.9 * RATE,
        format!("the flooder reached {achieved:.0}/s of {RATE}/s"),
    );

    // The viewers.
    let expected = num(&report, &["chunks_expected"]);
    let delivered = num(&report, &["chunks_delivered"]);
    check(expected > 0.0, "no chunk was expected".to_owned());
    check(
        delivered == expected,
        format!(
            "the viewers lost {} of {expected} chunks under the flood",
            expected - delivered
        ),
    );
    // The host's speed drifts for minutes at a time: the flood is judged
    // against the slower of the references on either side of it.
    let p99_ref = num(&before, &["latency_us", "p99"]).max(num(&after, &["latency_us", "p99"]));
    let p99 = num(&report, &["latency_us", "p99"]);
    let bound = P99_LIMIT_US.max(2.0 * p99_ref);
    check(
        p99 > 0.0 && p99 <= bound,
        format!(
            "one-way p99 {p99} us under the flood; bound {bound} us (5 ms, or twice the \
             {p99_ref} us without it)"
        ),
    );

    // The drops, by reason.
    let socket_drops = num(flood, &["relay_socket_drops"]);
    let reasons = &flood["by_reason"];
    for reason in [
        "malformed",
        "truncated",
        "unproven",
        "wrong_stream",
        "rate_limited",
        "bad_cookie",
        "not_subscribed",
    ] {
        check(
            num(reasons, &[reason, "counted"]) > 0.0,
            format!("no {reason} drop was counted"),
        );
    }
    // Kinds that can land in one reason only.
    let hellos_answered = num(flood, &["hellos_answered"]);
    for (reason, extra) in [
        ("malformed", 0.0),
        ("truncated", 0.0),
        ("bad_cookie", 0.0),
        ("not_subscribed", 0.0),
        ("rate_limited", hellos_answered),
    ] {
        let flooded = num(reasons, &[reason, "flooded"]);
        let counted = num(reasons, &[reason, "counted"]) + extra;
        // A CHALLENGE the relay sent as the flooder stopped reading is
        // neither a drop nor an answer it saw: allow those few.
        let in_flight = if reason == "rate_limited" {
            (flooded * 1e-4).max(2.0)
        } else {
            0.0
        };
        check(
            counted <= flooded && counted >= flooded - socket_drops - in_flight,
            format!(
                "{reason}: {counted} counted of {flooded} flooded ({socket_drops} kernel drops)"
            ),
        );
    }
    let accounted = num(flood, &["accounted"]);
    check(
        accounted >= 0.99 * sent && accounted <= 1.005 * sent,
        format!(
            "relay drops + duplicates + kernel drops + answered HELLOs = {accounted} of {sent} \
             sent ({:.2}%)",
            100.0 * accounted / sent.max(1.0)
        ),
    );

    eprintln!("without the flood: one-way p99 {p99_ref} us\n{table}");
    assert!(
        failures.is_empty(),
        "the flood criteria failed:\n  - {}\n\n{table}",
        failures.join("\n  - ")
    );
}
