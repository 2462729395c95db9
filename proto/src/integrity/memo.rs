//! Signature and chunk checks remembered across receivers in one process.
//!
//! A simulator runs thousands of receivers of one stream in one process,
//! and each checks the same MANIFEST's signature: the same key, the same
//! signed bytes, the same signature, the same answer; and each hashes the
//! same chunks. A [`VerifyMemo`] shared by them (through
//! [`StreamKey::with_memo`](super::StreamKey::with_memo)) lets the first
//! one run the check and the others find its success.
//!
//! The memo changes no answer, because the check is a pure function of
//! what it is keyed by:
//!
//! - an entry is the whole input, byte for byte: the public key, the
//!   signature and every signed byte; a lookup hits only when all of them
//!   are equal (the hash of the set only finds the candidate; equality
//!   decides), so a forged signature or a flipped byte is always checked;
//! - a chunk is held under the hash its signed manifest commits to, with
//!   every byte that hash was computed over; a chunk checked against that
//!   hash is taken without hashing only if its bytes equal the held ones
//!   (a comparison, some 20 times cheaper than BLAKE3 for a 1,200-byte
//!   chunk), else it is hashed;
//! - only successes are kept: a failure is checked again each time, and
//!   still counts against the window's budget for failing checks;
//! - it holds at most `capacity` signatures and `capacity` chunks, and
//!   forgets the oldest first.
//!
//! A product receiver checks each block once and has nothing to share, so
//! it carries no memo (every config defaults to `None`).
//!
//! The memo is `Sync`: a `Mutex` around each set. A lookup holds it for
//! a copy and a SipHash of the input (well under a microsecond for a
//! 700-byte manifest) or a comparison of a chunk's bytes; a check runs
//! outside it. With two threads that is rarely contended, against the
//! ~50 µs of the ed25519 check it saves.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::fec::{SYMBOL_HEADER_LEN, write_symbol};
use crate::wire::SIGNATURE_LEN;

use super::{Hash, Rejection, chunk_hash};

/// What a memo saw, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoStats {
    /// Checks answered from the memo.
    pub hits: u64,
    /// Checks run (the input was not held).
    pub checks: u64,
    /// Successes held now.
    pub held: usize,
    /// Chunks found equal to one held: not hashed.
    pub chunk_hits: u64,
    /// Chunks hashed.
    pub chunk_checks: u64,
}

/// Successful signature checks, keyed by their exact input. See the
/// module docs.
pub struct VerifyMemo {
    capacity: usize,
    inner: Mutex<Inner>,
    chunks: Mutex<Chunks>,
}

/// Chunks whose hash matched, under that hash.
#[derive(Default)]
struct Chunks {
    /// The bytes hashed (flags, timestamp, length, payload), by hash.
    held: HashMap<Hash, Box<[u8]>>,
    /// The same hashes, oldest first.
    order: VecDeque<Hash>,
    hits: u64,
    checks: u64,
}

/// Whether `held` is the chunk [`chunk_hash`] hashes for these fields.
fn same_chunk(held: &[u8], flags: u8, timestamp_us: u64, payload: &[u8]) -> bool {
    // `held` was laid out by `write_symbol`: flags, timestamp, length.
    held.len() == SYMBOL_HEADER_LEN + payload.len()
        && held[0] == flags
        && held[1..9] == timestamp_us.to_be_bytes()
        && held[9..SYMBOL_HEADER_LEN] == (payload.len() as u16).to_be_bytes()
        && held[SYMBOL_HEADER_LEN..] == *payload
}

#[derive(Default)]
struct Inner {
    /// Each entry: key, then signature, then the signed bytes (the first
    /// two have fixed lengths, so the split is unambiguous).
    held: HashSet<Arc<[u8]>>,
    /// The same entries, oldest first.
    order: VecDeque<Arc<[u8]>>,
    /// An input laid out as an entry, for the lookup; reused.
    scratch: Vec<u8>,
    hits: u64,
    checks: u64,
}

impl Inner {
    /// Lays out the input in `scratch` and says whether it is held.
    fn lookup(&mut self, key: &[u8; 32], signed: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        self.scratch.clear();
        self.scratch.extend_from_slice(key);
        self.scratch.extend_from_slice(signature);
        self.scratch.extend_from_slice(signed);
        self.held.contains(self.scratch.as_slice())
    }
}

impl core::fmt::Debug for VerifyMemo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VerifyMemo")
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

impl VerifyMemo {
    /// A memo holding at most `capacity` successes (the most recent). A
    /// MANIFEST is up to about 700 bytes; a stream signs some 20 blocks a
    /// second at 1 Mbit/s.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
            chunks: Mutex::new(Chunks::default()),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> MemoStats {
        let inner = self.lock();
        let chunks = lock(&self.chunks);
        MemoStats {
            hits: inner.hits,
            checks: inner.checks,
            held: inner.held.len(),
            chunk_hits: chunks.hits,
            chunk_checks: chunks.checks,
        }
    }

    /// The answer of `check` for (`key`, `signed`, `signature`): from the
    /// memo when this exact input succeeded before, else by running
    /// `check` (outside the lock), and keeping the input if it succeeded.
    /// `check` must be a pure function of those three.
    pub(crate) fn check(
        &self,
        key: &[u8; 32],
        signed: &[u8],
        signature: &[u8; SIGNATURE_LEN],
        check: impl FnOnce() -> Result<(), Rejection>,
    ) -> Result<(), Rejection> {
        {
            let mut inner = self.lock();
            if inner.lookup(key, signed, signature) {
                inner.hits += 1;
                return Ok(());
            }
            inner.checks += 1;
        }
        let result = check();
        if result.is_ok() && self.capacity > 0 {
            let mut inner = self.lock();
            // Another thread may have checked the same input meanwhile.
            if !inner.lookup(key, signed, signature) {
                if inner.order.len() >= self.capacity
                    && let Some(oldest) = inner.order.pop_front()
                {
                    inner.held.remove(&oldest);
                }
                let entry: Arc<[u8]> = Arc::from(inner.scratch.as_slice());
                inner.held.insert(Arc::clone(&entry));
                inner.order.push_back(entry);
            }
        }
        result
    }

    /// Whether [`chunk_hash`] of these fields is `expected`: without
    /// hashing when the same bytes matched `expected` before.
    pub(crate) fn chunk_matches(
        &self,
        flags: u8,
        timestamp_us: u64,
        payload: &[u8],
        expected: &Hash,
    ) -> bool {
        {
            let mut chunks = lock(&self.chunks);
            let held = chunks.held.get(expected);
            if held.is_some_and(|h| same_chunk(h, flags, timestamp_us, payload)) {
                chunks.hits += 1;
                return true;
            }
            chunks.checks += 1;
        }
        if chunk_hash(flags, timestamp_us, payload) != *expected {
            return false;
        }
        let mut chunks = lock(&self.chunks);
        if self.capacity > 0 && !chunks.held.contains_key(expected) {
            if chunks.order.len() >= self.capacity
                && let Some(oldest) = chunks.order.pop_front()
            {
                chunks.held.remove(&oldest);
            }
            // The bytes `chunk_hash` hashes are the chunk's FEC symbol
            // header and payload, unpadded.
            let mut bytes = vec![0; SYMBOL_HEADER_LEN + payload.len()];
            if write_symbol(flags, timestamp_us, payload, &mut bytes).is_ok() {
                chunks.held.insert(*expected, bytes.into_boxed_slice());
                chunks.order.push_back(*expected);
            }
        }
        true
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding it; if something did, the set is
    // still a set of inputs that succeeded.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::{PublisherKey, StreamKey, chunk_hash};

    /// A signed message: 36 signed bytes, then the signature.
    fn signed(key: &PublisherKey, first: u8) -> [u8; 100] {
        let mut msg = [0u8; 100];
        msg[0] = first;
        msg[1..5].copy_from_slice(b"abcd");
        key.sign_trailer(&mut msg);
        msg
    }

    fn check(key: &StreamKey, msg: &[u8; 100]) -> Result<(), Rejection> {
        let sig: [u8; 64] = msg[36..].try_into().expect("64 bytes");
        key.verify(&msg[..36], &sig)
    }

    fn keyed(seed: u8, memo: &Arc<VerifyMemo>) -> (PublisherKey, StreamKey) {
        let publisher = PublisherKey::from_seed([seed; 32]);
        let key = StreamKey::new(publisher.stream_id())
            .expect("valid key")
            .with_memo(Some(Arc::clone(memo)));
        (publisher, key)
    }

    #[test]
    fn hits_only_the_identical_input() {
        let memo = Arc::new(VerifyMemo::new(16));
        let (publisher, key) = keyed(7, &memo);
        let msg = signed(&publisher, 1);
        assert_eq!(check(&key, &msg), Ok(()));
        assert_eq!(check(&key, &msg), Ok(()));
        let s = memo.stats();
        assert_eq!((s.hits, s.checks, s.held), (1, 1, 1));
        // Another message, signed too: checked, not found.
        assert_eq!(check(&key, &signed(&publisher, 2)), Ok(()));
        assert_eq!(memo.stats().checks, 2);
        assert_eq!(memo.stats().hits, 1);
    }

    #[test]
    fn a_forgery_of_held_bytes_is_always_checked() {
        let memo = Arc::new(VerifyMemo::new(16));
        let (publisher, key) = keyed(7, &memo);
        let genuine = signed(&publisher, 1);
        assert_eq!(check(&key, &genuine), Ok(()));
        // The same signed bytes under a signature of other bytes.
        let mut forged = genuine;
        forged[36..].copy_from_slice(&signed(&publisher, 2)[36..]);
        // And under a signature by another key.
        let mut foreign = genuine;
        foreign[36..].copy_from_slice(&signed(&PublisherKey::from_seed([8; 32]), 1)[36..]);
        for _ in 0..3 {
            assert_eq!(check(&key, &forged), Err(Rejection::Forged));
            assert_eq!(check(&key, &foreign), Err(Rejection::Forged));
        }
        // Failures are never held.
        let s = memo.stats();
        assert_eq!((s.hits, s.checks, s.held), (0, 7, 1));
        assert_eq!(check(&key, &genuine), Ok(()));
        assert_eq!(memo.stats().hits, 1);
    }

    #[test]
    fn a_flipped_byte_misses() {
        let memo = Arc::new(VerifyMemo::new(16));
        let (publisher, key) = keyed(7, &memo);
        let genuine = signed(&publisher, 1);
        assert_eq!(check(&key, &genuine), Ok(()));
        for i in [0, 4, 35, 36, 99] {
            let mut flipped = genuine;
            flipped[i] ^= 1;
            assert_eq!(check(&key, &flipped), Err(Rejection::Forged), "byte {i}");
        }
        let s = memo.stats();
        assert_eq!((s.hits, s.checks, s.held), (0, 6, 1));
    }

    #[test]
    fn another_key_with_the_same_bytes_misses() {
        let memo = Arc::new(VerifyMemo::new(16));
        let (publisher, key) = keyed(7, &memo);
        let (_, other) = keyed(8, &memo);
        let msg = signed(&publisher, 1);
        assert_eq!(check(&key, &msg), Ok(()));
        assert_eq!(check(&other, &msg), Err(Rejection::Forged));
        assert_eq!(memo.stats().hits, 0);
    }

    #[test]
    fn holds_at_most_its_capacity_and_forgets_the_oldest() {
        let memo = Arc::new(VerifyMemo::new(3));
        let (publisher, key) = keyed(7, &memo);
        for first in 0..5 {
            assert_eq!(check(&key, &signed(&publisher, first)), Ok(()));
            assert!(memo.stats().held <= 3);
        }
        assert_eq!(memo.stats().held, 3);
        // 2, 3 and 4 are held; 0 and 1 were forgotten.
        assert_eq!(check(&key, &signed(&publisher, 4)), Ok(()));
        assert_eq!(check(&key, &signed(&publisher, 2)), Ok(()));
        assert_eq!(memo.stats().hits, 2);
        assert_eq!(check(&key, &signed(&publisher, 0)), Ok(()));
        assert_eq!(memo.stats().hits, 2);
        assert_eq!(memo.stats().checks, 6);
        // Zero capacity holds nothing and answers the same.
        let none = Arc::new(VerifyMemo::new(0));
        let (publisher, key) = keyed(7, &none);
        let msg = signed(&publisher, 1);
        assert_eq!(check(&key, &msg), Ok(()));
        assert_eq!(check(&key, &msg), Ok(()));
        assert_eq!((none.stats().hits, none.stats().held), (0, 0));
    }

    #[test]
    fn a_chunk_is_taken_unhashed_only_when_its_bytes_are_equal() {
        let memo = VerifyMemo::new(2);
        let payload = [7u8; 1200];
        let hash = chunk_hash(1, 42, &payload);
        assert!(memo.chunk_matches(1, 42, &payload, &hash));
        assert!(memo.chunk_matches(1, 42, &payload, &hash));
        let s = memo.stats();
        assert_eq!((s.chunk_hits, s.chunk_checks), (1, 1));
        // Any field or byte that differs is hashed, and fails.
        let mut flipped = payload;
        flipped[1199] ^= 1;
        assert!(!memo.chunk_matches(1, 42, &flipped, &hash));
        assert!(!memo.chunk_matches(0, 42, &payload, &hash));
        assert!(!memo.chunk_matches(1, 43, &payload, &hash));
        assert!(!memo.chunk_matches(1, 42, &payload[..1199], &hash));
        // Failures are not held: checked again.
        assert!(!memo.chunk_matches(1, 42, &flipped, &hash));
        let s = memo.stats();
        assert_eq!((s.chunk_hits, s.chunk_checks), (1, 6));
        // The right bytes against a wrong hash: hashed, and fails.
        let mut wrong = hash;
        wrong[0] ^= 1;
        assert!(!memo.chunk_matches(1, 42, &payload, &wrong));
        assert_eq!(memo.stats().chunk_checks, 7);
        // At most two held; the oldest goes first.
        for ts in [1, 2] {
            assert!(memo.chunk_matches(1, ts, &payload, &chunk_hash(1, ts, &payload)));
        }
        assert_eq!(lock(&memo.chunks).held.len(), 2);
        assert!(memo.chunk_matches(1, 42, &payload, &hash));
        assert!(memo.chunk_matches(1, 2, &payload, &chunk_hash(1, 2, &payload)));
        let s = memo.stats();
        assert_eq!((s.chunk_hits, s.chunk_checks), (2, 10));
    }

    #[test]
    fn is_shared_across_threads() {
        fn sync<T: Send + Sync>() {}
        sync::<VerifyMemo>();
        sync::<StreamKey>();
    }
}
