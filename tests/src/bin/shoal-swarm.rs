//! `shoal-swarm`: the swarm scenario in the simulator, printed as a table
//! and, with `--json FILE`, written as JSON (`-` for stdout).
//!
//! Usage: `shoal-swarm [PEERS] [SECONDS] [SEED] [--json FILE] [--threads N]`
//! (defaults: 10,000 peers, 60 s, seed 1, a thread per core: the same
//! table on any number of threads, but for wall time and the memo's
//! counts). One publisher, relays in a tree sized to
//! the audience (`harness::swarm_relays`: 4 up to 10,000 peers, then one
//! per 2,500), a 1 Mbit/s stream in 6 clubs, peers with mixed upload
//! capacity (30% none, the rest 1 to 5 times the bitrate), 50 ms ± 5 ms
//! links with 2% loss (toward a peer half of it in bursts on its access
//! link), each peer behind an uplink of 1.25
//! times its upload limit (at least 1 Mbit/s, 200 ms of buffer), 30% of
//! peers behind cone NATs and 5% behind symmetric ones, relays at 1.1 µs
//! per datagram, 10% of peers leaving and joining per minute (all the
//! defaults of `SwarmConfig`, which says why).
//! `SHOAL_SWARM_NO_MEMO=1` checks every signature and hashes every chunk
//! in every peer (no shared memo; the same table, slower).
//! `SHOAL_SWARM_DEBUG=1` also prints the peers' summed counters to stderr.
//!
//! The heap is asked for transparent huge pages (see [`with_huge_pages`]);
//! `GLIBC_TUNABLES` set in the environment is left as it is, so
//! `GLIBC_TUNABLES=glibc.malloc.hugetlb=0` runs on 4 KiB pages.

use std::process::ExitCode;

use shoal_tests::harness::{Swarm, SwarmConfig, SwarmRun, peak_rss_bytes};

const USAGE: &str = "usage: shoal-swarm [PEERS] [SECONDS] [SEED] [--json FILE] [--threads N]";

/// What the command line asked for.
#[derive(Debug, PartialEq)]
struct Args {
    peers: u32,
    seconds: f64,
    seed: u64,
    json: Option<String>,
    /// `None`: one per core.
    threads: Option<usize>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut json = None;
    let mut threads = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if let Some(n) = arg
            .strip_prefix("--threads=")
            .or_else(|| (arg == "--threads").then(|| it.next().map_or("", String::as_str)))
        {
            let n = n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| format!("--threads: '{n}' is not a whole number from 1 to 64"))?;
            threads = Some(n);
        } else if arg == "--json" {
            let file = it
                .next()
                .ok_or("--json needs a FILE to write to (or - for stdout)")?;
            json = Some(file.clone());
        } else if let Some(file) = arg.strip_prefix("--json=") {
            json = Some(file.to_owned());
        } else if arg.starts_with("--") {
            return Err(format!(
                "unknown flag '{arg}': the flags are --json FILE and --threads N"
            ));
        } else {
            positional.push(arg.as_str());
        }
    }
    if positional.len() > 3 {
        return Err(format!(
            "too many arguments ({}): give at most PEERS, SECONDS and SEED",
            positional.len()
        ));
    }
    let peers = match positional.first() {
        None => 10_000,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("PEERS: '{s}' is not a whole number above 0"))?,
    };
    let seconds = match positional.get(1) {
        None => 60.0,
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|&x| x.is_finite() && x > 0.0)
            .ok_or_else(|| format!("SECONDS: '{s}' is not a number of seconds above 0"))?,
    };
    let seed = match positional.get(2) {
        None => 1,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| format!("SEED: '{s}' is not a whole number from 0"))?,
    };
    Ok(Args {
        peers,
        seconds,
        seed,
        json,
        threads,
    })
}

/// The glibc tunable that has `malloc` advise the kernel to back the heap
/// with transparent huge pages (glibc 2.35 on; other C libraries ignore it).
const HUGE_PAGES: &str = "glibc.malloc.hugetlb=1";

/// Runs this program again with [`HUGE_PAGES`] in `GLIBC_TUNABLES`, unless
/// that is set already (by the user, or by the first run); returns only if
/// it could not.
///
/// A large swarm is gigabytes of peers' state, each event touching a few
/// cache lines of it at random: with 4 KiB pages nearly every one of those
/// is a TLB miss too. The kernel here gives huge pages only to memory that
/// asks (`transparent_hugepage/enabled` is `madvise`), and glibc reads its
/// tunables once, at start, so the only way in is the environment of a
/// new process. Measured: 0.74-0.93 of the wall time at 10,000 peers
/// (median 0.77 in three alternating pairs), for
/// 3% more memory (BENCHMARKS.md, "Issue 20, eighth session"); the run
/// itself is the same, event for event.
fn with_huge_pages() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    let e = std::process::Command::new(me)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", HUGE_PAGES)
        .exec();
    eprintln!("shoal-swarm: running again with huge pages failed ({e}); going on without");
}

/// Whether this process runs with [`HUGE_PAGES`].
fn huge_pages() -> bool {
    std::env::var("GLIBC_TUNABLES").is_ok_and(|t| asks_huge_pages(&t))
}

/// Whether a `GLIBC_TUNABLES` value (`name=value` pairs split by `:`)
/// holds [`HUGE_PAGES`].
fn asks_huge_pages(tunables: &str) -> bool {
    tunables.split(':').any(|t| t == HUGE_PAGES)
}

fn main() -> ExitCode {
    with_huge_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&args) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("shoal-swarm: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = SwarmConfig {
        seed: args.seed,
        seconds: args.seconds,
        verify_memo: std::env::var_os("SHOAL_SWARM_NO_MEMO").is_none_or(|v| v != "1"),
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(64))),
        ..SwarmConfig::for_peers(args.peers)
    };
    let threads = config.threads;
    let started = std::time::Instant::now();
    let mut swarm = Swarm::new(config);
    let report = swarm.run();
    let wall_s = started.elapsed().as_secs_f64();
    let events = swarm.net.stats().events;
    print!("{report}");
    if std::env::var_os("SHOAL_SWARM_DEBUG").is_some() {
        eprintln!("{}", swarm.debug_totals());
    }
    println!(
        "simulated {} s in {wall_s:.1} s wall on {threads} thread(s){}, {events} events",
        args.seconds,
        if huge_pages() { " with huge pages" } else { "" },
    );
    if let Some(file) = &args.json {
        let run = SwarmRun {
            report: &report,
            seed: args.seed,
            seconds: args.seconds,
            wall_s,
            threads,
            events,
            peak_rss_bytes: peak_rss_bytes(),
        };
        let text = run.to_json().to_string() + "\n";
        let written = if file == "-" {
            print!("{text}");
            Ok(())
        } else {
            std::fs::write(file, text)
        };
        if let Err(e) = written {
            eprintln!("shoal-swarm: --json {file}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        let v: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse(&v)
    }

    #[test]
    fn huge_pages_are_read_from_the_tunables() {
        assert!(asks_huge_pages(HUGE_PAGES));
        assert!(asks_huge_pages(
            "glibc.malloc.tcache_count=0:glibc.malloc.hugetlb=1"
        ));
        assert!(!asks_huge_pages("glibc.malloc.hugetlb=0"));
        assert!(!asks_huge_pages("glibc.malloc.hugetlb=10"));
        assert!(!asks_huge_pages(""));
    }

    #[test]
    fn positional_with_defaults_and_json() {
        assert_eq!(
            args(""),
            Ok(Args {
                peers: 10_000,
                seconds: 60.0,
                seed: 1,
                json: None,
                threads: None,
            })
        );
        assert_eq!(
            args("300 20 --json out.json 7"),
            Ok(Args {
                peers: 300,
                seconds: 20.0,
                seed: 7,
                json: Some("out.json".into()),
                threads: None,
            })
        );
        assert_eq!(
            args("--json=- 5").map(|a| (a.peers, a.json)),
            Ok((5, Some("-".into())))
        );
        assert_eq!(args("--threads 2 5").map(|a| a.threads), Ok(Some(2)));
        assert_eq!(args("5 --threads=1").map(|a| a.threads), Ok(Some(1)));
    }

    fn error(line: &str) -> String {
        args(line).err().unwrap_or_default()
    }

    #[test]
    fn mistakes_name_the_fix() {
        assert!(error("--jsn x").contains("--json FILE"));
        assert!(error("10 --json").contains("needs a FILE"));
        assert!(error("1e4").contains("PEERS"));
        assert!(error("0").contains("above 0"));
        assert!(error("10 -3").contains("SECONDS"));
        assert!(error("10 3 x").contains("SEED"));
        assert!(error("1 2 3 4").contains("at most"));
        assert!(error("--threads 0").contains("from 1 to 64"));
        assert!(error("--threads").contains("--threads"));
    }
}
