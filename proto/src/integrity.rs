//! Integrity: who may publish, and how every chunk is checked.
//!
//! The publisher signs each block's MANIFEST (the truncated BLAKE3 hashes of
//! the block's chunks and parity) and each DESCRIPTOR with the stream key.
//! A receiver checks the signature once per block and a hash per chunk, on
//! ingest only. Signed bytes begin with the version and type bytes, so a
//! signature over one message type can never pass as another.
//!
//! Hashes are BLAKE3 in derive-key mode (domain-separated from any other use
//! of BLAKE3) truncated to 128 bits. A forger must find a second preimage
//! for a hash the publisher committed to: 2^128 work. Collisions (2^64) do
//! not help anyone but the key holder, who can sign anything anyway.

use std::sync::Arc;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::StreamId;
use crate::fec::SYMBOL_HEADER_LEN;
use crate::wire::{DecodeError, Descriptor, HASH_LEN, ManifestView, SIGNATURE_LEN};

mod memo;

pub use memo::{MemoStats, VerifyMemo};

const CHUNK_CONTEXT: &str = "shoal v1 2026-11 chunk hash";
const PARITY_CONTEXT: &str = "shoal v1 2026-11 parity hash";

/// A truncated BLAKE3 hash of a chunk or parity symbol.
pub type Hash = [u8; HASH_LEN];

/// Why a datagram was refused. Receivers count each reason separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    /// The bytes are not a valid v1 datagram.
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// A signature does not verify under the stream's key.
    #[error("signature does not verify under the stream key")]
    Forged,
    /// The content does not match the hash its signed manifest commits to,
    /// or its position disagrees with the manifest.
    #[error("content does not match its signed manifest")]
    Corrupted,
    /// Older than the window, the newest revision or the run followed, or
    /// too far ahead.
    #[error("replayed: older than what is held")]
    Replayed,
    /// A DESCRIPTOR or MANIFEST that would start or move a run, but whose
    /// signed time is outside the freshness bound: recorded data replayed
    /// as live, or a publisher clock far off (SPEC §9.2).
    #[error("stale: its signed time is outside the freshness bound")]
    Stale,
    /// A MANIFEST or DESCRIPTOR not checked: the stream's budget for
    /// signature checks that fail is spent (a flood of forgeries), and it
    /// agrees with nothing held for its block (SPEC §9.2).
    #[error("not checked: the budget for failing signature checks is spent")]
    Throttled,
    /// For a stream this node does not carry, or in the wrong club.
    #[error("wrong stream")]
    WrongStream,
    /// For a stream not carried yet, while this node carries as many as
    /// it may (`max_streams`).
    #[error("stream limit reached")]
    StreamLimit,
    /// The stream id is not a valid ed25519 public key.
    #[error("stream id is not a valid ed25519 key")]
    BadStreamKey,
    /// The chunk waited for its manifest longer than allowed.
    #[error("no manifest arrived in time")]
    ManifestMissing,
    /// DATA or PARITY, before its block's MANIFEST, from an address not
    /// known to carry the stream (neither its upstream nor one that
    /// delivered a verified MANIFEST or DESCRIPTOR lately).
    #[error("stream data from an unproven source before its manifest")]
    Unproven,
}

/// The public half: checks what the stream's publisher signed.
#[derive(Debug, Clone)]
pub struct StreamKey {
    id: StreamId,
    key: VerifyingKey,
    memo: Option<Arc<VerifyMemo>>,
}

impl StreamKey {
    /// The key for `id`; fails when the bytes are not a valid curve point.
    pub fn new(id: StreamId) -> Result<Self, Rejection> {
        let key = VerifyingKey::from_bytes(id.as_bytes()).map_err(|_| Rejection::BadStreamKey)?;
        Ok(Self {
            id,
            key,
            memo: None,
        })
    }

    /// This key, remembering its successful checks in `memo` (shared by
    /// the receivers of one process, see [`VerifyMemo`]); `None`: every
    /// check runs.
    pub fn with_memo(mut self, memo: Option<Arc<VerifyMemo>>) -> Self {
        self.memo = memo;
        self
    }

    /// The stream this key names.
    pub fn id(&self) -> StreamId {
        self.id
    }

    fn verify(&self, signed: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<(), Rejection> {
        let check = || {
            self.key
                .verify_strict(signed, &Signature::from_bytes(signature))
                .map_err(|_| Rejection::Forged)
        };
        match &self.memo {
            Some(memo) => memo.check(self.id.as_bytes(), signed, signature, check),
            None => check(),
        }
    }

    /// Whether the chunk with these fields hashes to `expected` (what its
    /// signed manifest commits to); see [`chunk_hash`].
    pub(crate) fn chunk_matches(
        &self,
        flags: u8,
        timestamp_us: u64,
        payload: &[u8],
        expected: &Hash,
    ) -> bool {
        match &self.memo {
            Some(memo) => memo.chunk_matches(flags, timestamp_us, payload, expected),
            None => chunk_hash(flags, timestamp_us, payload) == *expected,
        }
    }

    /// Checks a manifest's stream and signature.
    pub fn verify_manifest(&self, manifest: &ManifestView<'_>) -> Result<(), Rejection> {
        if manifest.fields().stream != self.id {
            return Err(Rejection::WrongStream);
        }
        self.verify(manifest.signed_bytes(), &manifest.fields().signature)
    }

    /// Checks a descriptor's stream and signature; `bytes` is the datagram.
    pub fn verify_descriptor(
        &self,
        bytes: &[u8],
        descriptor: &Descriptor,
    ) -> Result<(), Rejection> {
        if descriptor.stream != self.id {
            return Err(Rejection::WrongStream);
        }
        let signed = bytes
            .get(..bytes.len().saturating_sub(SIGNATURE_LEN))
            .ok_or(Rejection::Forged)?;
        self.verify(signed, &descriptor.signature)
    }

    /// Checks a descriptor as [`StreamKey::verify_descriptor`] does, and
    /// keeps the proof.
    pub fn verified_descriptor<'a>(
        &self,
        bytes: &'a [u8],
        descriptor: Descriptor,
    ) -> Result<VerifiedDescriptor<'a>, Rejection> {
        self.verify_descriptor(bytes, &descriptor)?;
        Ok(VerifiedDescriptor { descriptor, bytes })
    }
}

/// A DESCRIPTOR whose signature verified under its stream's key. Only
/// [`StreamKey::verified_descriptor`] makes one, so a window may take it
/// without checking it again ([`crate::window::Window::ingest_verified`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedDescriptor<'a> {
    descriptor: Descriptor,
    bytes: &'a [u8],
}

impl<'a> VerifiedDescriptor<'a> {
    /// The parsed descriptor.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The datagram that was verified.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// The secret half: only its holder can publish the stream.
pub struct PublisherKey {
    signing: SigningKey,
}

impl core::fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PublisherKey({})", self.stream_id())
    }
}

impl PublisherKey {
    /// The key with this 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The secret seed, for storing the key.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The stream this key publishes.
    pub fn stream_id(&self) -> StreamId {
        StreamId(self.signing.verifying_key().to_bytes())
    }

    /// An ed25519 signature over `message` (access tokens, §11.10).
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    /// Signs the first `len - 64` bytes of `datagram` and writes the
    /// signature into its last 64 bytes.
    pub fn sign_trailer(&self, datagram: &mut [u8]) {
        let split = datagram.len().saturating_sub(SIGNATURE_LEN);
        let (signed, trailer) = datagram.split_at_mut(split);
        let sig = self.signing.sign(signed).to_bytes();
        if let Some(dst) = trailer.get_mut(..SIGNATURE_LEN) {
            dst.copy_from_slice(&sig);
        }
    }
}

/// The hash of a DATA chunk: over its FEC symbol without padding, i.e.
/// flags, timestamp, payload length and payload. Sequence number and stream
/// are bound by the chunk's place in the signed manifest.
pub fn chunk_hash(flags: u8, timestamp_us: u64, payload: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new_derive_key(CHUNK_CONTEXT);
    h.update(&[flags]);
    h.update(&timestamp_us.to_be_bytes());
    h.update(&(payload.len() as u16).to_be_bytes());
    h.update(payload);
    truncate(&h)
}

/// The hash of a rebuilt FEC symbol, equal to [`chunk_hash`] of the chunk
/// it encodes; `None` if the symbol's length field is out of range.
pub fn symbol_hash(symbol: &[u8]) -> Option<Hash> {
    let len_bytes = symbol.get(9..SYMBOL_HEADER_LEN)?;
    let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    let mut h = blake3::Hasher::new_derive_key(CHUNK_CONTEXT);
    h.update(symbol.get(..SYMBOL_HEADER_LEN + len)?);
    Some(truncate(&h))
}

/// The hash of a parity symbol.
pub fn parity_hash(symbol: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new_derive_key(PARITY_CONTEXT);
    h.update(symbol);
    truncate(&h)
}

fn truncate(h: &blake3::Hasher) -> Hash {
    let mut out = [0; HASH_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..HASH_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_hash_equals_chunk_hash() {
        let payload = b"seven ts packets";
        let mut symbol = vec![0u8; SYMBOL_HEADER_LEN + payload.len() + 5];
        symbol[0] = 1;
        symbol[1..9].copy_from_slice(&42u64.to_be_bytes());
        symbol[9..11].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        symbol[11..11 + payload.len()].copy_from_slice(payload);
        assert_eq!(symbol_hash(&symbol), Some(chunk_hash(1, 42, payload)));
        assert_ne!(chunk_hash(0, 42, payload), chunk_hash(1, 42, payload));
        assert_eq!(symbol_hash(&symbol[..5]), None);
    }

    #[test]
    fn signatures_bind_key_and_bytes() {
        let key = PublisherKey::from_seed([7; 32]);
        let stream = StreamKey::new(key.stream_id()).expect("valid key");
        let mut msg = [0u8; 100];
        msg[..4].copy_from_slice(b"abcd");
        key.sign_trailer(&mut msg);
        let sig: [u8; 64] = msg[36..].try_into().expect("64 bytes");
        assert_eq!(stream.verify(&msg[..36], &sig), Ok(()));
        msg[0] ^= 1;
        assert_eq!(stream.verify(&msg[..36], &sig), Err(Rejection::Forged));
        let other = StreamKey::new(PublisherKey::from_seed([8; 32]).stream_id()).expect("valid");
        msg[0] ^= 1;
        assert_eq!(other.verify(&msg[..36], &sig), Err(Rejection::Forged));
    }
}
