//! Access tokens: the stream's key holder says who may subscribe, and
//! until when.
//!
//! A token is 114 bytes, carried in SUBSCRIBE's opaque token field (SPEC
//! §11.10) and printed as 152 characters of unpadded base64url:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | format, 1 |
//! | 1 | 1 | scope: bit 0 WATCH, bit 1 UPLOAD; other bits reserved, 0 |
//! | 2 | 32 | stream id |
//! | 34 | 8 | expires, Unix seconds, big-endian |
//! | 42 | 8 | id: opaque, chosen by the issuer, for logs |
//! | 50 | 64 | ed25519 signature by the stream key over the context string and bytes 0..50 |
//!
//! The signed bytes begin with a context string, never with a datagram's
//! version byte, so no token signature passes as a MANIFEST or DESCRIPTOR
//! signature or the other way round. A server needs nothing but the stream
//! id to check a token: no shared secret, no call home. The check takes
//! the server's wall clock; this crate has none, so the caller passes it.

use core::fmt;

use data_encoding::BASE64URL_NOPAD;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::StreamId;
use crate::integrity::PublisherKey;
use crate::wire::SIGNATURE_LEN;

/// Bytes of a token.
pub const TOKEN_LEN: usize = 114;
/// Characters of a token's printable form.
pub const TOKEN_TEXT_LEN: usize = 152;
const FORMAT: u8 = 1;
const SIGNED_LEN: usize = TOKEN_LEN - SIGNATURE_LEN;
const CONTEXT: &[u8] = b"shoal v1 2026-11 access token";

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope(u8);

impl Scope {
    /// Subscribe and receive the stream.
    pub const WATCH: Self = Self(1);
    /// Also upload as an ordinary peer: be announced to others (MEMBER).
    pub const UPLOAD: Self = Self(2);
    /// Both.
    pub const ALL: Self = Self(3);

    /// Whether every right in `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The scope bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Parses `watch`, `upload` or a comma-separated list of them.
    pub fn parse(text: &str) -> Option<Self> {
        let mut bits = 0;
        for part in text.split(',') {
            bits |= match part.trim() {
                "watch" => Self::WATCH.0,
                "upload" => Self::UPLOAD.0,
                _ => return None,
            };
        }
        Some(Self(bits))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.contains(Self::WATCH), self.contains(Self::UPLOAD)) {
            (true, true) => f.write_str("watch,upload"),
            (true, false) => f.write_str("watch"),
            (false, true) => f.write_str("upload"),
            (false, false) => f.write_str("none"),
        }
    }
}

/// A token's signed content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    /// The stream it is good for.
    pub stream: StreamId,
    /// What it allows.
    pub scope: Scope,
    /// Unix second from which it is refused.
    pub expires: u64,
    /// The issuer's label for it, shown in logs.
    pub id: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TokenError {
    /// None was given.
    #[error("no access token given")]
    Missing,
    /// Not 114 bytes of format 1.
    #[error("not an access token (wrong length or format)")]
    Malformed,
    /// Made for another stream.
    #[error("the token is for another stream")]
    WrongStream,
    /// The signature is not the stream key's.
    #[error("the token's signature is not the stream key's")]
    Forged,
    /// Does not allow what was asked.
    #[error("the token does not allow this (scope)")]
    Scope,
    /// Past its expiry.
    #[error("the token expired")]
    Expired,
}

impl Token {
    /// The signed token bytes.
    pub fn sign(&self, key: &PublisherKey) -> [u8; TOKEN_LEN] {
        let mut out = [0u8; TOKEN_LEN];
        out[0] = FORMAT;
        out[1] = self.scope.0;
        out[2..34].copy_from_slice(self.stream.as_bytes());
        out[34..42].copy_from_slice(&self.expires.to_be_bytes());
        out[42..50].copy_from_slice(&self.id.to_be_bytes());
        let sig = key.sign(&signed_message(&out));
        out[SIGNED_LEN..].copy_from_slice(&sig);
        out
    }

    /// Reads a token without checking its signature (for display).
    pub fn parse(bytes: &[u8]) -> Result<Self, TokenError> {
        if bytes.is_empty() {
            return Err(TokenError::Missing);
        }
        let b: &[u8; TOKEN_LEN] = bytes.try_into().map_err(|_| TokenError::Malformed)?;
        if b[0] != FORMAT {
            return Err(TokenError::Malformed);
        }
        let mut stream = [0u8; 32];
        stream.copy_from_slice(&b[2..34]);
        let mut expires = [0u8; 8];
        expires.copy_from_slice(&b[34..42]);
        let mut id = [0u8; 8];
        id.copy_from_slice(&b[42..50]);
        Ok(Self {
            stream: StreamId(stream),
            scope: Scope(b[1]),
            expires: u64::from_be_bytes(expires),
            id: u64::from_be_bytes(id),
        })
    }

    /// Checks that `bytes` is a token for `stream`, signed by its key,
    /// allowing `need`, and not expired at `unix_now`. The cheap checks
    /// come first; the signature is checked last.
    pub fn verify(
        bytes: &[u8],
        stream: &StreamId,
        need: Scope,
        unix_now: u64,
    ) -> Result<Self, TokenError> {
        let token = Self::parse(bytes)?;
        if token.stream != *stream {
            return Err(TokenError::WrongStream);
        }
        if !token.scope.contains(need) {
            return Err(TokenError::Scope);
        }
        if unix_now >= token.expires {
            return Err(TokenError::Expired);
        }
        let key = VerifyingKey::from_bytes(stream.as_bytes()).map_err(|_| TokenError::Forged)?;
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(&bytes[SIGNED_LEN..]);
        key.verify_strict(&signed_message(bytes), &Signature::from_bytes(&sig))
            .map_err(|_| TokenError::Forged)?;
        Ok(token)
    }
}

/// The context string followed by the token's first 50 bytes.
fn signed_message(token: &[u8]) -> [u8; CONTEXT.len() + SIGNED_LEN] {
    let mut m = [0u8; CONTEXT.len() + SIGNED_LEN];
    m[..CONTEXT.len()].copy_from_slice(CONTEXT);
    m[CONTEXT.len()..].copy_from_slice(&token[..SIGNED_LEN]);
    m
}

/// The printable form of token bytes.
pub fn to_text(token: &[u8]) -> String {
    BASE64URL_NOPAD.encode(token)
}

/// Token bytes from the printable form.
pub fn from_text(text: &str) -> Result<Vec<u8>, TokenError> {
    let bytes = BASE64URL_NOPAD
        .decode(text.trim().as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    Token::parse(&bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublisherKey {
        PublisherKey::from_seed([7; 32])
    }

    fn token(scope: Scope, expires: u64) -> Token {
        Token {
            stream: key().stream_id(),
            scope,
            expires,
            id: 42,
        }
    }

    #[test]
    fn a_signed_token_verifies_and_round_trips_as_text() {
        let t = token(Scope::ALL, 1000);
        let bytes = t.sign(&key());
        let text = to_text(&bytes);
        assert_eq!(text.len(), TOKEN_TEXT_LEN);
        let back = from_text(&text).expect("parses");
        assert_eq!(back, bytes);
        let stream = key().stream_id();
        assert_eq!(Token::verify(&back, &stream, Scope::WATCH, 999), Ok(t));
        assert_eq!(Token::verify(&back, &stream, Scope::ALL, 0), Ok(t));
    }

    #[test]
    fn each_fault_has_its_reason() {
        let stream = key().stream_id();
        let good = token(Scope::WATCH, 1000).sign(&key());
        assert_eq!(
            Token::verify(&[], &stream, Scope::WATCH, 0),
            Err(TokenError::Missing)
        );
        assert_eq!(
            Token::verify(&good[..100], &stream, Scope::WATCH, 0),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            Token::verify(&good, &stream, Scope::WATCH, 1000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            Token::verify(&good, &stream, Scope::UPLOAD, 0),
            Err(TokenError::Scope)
        );
        let other = PublisherKey::from_seed([8; 32]);
        assert_eq!(
            Token::verify(&good, &other.stream_id(), Scope::WATCH, 0),
            Err(TokenError::WrongStream)
        );
        // Signed by another key but naming this stream: forged.
        let forged = token(Scope::WATCH, 1000).sign(&other);
        assert_eq!(
            Token::verify(&forged, &stream, Scope::WATCH, 0),
            Err(TokenError::Forged)
        );
        // Any flipped bit breaks it.
        for i in 0..TOKEN_LEN {
            let mut bad = good;
            bad[i] ^= 0x10;
            assert!(
                Token::verify(&bad, &stream, Scope::WATCH, 0).is_err(),
                "byte {i}"
            );
        }
    }

    /// SPEC Appendix A.7.
    #[test]
    fn test_vector() {
        let key = PublisherKey::from_seed([7; 32]);
        let t = Token {
            stream: key.stream_id(),
            scope: Scope::WATCH,
            expires: 1_767_225_600,
            id: 42,
        };
        let bytes = t.sign(&key);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, VECTOR_HEX.concat());
        assert_eq!(to_text(&bytes), VECTOR_TEXT.concat());
    }

    const VECTOR_HEX: [&str; 4] = [
        "0101ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446",
        "d22c000000006955b900000000000000002aabb818fbd58515347e8cd41b87ce",
        "dd05a07654b18a10d4785bf0f790a73d9918058ce9133eaf86455566e9466509",
        "49b47f030cc55e60ba6e1a9e046a4cab9a04",
    ];
    const VECTOR_TEXT: [&str; 2] = [
        "AQHqSmxj4pxSCr71UHsTLsX5lUd2rr6-e5JCHuppFEbSLAAAAABpVbkAAAAAAAAAACqruBj71YUV",
        "NH6M1BuHzt0FoHZUsYoQ1Hhb8PeQpz2ZGAWM6RM-r4ZFVWbpRmUJSbR_AwzFXmC6bhqeBGpMq5oE",
    ];

    #[test]
    fn scopes_parse_and_print() {
        assert_eq!(Scope::parse("watch"), Some(Scope::WATCH));
        assert_eq!(Scope::parse("watch,upload"), Some(Scope::ALL));
        assert_eq!(Scope::parse("upload, watch"), Some(Scope::ALL));
        assert_eq!(Scope::parse("admin"), None);
        assert_eq!(Scope::ALL.to_string(), "watch,upload");
        assert!(from_text("not a token").is_err());
    }
}
