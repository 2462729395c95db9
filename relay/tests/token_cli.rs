//! Access tokens as a user meets them: `shoal token` makes one from the
//! stream's key; a relay run with `require_token` refuses `shoal watch`
//! without one, with a clear line, and serves the stream byte for byte to
//! a viewer that has one.

mod support;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use shoal_relay::io::BackendKind;
use support::cli::*;
use support::*;

/// Writes the key file `shoal keygen` would have written for `[seed; 32]`.
fn key_file(dir: &TempDir, seed: u8) -> String {
    let path = dir.path(&format!("key-{seed}"));
    let hex: String = std::iter::repeat_n(format!("{seed:02x}"), 32).collect();
    std::fs::write(&path, format!("{hex}\n")).expect("write key");
    path.to_str().expect("utf8").to_owned()
}

/// `shoal token ARGS`: the printed token.
fn make_token(args: &[&str]) -> String {
    let mut cmd = shoal(&[&["token"], args].concat());
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("run shoal token");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("stdout");
    let (status, err) = wait(&mut child, Duration::from_secs(5), "shoal token");
    assert!(status.success(), "shoal token {args:?}: {err}");
    out.trim().to_owned()
}

#[test]
fn bad_token_flags_are_named() {
    let dir = TempDir::create(&format!("shoal-token-flags-{}", std::process::id()));
    let key = key_file(&dir, 1);
    for (args, needle) in [
        (vec!["--key", "/nonexistent/key"], "cannot read key"),
        (vec!["--key", &key, "--scope", "admin"], "--scope \"admin\""),
        (
            vec!["--key", &key, "--expires", "soon"],
            "--expires \"soon\"",
        ),
    ] {
        let (status, err, _) = run(&[&["token"], &args[..]].concat(), Duration::from_secs(5));
        assert!(!status.success(), "{args:?} must fail");
        assert_one_line(&err, needle);
    }
    let id = stream_id(1);
    let (status, err, _) = client_with("watch", &id, &["--token", "not-a-token"]);
    assert!(!status.success());
    assert_one_line(&err, "--token: not an access token");
    // A good token for another stream is caught before any relay is asked.
    let other = make_token(&["--key", &key_file(&dir, 2)]);
    let (status, err, _) = client_with("watch", &id, &["--token", &other]);
    assert!(!status.success());
    assert_one_line(&err, "--token: it was made for stream");
}

#[test]
fn a_relay_that_requires_tokens_serves_only_token_holders() {
    let mut s = settings(BackendKind::Auto, 1);
    s.require_token = true;
    let server = start(&s);
    let addr = server.local_addr().to_string();
    let seed = 21;
    let mut source = Source::new(vec![server.local_addr()], seed);
    let id = source.stream.to_string();
    let dir = TempDir::create(&format!("shoal-token-{}", std::process::id()));

    // Without a token: refused, one line saying what to do.
    let ran = run(
        &["watch", "--stream", &id, "--relay", &addr, "--quiet"],
        Duration::from_secs(10),
    );
    assert_gave_up(
        ran,
        &format!("relay {addr} requires an access token for stream {id}: pass --token TOKEN"),
        Duration::from_secs(5),
    );

    // With one: the stream, byte for byte.
    let token = make_token(&[
        "--key",
        &key_file(&dir, seed),
        "--expires",
        "1h",
        "--scope",
        "watch",
    ]);
    let out = dir.path("out.ts");
    let out_text = out.to_str().expect("utf8");
    let mut child = shoal(&[
        "watch", "--stream", &id, "--relay", &addr, "--output", out_text, "--token", &token,
        "--quiet",
    ])
    .spawn()
    .expect("run shoal watch");
    let (status, err) = publish_to(&server, &mut source, &mut child, "the token holder");
    assert!(status.success(), "exit 0 at end of stream: {status} {err}");
    let expected = source.bytes();
    let got = std::fs::read(&out).expect("output");
    assert!(
        got == expected,
        "{} of {} bytes, in order",
        got.len(),
        expected.len()
    );

    let snaps = metrics_until(&server, "the refusal counted", |m| {
        sum(m, |w| w.relay.drop_token_missing) >= 1
    });
    assert_eq!(
        sum(&snaps, |w| w.relay.accepted),
        1,
        "only the token holder got in"
    );
    server.shutdown();
}
