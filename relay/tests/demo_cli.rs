//! `shoal demo` end to end: the binary runs a relay, a publisher and
//! viewers on loopback, ends by itself and reports what the viewers got.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn demo(args: &[&str], limit: Duration) -> Output {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .arg("demo")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("shoal runs");
    assert!(
        started.elapsed() < limit,
        "shoal demo {args:?} took {:?}",
        started.elapsed()
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The value after `label` in a summary line such as `  lost   0`.
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
}

fn repaired(text: &str) -> u64 {
    field(text, "repaired")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no repaired count in:\n{text}"))
}

#[test]
fn twenty_viewers_all_exact() {
    let out = demo(
        &["--viewers", "20", "--duration", "3s"],
        Duration::from_secs(20),
    );
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("synthetic MPEG-TS test pattern (not decodable video)"),
        "{text}"
    );
    assert!(text.contains("viewers 20/20 subscribed"), "{text}");
    assert_eq!(field(&text, "exact viewers"), "20/20", "{text}");
    assert_eq!(field(&text, "lost"), "0", "{text}");
}

#[test]
fn five_percent_loss_is_repaired() {
    let out = demo(
        &["--viewers", "10", "--duration", "3s", "--loss", "5"],
        Duration::from_secs(20),
    );
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(repaired(&text) > 0, "{text}");
    assert_eq!(field(&text, "lost"), "0", "{text}");
    assert_eq!(field(&text, "exact viewers"), "10/10", "{text}");
}

/// 2000 viewers need about ten cores on any machine measured so far
/// (BENCHMARKS.md, "FEC codecs"): far more than a 2-core machine has.
#[test]
fn a_load_beyond_the_machine_is_warned_before_it_starts() {
    let out = demo(
        &["--viewers", "2000", "--duration", "100ms"],
        Duration::from_secs(60),
    );
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    let warning = text
        .find("shoal demo: warning: 2000 viewers at 0% loss need about")
        .unwrap_or_else(|| panic!("no warning in:\n{text}"));
    let started = text
        .find("shoal demo: relay on")
        .unwrap_or_else(|| panic!("no start in:\n{text}"));
    assert!(warning < started, "{text}");
    assert!(text.contains("try"), "{text}");
}

#[test]
fn bad_flags_name_the_flag_and_the_fix() {
    for (args, flag) in [
        (&["--viewers", "0"][..], "--viewers"),
        (&["--viewers", "many"][..], "--viewers"),
        (&["--duration", "5"][..], "--duration"),
        (&["--duration", "0s"][..], "--duration"),
        (&["--loss", "80"][..], "--loss"),
        (&["--loss", "x"][..], "--loss"),
        (&["--backend", "carrier-pigeon"][..], "--backend"),
    ] {
        let out = demo(args, Duration::from_secs(10));
        let text = stderr(&out);
        assert!(!out.status.success(), "{args:?}: {text}");
        assert!(text.contains(flag), "{args:?}: {text}");
        if flag != "--backend" {
            assert!(text.contains("try"), "{args:?}: {text}");
        }
    }
}
