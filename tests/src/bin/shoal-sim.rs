//! `shoal-sim`: the protocol end to end in the deterministic simulator.
//!
//! Publisher, relay and N viewers run the real proto state machines over
//! simulated links with loss; prints what the viewers got.
//!
//! Usage: `shoal-sim [VIEWERS] [SECONDS] [LOSS_PERCENT] [SEED]`
//! (defaults: 200 viewers, 5 s, 5% loss plus bursts, seed 1).

use std::process::ExitCode;
use std::time::Duration;

use shoal_tests::harness::{Star, StarConfig, percentile};
use shoal_tests::netsim::{GilbertElliott, LinkConfig};

fn arg<T: std::str::FromStr>(
    args: &[String],
    i: usize,
    name: &str,
    default: T,
) -> Result<T, String> {
    match args.get(i) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| format!("{name}: '{s}' is not a number (usage: shoal-sim [VIEWERS] [SECONDS] [LOSS_PERCENT] [SEED])")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        Ok::<_, String>((
            arg(&args, 0, "VIEWERS", 200u32)?,
            arg(&args, 1, "SECONDS", 5.0f64)?,
            arg(&args, 2, "LOSS_PERCENT", 5.0f64)?,
            arg(&args, 3, "SEED", 1u64)?,
        ))
    })();
    let (viewers, seconds, loss, seed) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("shoal-sim: {e}");
            return ExitCode::from(2);
        }
    };
    if !(0.0..=50.0).contains(&loss) || seconds <= 0.0 || seconds > 600.0 {
        eprintln!("shoal-sim: LOSS_PERCENT must be 0..=50 and SECONDS 0..=600");
        return ExitCode::from(2);
    }
    let link = LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(2),
        loss: loss / 100.0,
        burst: GilbertElliott {
            p_good_to_bad: if loss > 0.0 { 0.005 } else { 0.0 },
            p_bad_to_good: 0.3,
            loss_in_good: 0.0,
            loss_in_bad: 0.6,
        },
        ..LinkConfig::default()
    };
    println!(
        "shoal-sim: 1 publisher -> 1 relay -> {viewers} viewers, {seconds} s at 2 Mbit/s, {loss}% loss + bursts per viewer link, seed {seed}"
    );
    let mut star = Star::new(&StarConfig {
        seed,
        viewers,
        seconds,
        bitrate_bps: 2_000_000,
        viewer_link: link,
        ..StarConfig::default()
    });
    star.run(Duration::from_secs(2));
    let (mut exact, mut fec, mut nack, mut lost, mut lat) = (0, 0, 0, 0, Vec::new());
    for &v in &star.viewers {
        let n = star.net.node(v);
        let s = n.viewer.stats();
        exact += u32::from(n.output == star.stream.bytes);
        fec += s.fec_repaired;
        nack += s.nack_repaired;
        lost += s.lost;
        lat.extend_from_slice(&n.latencies);
    }
    let relay = star.net.node(star.relay).relay.stats();
    println!("viewers with byte-exact output: {exact}/{viewers}");
    println!("chunks rebuilt by FEC: {fec}, repaired by NACK: {nack}, lost: {lost}");
    println!(
        "latency publisher->output: p50 {:?}  p99 {:?}  max {:?}",
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        percentile(&lat, 100.0)
    );
    println!(
        "relay: {} datagrams in, {} forwarded, {} NACKed chunks served, {} dropped",
        relay.datagrams_in,
        relay.forwarded,
        relay.nack_served,
        relay.dropped()
    );
    println!(
        "trace hash: {}",
        star.net
            .trace_hash()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    if exact == viewers {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
