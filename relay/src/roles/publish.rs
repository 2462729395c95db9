//! `shoal publish` (being written).

/// `shoal publish` flags.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {}

/// Runs `shoal publish`.
pub fn run(_args: &PublishArgs) -> anyhow::Result<()> {
    anyhow::bail!("shoal publish is not built yet")
}
