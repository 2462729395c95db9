//! How the demo tells that a viewer's output is exact: a running digest of
//! what it played, compared with the digest of the same-length tail of
//! what was published, made again by a second [`Player`].

use super::clip::{Clip, Player};

/// FNV-1a, 64 bits: a running digest of a byte stream, the same however
/// the stream is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    /// Adds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The digest of the last `len` bytes of the first `frames` frames of
/// `clip` played in a loop, or `None` if those frames hold fewer bytes.
pub fn suffix_digest(clip: &'static Clip, frames: u64, len: u64) -> Option<Digest> {
    let mut player = Player::new(clip);
    let mut buf = Vec::new();
    let mut total = 0u64;
    for _ in 0..frames {
        buf.clear();
        player.next_frame(&mut buf);
        total += buf.len() as u64;
    }
    let mut skip = total.checked_sub(len)?;
    let mut player = Player::new(clip);
    let mut digest = Digest::default();
    for _ in 0..frames {
        buf.clear();
        player.next_frame(&mut buf);
        let n = buf.len() as u64;
        if skip >= n {
            skip -= n;
            continue;
        }
        digest.write(buf.get(skip as usize..).unwrap_or_default());
        skip = 0;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_digest_matches_the_tail_however_split() {
        let clip = Clip::builtin().expect("the built-in clip");
        // Past the end of the first pass, so the tail is a moved one.
        let frames = clip.frames() + 10;
        let mut player = Player::new(clip);
        let mut out = Vec::new();
        for _ in 0..frames {
            player.next_frame(&mut out);
        }
        let tail = 30_000;
        let mut digest = Digest::default();
        let (head, rest) = out.split_at(out.len() - tail);
        let (a, b) = rest.split_at(1000);
        digest.write(a);
        digest.write(b);
        assert!(!head.is_empty());
        assert_eq!(suffix_digest(clip, frames, tail as u64), Some(digest));
        assert_eq!(suffix_digest(clip, frames, out.len() as u64 + 1), None);
    }
}
