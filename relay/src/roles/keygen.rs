//! `shoal keygen`: make a stream key, and read one back for `shoal publish`.
//!
//! A key file holds the 32-byte ed25519 secret seed as 64 lowercase hex
//! characters and a newline. It is created with mode 0600 and never
//! overwritten: losing an old key to a typo loses its stream id for good.
//! The stream id (the public key) is printed, since viewers need it and
//! the file does not hold it in readable form.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use shoal_proto::integrity::PublisherKey;

/// Bytes in a key's secret seed.
const SEED_LEN: usize = 32;

/// `shoal keygen` flags.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the new key; created with mode 0600, never overwritten.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Runs `shoal keygen`: writes a new key to `--out` and prints its stream id.
pub fn run(args: &KeygenArgs) -> anyhow::Result<()> {
    let key = PublisherKey::from_seed(random_seed()?);
    let path = &args.out;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => anyhow::anyhow!(
                "{} exists; choose another path or delete it",
                path.display()
            ),
            _ => anyhow::anyhow!("cannot create {}: {e}", path.display()),
        })?;
    let mut text = encode_hex(&key.seed());
    text.push('\n');
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("{}", key.stream_id());
    Ok(())
}

/// Reads the key `shoal keygen` wrote to `path`.
pub fn load_key(path: &Path) -> anyhow::Result<PublisherKey> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read key {0}: {e}; create one with shoal keygen --out {0}",
            path.display()
        )
    })?;
    parse_seed(text.trim())
        .map(PublisherKey::from_seed)
        .ok_or_else(|| anyhow::anyhow!("{} is not a shoal key (64 hex characters)", path.display()))
}

fn random_seed() -> anyhow::Result<[u8; SEED_LEN]> {
    crate::os::random_bytes().context("cannot read /dev/urandom")
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|&b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

/// The seed spelled by exactly 64 hex digits (either case), or `None`.
fn parse_seed(text: &str) -> Option<[u8; SEED_LEN]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * SEED_LEN {
        return None;
    }
    let mut seed = [0; SEED_LEN];
    for (byte, pair) in seed.iter_mut().zip(digits.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(hi << 4 | lo).ok()?;
    }
    Some(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let seed: [u8; SEED_LEN] = core::array::from_fn(|i| (i * 37) as u8);
        let text = encode_hex(&seed);
        assert_eq!(text.len(), 64);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(parse_seed(&text), Some(seed));
        assert_eq!(parse_seed(&text.to_uppercase()), Some(seed));
    }

    #[test]
    fn malformed_seeds_are_refused() {
        assert_eq!(parse_seed(""), None);
        assert_eq!(parse_seed(&"a".repeat(63)), None);
        assert_eq!(parse_seed(&"a".repeat(65)), None);
        assert_eq!(parse_seed(&"g".repeat(64)), None);
        assert_eq!(parse_seed(&"é".repeat(32)), None);
    }
}
