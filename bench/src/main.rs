//! shoal-bench: measures a shoal relay on loopback.
//!
//! A source (a real publisher, fed a frame of bytes `--fps` times a second)
//! sends one stream to the relay; `--viewers` virtual viewers, each a UDP
//! socket on its own 127.10.x.y address, do the real handshake and count
//! what arrives: loss, duplicates, order, one-way latency. The relay runs
//! in this process (or at `--relay ADDR`) with its workers pinned to the
//! first CPUs; the load generator is pinned to the others. `--baseline`
//! then measures what bare sendmmsg and GSO loops on the relay's CPUs
//! deliver to the same sockets: the machine's limit, against which the
//! relay's fan-out is judged.
//!
//! Run: viewers subscribe, `--warmup`, `--duration` of measurement, a
//! drain (until nothing has arrived for 200 ms, at most 5 s), the optional
//! baseline, then the table (stdout), `--json FILE` and `--plot FILE.svg`.
//! `--find-max` repeats the run with more and more viewers (see
//! [`search`]) and reports the largest count within the limits.
//!
//! Two stress modes ride on the same run: `--flood RATE` starts a second
//! process, `shoal-bench flood` (see [`flood`]), that sends garbage and
//! forgeries at the relay during the measurement; `--churn PCT` replaces
//! that share of the viewers every second and samples the relay's memory,
//! subscriber gauge and file descriptors (see [`soak`]).
//!
//! `--http-viewers N` adds readers of the stream over HTTP from the
//! relay's web face, and `--find-max-http` searches for the most of them
//! that its one thread serves with none falling behind (see [`http`]).

mod baseline;
mod cli;
mod clock;
mod flood;
mod http;
mod plot;
mod progress;
mod reference;
mod report;
mod run;
mod search;
mod seqs;
mod shared;
mod soak;
mod source;
mod sys;
mod target;
mod text;
mod ts;
mod viewers;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    if let Some(cli::Command::Flood(flood)) = &args.command {
        return match flood::send::run(flood) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("shoal-bench flood: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(cli::Command::Relay(relay)) = &args.command {
        return match target::serve_until_stdin_closes(relay) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("shoal-bench relay: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let result = args.check().and_then(|()| {
        if args.find_max || args.find_max_http {
            search::run(&args)
        } else {
            run::run(&args)
        }
    });
    match result {
        Ok(report) => {
            print!("{}", report.table());
            if let Some(path) = &args.json
                && let Err(e) = report.write_json(path)
            {
                eprintln!("shoal-bench: {e:#}");
                return ExitCode::FAILURE;
            }
            if let Some(path) = &args.plot
                && let Err(e) = plot::write(&report, path)
            {
                eprintln!("shoal-bench: {e:#}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shoal-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
