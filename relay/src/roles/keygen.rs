//! `shoal keygen` (being written).

/// `shoal keygen` flags.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {}

/// Runs `shoal keygen`.
pub fn run(_args: &KeygenArgs) -> anyhow::Result<()> {
    anyhow::bail!("shoal keygen is not built yet")
}
