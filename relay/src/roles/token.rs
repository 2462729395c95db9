//! `shoal token`: an access token for viewers of a stream, signed with the
//! stream's key. Relays started with `--require-token` let in only
//! subscribers that present one (SPEC §11.10).

use std::time::Duration;

use anyhow::Context;
use shoal_proto::token::{self, Scope, Token};

use super::keygen::load_key;

/// `shoal token` flags.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The stream's key, as written by shoal keygen.
    #[arg(long, value_name = "FILE")]
    pub key: std::path::PathBuf,
    /// How long the token is good for, from now: 2h, 30m, 7d.
    #[arg(long, value_name = "TIME", default_value = "24h")]
    pub expires: String,
    /// What it allows: watch, or watch,upload for `shoal peer` (upload:
    /// being handed out to other peers as a source).
    #[arg(long, value_name = "SCOPE", default_value = "watch,upload")]
    pub scope: String,
    /// A number of your choice to tell tokens apart in relay logs.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub id: u64,
}

/// Runs `shoal token`: prints the token on stdout.
pub fn run(args: &TokenArgs) -> anyhow::Result<()> {
    let key = load_key(&args.key)?;
    let lifetime = parse_lifetime(&args.expires)?;
    let scope = Scope::parse(&args.scope)
        .filter(|s| s.bits() != 0)
        .ok_or_else(|| anyhow::anyhow!("--scope {:?}: use watch, or watch,upload", args.scope))?;
    let now = crate::os::unix_secs();
    let t = Token {
        stream: key.stream_id(),
        scope,
        expires: now
            .checked_add(lifetime.as_secs())
            .context("--expires: too far in the future")?,
        id: args.id,
    };
    println!("{}", token::to_text(&t.sign(&key)));
    Ok(())
}

/// `--expires`: a positive time; days (`7d`) are allowed on top of the
/// usual units.
fn parse_lifetime(text: &str) -> anyhow::Result<Duration> {
    let bad = |why: String| anyhow::anyhow!("--expires {text:?}: {why}");
    let t = text.trim();
    let lifetime = match t.strip_suffix('d') {
        Some(days) => days
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(86_400))
            .map(Duration::from_secs)
            .ok_or_else(|| bad("use a time such as 24h, 30m or 7d".to_owned()))?,
        None => crate::units::duration(t).map_err(bad)?,
    };
    if lifetime < Duration::from_secs(1) {
        return Err(bad("must be at least 1s".to_owned()));
    }
    Ok(lifetime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse_with_days() {
        let ok = |t: &str| parse_lifetime(t).ok();
        assert_eq!(ok("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(ok("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(ok("90s"), Some(Duration::from_secs(90)));
        for bad in ["0s", "soon", "d", "-1d"] {
            let e = parse_lifetime(bad).expect_err(bad).to_string();
            assert!(e.starts_with("--expires"), "{e}");
        }
    }
}
