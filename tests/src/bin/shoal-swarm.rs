//! `shoal-swarm`: the swarm scenario in the simulator, printed as a table.
//!
//! Usage: `shoal-swarm [PEERS] [SECONDS] [SEED]` (defaults: 10,000 peers,
//! 60 s, seed 1). One publisher, 4 relays in a tree, peers with mixed
//! upload capacity (30% none, the rest 1 to 5 times the bitrate), 50 ms
//! links with 2% loss, 10% of peers leaving and joining per minute.
//! `SHOAL_SWARM_NO_MEMO=1` checks every signature and hashes every chunk
//! in every peer (no shared memo; the same table, slower).

use std::process::ExitCode;

use shoal_tests::harness::{Swarm, SwarmConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: shoal-swarm [PEERS] [SECONDS] [SEED]";
    let num = |i: usize, name: &str, default: f64| -> Result<f64, String> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse()
                .map_err(|_| format!("{name}: '{s}' is not a number ({usage})"))
        })
    };
    let parsed = (|| {
        Ok::<_, String>((
            num(0, "PEERS", 10_000.0)?,
            num(1, "SECONDS", 60.0)?,
            num(2, "SEED", 1.0)?,
        ))
    })();
    let (peers, seconds, seed) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("shoal-swarm: {e}");
            return ExitCode::from(2);
        }
    };
    let config = SwarmConfig {
        peers: peers as u32,
        seconds,
        seed: seed as u64,
        verify_memo: std::env::var_os("SHOAL_SWARM_NO_MEMO").is_none_or(|v| v != "1"),
        ..SwarmConfig::default()
    };
    let started = std::time::Instant::now();
    let mut swarm = Swarm::new(config);
    let report = swarm.run();
    print!("{report}");
    println!(
        "simulated {seconds} s in {:.1} s wall, {} events",
        started.elapsed().as_secs_f64(),
        swarm.net.stats().events
    );
    ExitCode::SUCCESS
}
