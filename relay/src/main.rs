//! `shoal`: the relay server (`shoal relay`) and the client roles around
//! it (`keygen`, `token`, `publish`, `watch`, `peer`, `demo`), in one
//! binary.
//!
//! The two families live apart in the library too: the server in
//! [`shoal_relay::server`], the client roles in [`shoal_relay::roles`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shoal_relay::roles;
use shoal_relay::server::Server;
use shoal_relay::server::config::{RelayArgs, Settings};
use shoal_relay::server::supervise::{EXIT_WORKER_DIED, WorkerPanic};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// shoal: peer-to-peer live streaming.
///
/// `shoal relay` runs the server; the other commands are the client roles
/// around it: make keys and tokens, publish, watch, join the swarm as a
/// peer, or try it all on loopback.
#[derive(Debug, Parser)]
#[command(name = "shoal", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The server: run a super-peer relay, taking streams and fanning
    /// them out to subscribers.
    Relay(Box<RelayArgs>),
    #[command(flatten)]
    Client(Box<ClientCommand>),
}

/// The client roles.
#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Make a new stream key; prints the stream id.
    Keygen(roles::keygen::KeygenArgs),
    /// Make an access token for a stream's viewers (for relays run with --require-token).
    Token(roles::token::TokenArgs),
    /// Publish a live MPEG-TS stream to one or more relays.
    Publish(roles::publish::PublishArgs),
    /// Watch a stream: reassembled MPEG-TS to stdout, a file or UDP.
    Watch(roles::watch::WatchArgs),
    /// Watch a stream and upload part of it to other peers (an ordinary peer in the swarm).
    Peer(roles::peer::PeerArgs),
    /// Run relay, publisher and viewers on loopback with a built-in test stream.
    Demo(roles::demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Relay(args) => relay(&args),
        Command::Client(role) => match *role {
            ClientCommand::Keygen(args) => roles::keygen::run(&args),
            ClientCommand::Token(args) => roles::token::run(&args),
            ClientCommand::Publish(args) => roles::publish::run(&args),
            ClientCommand::Watch(args) => roles::watch::run(&args),
            ClientCommand::Peer(args) => roles::peer::run(&args),
            ClientCommand::Demo(args) => roles::demo::run(&args),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal: {e:#}");
            if e.downcast_ref::<WorkerPanic>().is_some() {
                ExitCode::from(EXIT_WORKER_DIED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn relay(args: &RelayArgs) -> anyhow::Result<()> {
    let settings = Settings::load(args)?;
    init_logs(&settings.log)?;
    // Signals are taken before the workers start, so none is missed.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let server = Server::start(&settings)?;
    // A worker that dies ends the wait as a signal would (see
    // shoal_relay::server::supervise).
    let handle = signals.handle();
    server.on_worker_exit(move || handle.close())?;
    let signal = signals.forever().next();
    match signal {
        Some(signal) => tracing::info!(signal, "stopping: telling subscribers"),
        None => tracing::error!("a worker stopped; stopping the relay"),
    }
    let panics = server.shutdown();
    if let Some(panic) = panics.into_iter().next() {
        return Err(panic.into());
    }
    if signal.is_none() {
        anyhow::bail!("a worker stopped without a signal or a panic; this is a bug");
    }
    tracing::info!("stopped");
    Ok(())
}

fn init_logs(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| {
        anyhow::anyhow!("--log {filter:?}: {e}; use a filter such as info or shoal_relay=debug")
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}
