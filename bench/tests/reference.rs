//! `--baseline --reference multiudpsink`: after the relay run, GStreamer's
//! multiudpsink fans the stream out to the same 20 viewer sockets. Below
//! its limit it must deliver what it is fed to every viewer, and the
//! report's ratios must be the ones it names. Needs `gst-launch-1.0` with
//! gstreamer1.0-plugins-good (`.ci/run` installs them); without it the
//! test fails, saying so.

mod common;

use std::time::Duration;

use common::{num, run_bench};

/// The run takes about 12 s; anything past this is a hang.
const LIMIT: Duration = Duration::from_secs(90);

const VIEWERS: f64 = 20.0;

#[test]
fn multiudpsink_fans_the_stream_out_and_the_ratios_follow() {
    let (report, stdout) = run_bench(
        &[
            "--viewers",
            "20",
            "--bitrate",
            "2Mbit",
            "--duration",
            "1s",
            "--warmup",
            "1s",
            "--baseline",
            "--reference",
            "multiudpsink",
        ],
        LIMIT,
    );
    assert_eq!(
        report["reference_program"].as_str(),
        Some("multiudpsink"),
        "{stdout}"
    );
    // 2 Mbit/s of 1316-byte chunks with parity: about 240 datagrams/s.
    let fed = num(&report, &["reference_fed_pps"]);
    assert!((150.0..400.0).contains(&fed), "fed {fed} pps:\n{stdout}");
    // 20 viewers x ~240/s is far below any fan-out's limit: all of it
    // arrives, and nothing that was not fed.
    let got = num(&report, &["reference_pps"]);
    assert!(
        got >= 0.9 * fed * VIEWERS && got <= 1.1 * fed * VIEWERS,
        "multiudpsink delivered {got} pps of {fed} x {VIEWERS}:\n{stdout}"
    );
    let delivered = num(&report, &["delivered_pps"]);
    let over = num(&report, &["shoal_over_reference"]);
    assert!((over - delivered / got).abs() < 1e-9, "{stdout}");
    let mmsg = num(&report, &["baseline_sendmmsg_pps"]);
    let best_gso =
        num(&report, &["baseline_gso_pps"]).max(num(&report, &["baseline_uring_gso_pps"]));
    let advantage = num(&report, &["gso_advantage"]);
    assert!(
        (advantage - best_gso / mmsg).abs() < 1e-9 && advantage > 1.0,
        "GSO advantage {advantage}:\n{stdout}"
    );
    let kept = num(&report, &["advantage_kept"]);
    assert!((kept - over / advantage).abs() < 1e-9, "{stdout}");
    // 20 viewers x (16 + 4) datagrams at the best bare loop's rate.
    let bound = num(&report, &["serialization_bound_us"]);
    let expected = VIEWERS * 20.0 / num(&report, &["baseline_pps"]) * 1e6;
    assert!(
        (bound - expected).abs() <= 1.0,
        "bound {bound} us, expected {expected}"
    );
    assert!(stdout.contains("reference      multiudpsink"), "{stdout}");
}
