//! Stream identity: a stream is named by its publisher's ed25519 public key.
//!
//! The one printable form, used on every command line and in every log, is
//! the 32 key bytes in lowercase RFC 4648 base32 without padding: 52
//! characters from `a-z2-7`. Parsing accepts upper case too.

use core::fmt;
use core::str::FromStr;

use data_encoding::BASE32_NOPAD;

/// Length of a stream id in bytes (an ed25519 public key).
pub const STREAM_ID_LEN: usize = 32;

/// Length of the printable form.
pub const STREAM_ID_TEXT_LEN: usize = 52;

/// A stream's name: its publisher's ed25519 public key (not yet checked to be
/// a valid curve point; see [`crate::integrity::StreamKey`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub [u8; STREAM_ID_LEN]);

/// Why a printable stream id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseStreamIdError {
    /// The text is not 52 characters long.
    #[error("a stream id is 52 base32 characters (a-z, 2-7); got {0} characters")]
    Length(usize),
    /// The text has characters outside the base32 alphabet.
    #[error("a stream id is base32 (a-z, 2-7); it has a character outside that alphabet")]
    Alphabet,
}

impl StreamId {
    /// The raw key bytes.
    pub const fn as_bytes(&self) -> &[u8; STREAM_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE32_NOPAD.encode(&self.0).to_ascii_lowercase())
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({self})")
    }
}

impl FromStr for StreamId {
    type Err = ParseStreamIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != STREAM_ID_TEXT_LEN {
            return Err(ParseStreamIdError::Length(s.chars().count()));
        }
        let upper = s.to_ascii_uppercase();
        let bytes = BASE32_NOPAD
            .decode(upper.as_bytes())
            .map_err(|_| ParseStreamIdError::Alphabet)?;
        let key: [u8; STREAM_ID_LEN] = bytes
            .try_into()
            .map_err(|_| ParseStreamIdError::Length(s.len()))?;
        Ok(Self(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn printable_form_round_trips(bytes in any::<[u8; 32]>()) {
            let id = StreamId(bytes);
            let text = id.to_string();
            prop_assert_eq!(text.len(), STREAM_ID_TEXT_LEN);
            prop_assert!(text.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
            prop_assert_eq!(text.parse::<StreamId>(), Ok(id));
            prop_assert_eq!(text.to_ascii_uppercase().parse::<StreamId>(), Ok(id));
        }
    }

    #[test]
    fn bad_text_is_refused_with_a_reason() {
        assert_eq!(
            "abc".parse::<StreamId>(),
            Err(ParseStreamIdError::Length(3))
        );
        let bad = "1".repeat(STREAM_ID_TEXT_LEN);
        assert_eq!(bad.parse::<StreamId>(), Err(ParseStreamIdError::Alphabet));
    }
}
