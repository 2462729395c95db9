//! What the NAT lab's tests read: the `--report` file `tests/natlab/run.sh`
//! writes (format in `tests/natlab/README.md`), and how it compares with
//! the table of which kind pairs link (`tests/natlab/links.txt`, read by
//! `shoal_tests::nat_table`).

use std::collections::BTreeMap;

/// The NAT kinds, in the order the tables list them.
pub const KINDS: [&str; 3] = ["public", "cone", "symmetric"];

/// An ordered kind pair: the first downloads from the second.
pub type Pair = (String, String);

/// One peer's line.
#[derive(Debug, Clone)]
pub struct Peer {
    pub index: usize,
    pub kind: String,
    pub address: String,
    /// `exact`, `prefix`, `differs` or `nothing`: run.sh's own comparison
    /// of the peer's output with ffmpeg's.
    pub played: String,
    /// The exit code, or `timeout`.
    pub exit: String,
    /// Seconds from the peer's start to its first working neighbour.
    pub first_s: Option<f64>,
    /// Where `first_s` comes from: `log`, `status` or `never`.
    pub first_how: String,
    pub neigh_max: u32,
    pub from_peers_mb: f64,
    pub from_relay_mb: f64,
    pub uploaded_mb: f64,
    /// The peer's start, in seconds after the publisher's (negative: before).
    pub start_s: f64,
}

/// What a run shows of one kind pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Some pair of those kinds carried a download link.
    Yes,
    /// Pairs of those kinds tried (some datagram went one way or the
    /// other) and none carried one.
    No,
    /// No pair of those kinds exchanged a single datagram: neighbour
    /// choice never put them together (with 2 public peers, public <-
    /// public is 2 pairs), which says nothing about their NATs.
    Untried,
}

/// One kind pair's line.
#[derive(Debug, Clone, Copy)]
pub struct PairCounts {
    pub pairs: u32,
    pub contacted: u32,
    pub heard: u32,
    pub links: u32,
    /// How many punch times the peers' logs gave, their median and max.
    pub punch_n: u32,
    pub punch_median_ms: Option<u32>,
    pub punch_max_ms: Option<u32>,
}

/// The whole report.
#[derive(Debug, Default)]
pub struct Report {
    /// The prefix of every namespace the run made (`shoalnat-PID-`).
    pub namespaces: String,
    pub publisher_exit: String,
    pub stream_bytes: u64,
    pub peers: Vec<Peer>,
    pub pairs: BTreeMap<Pair, PairCounts>,
    /// The relay's forwarded bytes over peers x stream.
    pub relay_share_forwarded: f64,
    /// All UDP the relay sent to peers over peers x stream.
    pub relay_share_udp: f64,
}

fn num<T: std::str::FromStr>(word: &str, line: &str) -> T {
    word.parse()
        .unwrap_or_else(|_| panic!("report: {word:?} is not a number in {line:?}"))
}

fn opt<T: std::str::FromStr>(word: &str, line: &str) -> Option<T> {
    (word != "-").then(|| num(word, line))
}

impl Report {
    /// Parses the report; panics on a malformed or unfinished one.
    pub fn parse(text: &str) -> Self {
        let mut r = Self::default();
        let mut ended = false;
        for line in text.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            let Some(&record) = w.first() else { continue };
            let fields = |n: usize| {
                assert_eq!(w.len(), n, "report: {n} words expected in {line:?}");
            };
            match record {
                _ if record.starts_with('#') => {}
                "namespaces" => r.namespaces = w.get(1).expect("a prefix").to_string(),
                "publisher_exit" => r.publisher_exit = w.get(1).expect("a code").to_string(),
                "stream_bytes" => r.stream_bytes = num(w.get(1).expect("bytes"), line),
                "peer" => {
                    fields(14);
                    r.peers.push(Peer {
                        index: num(w[1], line),
                        kind: w[2].to_string(),
                        address: w[3].to_string(),
                        played: w[4].to_string(),
                        exit: w[6].to_string(),
                        first_s: opt(w[7], line),
                        first_how: w[8].to_string(),
                        neigh_max: num(w[9], line),
                        from_peers_mb: num(w[10], line),
                        from_relay_mb: num(w[11], line),
                        uploaded_mb: num(w[12], line),
                        start_s: num(w[13], line),
                    });
                }
                "pair" => {
                    fields(10);
                    let counts = PairCounts {
                        pairs: num(w[3], line),
                        contacted: num(w[4], line),
                        heard: num(w[5], line),
                        links: num(w[6], line),
                        punch_n: num(w[7], line),
                        punch_median_ms: opt(w[8], line),
                        punch_max_ms: opt(w[9], line),
                    };
                    r.pairs.insert((w[1].to_string(), w[2].to_string()), counts);
                }
                "relay_forwarded_bytes" => {
                    fields(3);
                    r.relay_share_forwarded = num(w[2], line);
                }
                "relay_udp_bytes" => {
                    fields(3);
                    r.relay_share_udp = num(w[2], line);
                }
                "end" => ended = true,
                // The run's settings, kept for people.
                _ => {}
            }
        }
        assert!(ended, "the report has no end line: the run stopped early");
        r
    }

    /// Per peer and per kind pair, in a few lines for the test's log.
    pub fn summary(&self) -> String {
        let ms = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
        let mut out = String::new();
        for p in &self.peers {
            out += &format!(
                "peer {} {:<9} {:<13} {} exit {}; first neighbour {} s ({}) after its start, which was at {:+.2} s of the stream; \
                 max {} neighbours; MB from peers {:.2}, from relay {:.2}, uploaded {:.2}\n",
                p.index,
                p.kind,
                p.address,
                p.played,
                p.exit,
                p.first_s.map_or("-".to_string(), |s| format!("{s:.2}")),
                p.first_how,
                p.start_s,
                p.neigh_max,
                p.from_peers_mb,
                p.from_relay_mb,
                p.uploaded_mb,
            );
        }
        for ((a, b), c) in &self.pairs {
            out += &format!(
                "{a:>9} <- {b:<9} pairs {} contacted {} heard {} links {}; punch n {} median {} ms max {} ms\n",
                c.pairs,
                c.contacted,
                c.heard,
                c.links,
                c.punch_n,
                ms(c.punch_median_ms),
                ms(c.punch_max_ms),
            );
        }
        out += &format!(
            "relay share {:.3} (forwarded bytes), {:.3} (all UDP); stream {} bytes\n",
            self.relay_share_forwarded, self.relay_share_udp, self.stream_bytes
        );
        out
    }

    /// Per kind pair that occurred, whether a download link formed.
    pub fn links(&self) -> BTreeMap<Pair, Link> {
        self.pairs
            .iter()
            .filter(|(_, c)| c.pairs > 0)
            .map(|(p, c)| {
                let link = match (c.links, c.contacted) {
                    (0, 0) => Link::Untried,
                    (0, _) => Link::No,
                    _ => Link::Yes,
                };
                (p.clone(), link)
            })
            .collect()
    }
}

/// The expected and measured tables side by side, `*` on every cell that
/// differs; and the differing cells.
/// A cell measured [`Link::Untried`] differs from neither.
pub fn compare(
    expected: &BTreeMap<Pair, bool>,
    measured: &BTreeMap<Pair, Link>,
) -> (String, Vec<String>) {
    let word = |v: Option<&bool>| match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    let seen = |v: Option<&Link>| match v {
        Some(Link::Yes) => "yes",
        Some(Link::No) => "no",
        Some(Link::Untried) => "untried",
        None => "-",
    };
    let mut grid = format!("{:<11}", "A \\ B");
    for b in KINDS {
        grid += &format!(" {b:<20}");
    }
    grid += "   (expected/measured)\n";
    let mut diffs = Vec::new();
    for a in KINDS {
        grid += &format!("{a:<11}");
        for b in KINDS {
            let key = (a.to_string(), b.to_string());
            let (e, m) = (expected.get(&key), measured.get(&key));
            let differs = matches!(
                (e, m),
                (Some(true), Some(Link::No)) | (Some(false), Some(Link::Yes)) | (None, Some(_))
            );
            if differs {
                diffs.push(format!(
                    "{a} <- {b}: links.txt says {}, the lab measured {}",
                    word(e),
                    seen(m)
                ));
            }
            let cell = format!("{}/{}{}", word(e), seen(m), if differs { " *" } else { "" });
            grid += &format!(" {cell:<20}");
        }
        grid += "\n";
    }
    (grid, diffs)
}

#[test]
fn a_report_parses_and_compares() {
    let text = "# shoal natlab report 1\nnamespaces shoalnat-7-\npublisher_exit 0\nstream_bytes 100\n\
        peer 1 public 198.18.0.11 exact - 0 0.32 log 4 0.909 1.406 1.780 -2.64\n\
        peer 2 cone 198.18.3.2 prefix 50.0% timeout - never 0 0 0 0 -2.44\n\
        pair public cone 2 2 2 0 0 - -\npair cone public 2 2 2 1 1 612 612\n\
        pair public public 2 0 0 0 0 - -\n\
        relay_forwarded_bytes 150 0.75\nrelay_udp_bytes 160 0.8\nend\n";
    let r = Report::parse(text);
    assert_eq!(r.namespaces, "shoalnat-7-");
    assert_eq!(r.peers[1].first_s, None);
    assert_eq!(r.peers[1].exit, "timeout");
    assert_eq!(
        r.pairs[&("cone".into(), "public".into())].punch_median_ms,
        Some(612)
    );
    assert!((r.relay_share_forwarded - 0.75).abs() < 1e-9);
    let expected = [
        (("public".into(), "public".into()), true),
        (("public".into(), "cone".into()), true),
        (("cone".into(), "public".into()), true),
        (("cone".into(), "cone".into()), false),
    ]
    .into_iter()
    .collect();
    let (grid, diffs) = compare(&expected, &r.links());
    assert_eq!(diffs.len(), 1, "{grid}");
    assert!(diffs[0].starts_with("public <- cone"), "{diffs:?}");
    assert!(grid.contains("yes/untried"), "{grid}");
}
