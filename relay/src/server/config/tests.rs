use std::path::Path;

use super::*;

fn id(byte: u8) -> StreamId {
    StreamId([byte; 32])
}

fn from_file(args: &RelayArgs, text: &str) -> anyhow::Result<Settings> {
    Settings::resolve(args, Some((Path::new("relay.toml"), text)))
}

fn error(result: anyhow::Result<Settings>) -> String {
    let message = result.expect_err("should be refused").to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

fn defaults() -> Settings {
    Settings {
        listen: "0.0.0.0:7400".parse().expect("literal"),
        workers: std::thread::available_parallelism().map_or(1, usize::from),
        backend: BackendKind::Auto,
        metrics: Some("127.0.0.1:9464".parse().expect("literal")),
        http: None,
        http_url: None,
        window_chunks: 2048,
        max_subscribers: 10_000,
        max_http_readers: 1000,
        max_streams: 64,
        publishers: Vec::new(),
        max_streams_per_source: 4,
        stream_idle_timeout: Duration::from_secs(30),
        max_subscriptions_per_ip: 64,
        handshake_rate: 20,
        handshake_burst: 40,
        upstreams: Vec::new(),
        streams: Vec::new(),
        upstream_tokens: Vec::new(),
        require_token: false,
        announce: None,
        keepalive: Duration::from_secs(1),
        subscriber_timeout: Duration::from_secs(5),
        pin: true,
        gso: true,
        log: "info".to_owned(),
    }
}

#[derive(clap::Parser, Debug)]
struct Cli {
    #[command(flatten)]
    relay: RelayArgs,
}

fn flags(argv: &[&str]) -> RelayArgs {
    use clap::Parser as _;
    Cli::try_parse_from(std::iter::once("shoal").chain(argv.iter().copied()))
        .expect("flags parse")
        .relay
}

#[test]
fn no_args_gives_the_defaults() {
    let settings = Settings::load(&RelayArgs::default()).expect("defaults load");
    assert_eq!(settings, defaults());
    assert_eq!(settings.listen.port(), DEFAULT_PORT);
}

#[test]
fn the_tuning_file_parses_to_the_defaults() {
    // tuning/relay.toml is the commented file operators install; unknown
    // keys are refused, so a typo or a made-up key fails here.
    let text = include_str!("../../../../tuning/relay.toml");
    assert_eq!(
        from_file(&RelayArgs::default(), text).expect("tuning/relay.toml parses"),
        defaults()
    );
}

#[test]
fn the_example_file_parses_to_the_defaults() {
    assert_eq!(
        from_file(&RelayArgs::default(), EXAMPLE_TOML).expect("example parses"),
        defaults()
    );
    // Every key of the file is in the example.
    for key in [
        "listen",
        "workers",
        "backend",
        "metrics",
        "http",
        "http_url",
        "window",
        "max_subscribers",
        "max_http_readers",
        "max_streams",
        "publishers",
        "max_streams_per_source",
        "stream_idle_timeout",
        "max_subscriptions_per_ip",
        "handshake_rate",
        "upstreams",
        "streams",
        "keepalive",
        "subscriber_timeout",
        "pin",
        "gso",
        "log",
    ] {
        assert!(
            EXAMPLE_TOML.contains(&format!("\n{key} = ")),
            "{key} missing"
        );
    }
}

#[test]
fn the_default_relay_config_matches_the_core() {
    let core = RelayConfig::default();
    let ours = defaults().relay_config();
    assert_eq!(ours.window, core.window);
    assert_eq!(ours.max_subscribers, core.max_subscribers);
    assert_eq!(ours.max_streams, core.max_streams);
    assert_eq!(ours.publishers, core.publishers);
    assert_eq!(ours.max_streams_per_source, core.max_streams_per_source);
    assert_eq!(ours.stream_idle_timeout, core.stream_idle_timeout);
    assert_eq!(ours.max_subscriptions_per_ip, core.max_subscriptions_per_ip);
    assert_eq!(ours.keepalive_interval, core.keepalive_interval);
    assert_eq!(ours.subscriber_timeout, core.subscriber_timeout);
    assert_eq!(ours.cookie_secret, [0; 32], "left for the server to fill");
}

#[test]
fn flags_override_the_file_which_overrides_defaults() {
    let file = format!(
        r#"
        listen = "127.0.0.1:8000"
        workers = 3
        backend = "mmsg"
        metrics = "off"
        window = "2s"
        max_streams = 8
        upstreams = ["10.0.0.1:7400", "10.0.0.2:7400"]
        streams = ["{}"]
        keepalive = "500ms"
        pin = false
        log = "debug"
        "#,
        id(1)
    );
    let only_file = from_file(&RelayArgs::default(), &file).expect("file loads");
    assert_eq!(only_file.listen, "127.0.0.1:8000".parse().expect("literal"));
    assert_eq!(only_file.workers, 3);
    assert_eq!(only_file.backend, BackendKind::Mmsg);
    assert_eq!(only_file.metrics, None);
    assert_eq!(only_file.window_chunks, 2000);
    assert_eq!(only_file.max_streams, 8);
    assert_eq!(only_file.max_subscribers, 10_000, "default kept");
    assert_eq!(only_file.upstreams.len(), 2);
    assert_eq!(only_file.streams, vec![id(1)]);
    assert_eq!(only_file.keepalive, Duration::from_millis(500));
    assert!(!only_file.pin);
    assert!(only_file.gso);
    assert_eq!(only_file.log, "debug");

    let stream = id(2).to_string();
    let args = flags(&[
        "--listen",
        "127.0.0.1:9000",
        "--backend",
        "uring",
        "--window",
        "4096",
        "--upstream",
        "10.0.0.3:7400",
        "--stream",
        &stream,
        "--stream",
        &stream,
        "--no-gso",
        "--metrics",
        "127.0.0.1:9999",
    ]);
    let both = from_file(&args, &file).expect("file and flags load");
    assert_eq!(both.listen, "127.0.0.1:9000".parse().expect("literal"));
    assert_eq!(both.backend, BackendKind::Uring);
    assert_eq!(both.window_chunks, 4096);
    assert_eq!(
        both.upstreams,
        vec!["10.0.0.3:7400".parse().expect("literal")]
    );
    assert_eq!(
        both.streams,
        vec![id(2)],
        "flags replace the list; repeats dropped"
    );
    assert_eq!(
        both.metrics,
        Some("127.0.0.1:9999".parse().expect("literal"))
    );
    assert!(!both.gso);
    assert!(!both.pin, "file's pin = false kept");
    assert_eq!(both.workers, 3, "file kept where no flag");
}

#[test]
fn relay_config_carries_the_settings() {
    let args = flags(&[
        "--window",
        "500ms",
        "--max-subscribers",
        "7",
        "--max-streams",
        "2",
        "--keepalive",
        "2s",
        "--subscriber-timeout",
        "1m",
        "--handshake-rate",
        "5",
        "--workers",
        "0",
    ]);
    let settings = Settings::load(&args).expect("loads");
    assert!(settings.workers >= 1, "0 means one per core");
    assert_eq!((settings.handshake_rate, settings.handshake_burst), (5, 10));
    let config = settings.relay_config();
    assert_eq!(config.window.capacity, 500);
    assert_eq!(config.max_subscribers, 7);
    assert_eq!(config.max_streams, 2);
    assert_eq!(config.keepalive_interval, Duration::from_secs(2));
    assert_eq!(config.subscriber_timeout, Duration::from_secs(60));
}

#[test]
fn a_bad_listen_address_names_the_flag_and_the_fix() {
    let e = error(Settings::load(&flags(&["--listen", "foo"])));
    assert_eq!(
        e,
        r#"--listen "foo": not an address; use HOST:PORT such as 0.0.0.0:7400"#
    );
    let e = error(from_file(&RelayArgs::default(), r#"listen = "foo""#));
    assert!(
        e.starts_with(r#"config file relay.toml: listen "foo": not an address"#),
        "{e}"
    );
}

#[test]
fn an_unknown_key_names_the_file_and_the_key() {
    let e = error(from_file(
        &RelayArgs::default(),
        "workers = 2\nlistn = \"0.0.0.0:1\"\n",
    ));
    assert!(e.starts_with("config file relay.toml: line 2:"), "{e}");
    assert!(e.contains("listn"), "{e}");
    assert!(e.contains("listen"), "the known keys are listed: {e}");
}

#[test]
fn a_wrongly_typed_key_names_the_key() {
    let e = error(from_file(&RelayArgs::default(), "backend = \"fast\""));
    assert!(
        e.contains("relay.toml") && e.contains("fast") && e.contains("mmsg"),
        "{e}"
    );
    let e = error(from_file(&RelayArgs::default(), "workers = -1"));
    assert!(e.contains("relay.toml: line 1:"), "{e}");
}

#[test]
fn a_missing_config_file_names_the_path() {
    let path = std::env::temp_dir().join(format!("shoal-no-such-{}.toml", std::process::id()));
    let args = RelayArgs {
        config: Some(path.clone()),
        ..RelayArgs::default()
    };
    let e = error(Settings::load(&args));
    assert!(
        e.starts_with(&format!("config file {}: cannot read it", path.display())),
        "{e}"
    );
    assert!(e.contains("--config"), "{e}");
}

#[test]
fn a_real_config_file_is_read() {
    let path = std::env::temp_dir().join(format!("shoal-relay-{}.toml", std::process::id()));
    std::fs::write(&path, "max_subscribers = 12\n").expect("temp file written");
    let args = RelayArgs {
        config: Some(path.clone()),
        ..RelayArgs::default()
    };
    let loaded = Settings::load(&args);
    std::fs::remove_file(&path).expect("temp file removed");
    assert_eq!(loaded.expect("loads").max_subscribers, 12);
}

#[test]
fn streams_and_upstreams_go_together() {
    let stream = id(3).to_string();
    let e = error(Settings::load(&flags(&["--stream", &stream])));
    assert_eq!(e, "--stream given without --upstream: add --upstream ADDR");
    let e = error(Settings::load(&flags(&["--upstream", "10.0.0.1:7400"])));
    assert_eq!(e, "--upstream given without --stream: add --stream ID");
    let e = error(from_file(
        &RelayArgs::default(),
        &format!("streams = [\"{stream}\"]"),
    ));
    assert!(
        e.starts_with("config file relay.toml: streams given without upstreams"),
        "{e}"
    );
    // One from the file and one from the flags is fine.
    let args = flags(&["--upstream", "10.0.0.1:7400"]);
    let mixed = from_file(&args, &format!("streams = [\"{stream}\"]")).expect("loads");
    assert_eq!(mixed.streams, vec![id(3)]);
}

#[test]
fn a_bad_stream_id_names_the_flag() {
    let args = flags(&["--upstream", "10.0.0.1:7400", "--stream", "xyz"]);
    assert_eq!(
        error(Settings::load(&args)),
        r#"--stream "xyz": not a stream id (52 base32 characters, as printed by shoal keygen)"#
    );
}

#[test]
fn the_window_is_checked_and_converted() {
    assert_eq!(
        error(Settings::load(&flags(&["--window", "10"]))),
        "--window 10: must be 64..=65536 chunks or a time like 2s"
    );
    let e = error(Settings::load(&flags(&["--window", "10ms"])));
    assert!(
        e.starts_with("--window 10ms: 10 chunks at the nominal"),
        "{e}"
    );
    let e = error(from_file(&RelayArgs::default(), "window = 100000"));
    assert!(
        e.starts_with("config file relay.toml: window 100000: must be"),
        "{e}"
    );
    for (given, chunks) in [("2s", 2000), ("1.5s", 1500), ("64", 64), ("1m", 60_000)] {
        let settings = Settings::load(&flags(&["--window", given])).expect(given);
        assert_eq!(settings.window_chunks, chunks, "{given}");
    }
    let settings = from_file(&RelayArgs::default(), "window = 4096").expect("integer window");
    assert_eq!(settings.window_chunks, 4096);
}

#[test]
fn limits_and_times_are_checked() {
    for (argv, starts) in [
        (
            &["--max-streams", "0"][..],
            "--max-streams 0: must be at least 1",
        ),
        (
            &["--max-subscribers", "0"],
            "--max-subscribers 0: must be at least 1",
        ),
        (
            &["--handshake-rate", "0"],
            "--handshake-rate 0: must be at least 1",
        ),
        (&["--workers", "5000"], "--workers 5000: at most 1024"),
        (
            &["--keepalive", "0s"],
            "--keepalive 0s: must be longer than zero",
        ),
        (&["--keepalive", "1"], "--keepalive 1: no unit; use"),
        (
            &["--subscriber-timeout", "1s"],
            "--subscriber-timeout 1s: must be longer than the keepalive",
        ),
        (
            &["--keepalive", "5s"],
            "--keepalive 5s: not shorter than the default subscriber timeout",
        ),
        (
            &["--metrics", "nope"],
            "--metrics \"nope\": not an address; use HOST:PORT such as 127.0.0.1:9464 (or off)",
        ),
        (
            &["--log", "shoal=loud"],
            "--log \"shoal=loud\": not a log filter",
        ),
    ] {
        let e = error(Settings::load(&flags(argv)));
        assert!(e.starts_with(starts), "{argv:?}: {e}");
    }
    let e = error(from_file(&RelayArgs::default(), "keepalive = 1"));
    assert!(
        e.starts_with("config file relay.toml: keepalive 1: no unit"),
        "{e}"
    );
    let ok = Settings::load(&flags(&[
        "--keepalive",
        "5s",
        "--subscriber-timeout",
        "15s",
    ]));
    assert_eq!(
        ok.expect("loads").subscriber_timeout,
        Duration::from_secs(15)
    );
    let off = Settings::load(&flags(&["--metrics", "OFF"])).expect("loads");
    assert_eq!(off.metrics, None);
    let http = Settings::load(&flags(&["--http", "0.0.0.0:8080"])).expect("loads");
    assert_eq!(http.http, Some("0.0.0.0:8080".parse().expect("literal")));
    let err = Settings::load(&flags(&["--http", "8080"])).expect_err("refused");
    assert!(err.to_string().contains("--http"), "{err}");
    let url = |u: &str| Settings::load(&flags(&["--http-url", u]));
    let named = url("https://live.example.com").expect("loads");
    assert_eq!(named.http_url.as_deref(), Some("https://live.example.com/"));
    assert_eq!(url("").expect("loads").http_url, None);
    for bad in ["live.example.com", "http://a b/", "ftp://x/"] {
        let err = url(bad).expect_err(bad).to_string();
        assert!(
            err.contains("--http-url") && err.contains("https://"),
            "{err}"
        );
    }
}

#[test]
fn the_flags_are_well_formed() {
    use clap::CommandFactory as _;
    Cli::command().debug_assert();
}

#[test]
fn announce_takes_bootstrap_nodes_from_flags_or_the_file() {
    let s = Settings::load(&flags(&["--announce", "--dht-bootstrap", "127.0.0.1:6881"]))
        .expect("loads");
    let options = s.announce.expect("announcing");
    assert_eq!(
        options.bootstrap,
        Some(vec!["127.0.0.1:6881".parse().expect("literal")])
    );
    let s = from_file(
        &RelayArgs::default(),
        "announce = true\ndht_bootstrap = [\"127.0.0.2:7000\"]\n",
    )
    .expect("loads");
    assert!(s.announce.expect("announcing").is_local());
    let s = Settings::load(&flags(&["--announce"])).expect("loads");
    assert_eq!(s.announce.expect("announcing").bootstrap, None);
}

#[test]
fn dht_bootstrap_without_announce_names_the_fix() {
    let e = error(Settings::load(&flags(&[
        "--dht-bootstrap",
        "127.0.0.1:6881",
    ])));
    assert!(
        e.contains("--dht-bootstrap given without --announce: add --announce"),
        "{e}"
    );
    let e = error(from_file(
        &RelayArgs::default(),
        "dht_bootstrap = [\"127.0.0.1:6881\"]\n",
    ));
    assert!(e.contains("announce = true"), "{e}");
    let e = error(Settings::load(&flags(&[
        "--announce",
        "--dht-bootstrap",
        "nowhere",
    ])));
    assert!(
        e.starts_with("--dht-bootstrap \"nowhere\": not HOST:PORT"),
        "{e}"
    );
}

#[test]
fn admission_settings_come_from_the_file_and_the_flags() {
    let file = format!(
        r#"
        publishers = ["{}", "{}"]
        max_streams_per_source = 2
        stream_idle_timeout = "1m"
        max_subscriptions_per_ip = 500
        "#,
        id(4),
        id(5)
    );
    let only_file = from_file(&RelayArgs::default(), &file).expect("file loads");
    assert_eq!(only_file.publishers, vec![id(4), id(5)]);
    assert_eq!(only_file.max_streams_per_source, 2);
    assert_eq!(only_file.stream_idle_timeout, Duration::from_secs(60));
    assert_eq!(only_file.max_subscriptions_per_ip, 500);
    let config = only_file.relay_config();
    assert_eq!(config.publishers, vec![id(4), id(5)]);
    assert_eq!(config.max_subscriptions_per_ip, 500);

    let six = id(6).to_string();
    let args = flags(&[
        "--publisher",
        &six,
        "--publisher",
        &six,
        "--stream-idle-timeout",
        "10s",
    ]);
    let both = from_file(&args, &file).expect("file and flags load");
    assert_eq!(both.publishers, vec![id(6)], "flags replace the list");
    assert_eq!(both.stream_idle_timeout, Duration::from_secs(10));
    assert_eq!(both.max_streams_per_source, 2, "file kept where no flag");
}

#[test]
fn bad_admission_settings_name_the_field_and_the_fix() {
    assert_eq!(
        error(Settings::load(&flags(&["--publisher", "xyz"]))),
        r#"--publisher "xyz": not a stream id (52 base32 characters, as printed by shoal keygen)"#
    );
    let e = error(from_file(&RelayArgs::default(), r#"publishers = ["nope"]"#));
    assert!(
        e.starts_with(r#"config file relay.toml: publishers "nope": not a stream id"#),
        "{e}"
    );
    assert_eq!(
        error(Settings::load(&flags(&["--stream-idle-timeout", "1s"]))),
        "--stream-idle-timeout 1s: must be at least 3s (a live stream sends a DESCRIPTOR each \
         second); use a time such as 30s"
    );
    assert_eq!(
        error(Settings::load(&flags(&["--max-streams-per-source", "0"]))),
        "--max-streams-per-source 0: must be at least 1"
    );
    let e = error(from_file(
        &RelayArgs::default(),
        "max_subscriptions_per_ip = 0",
    ));
    assert_eq!(
        e,
        "config file relay.toml: max_subscriptions_per_ip 0: must be at least 1"
    );
}
