//! `shoal watch` (being written).

/// `shoal watch` flags.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {}

/// Runs `shoal watch`.
pub fn run(_args: &WatchArgs) -> anyhow::Result<()> {
    anyhow::bail!("shoal watch is not built yet")
}
