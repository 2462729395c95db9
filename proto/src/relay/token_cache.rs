//! Access tokens the relay has already verified.

use std::collections::HashMap;

use crate::token::{TOKEN_LEN, Token};

/// Most tokens remembered; the cache is emptied when full, so its memory
/// is bounded whatever subscribers send.
const CAPACITY: usize = 4096;

/// Verified tokens by their exact bytes. An event often hands one token to
/// every viewer: it is checked once, not once per viewer.
#[derive(Debug, Default)]
pub(super) struct TokenCache {
    verified: HashMap<[u8; TOKEN_LEN], Token>,
}

impl TokenCache {
    /// The content of `bytes` if they were verified before.
    pub(super) fn get(&self, bytes: &[u8]) -> Option<Token> {
        let key: &[u8; TOKEN_LEN] = bytes.try_into().ok()?;
        self.verified.get(key).copied()
    }

    /// Remembers that `bytes` verified as `token`.
    pub(super) fn insert(&mut self, bytes: &[u8], token: Token) {
        let Ok(key) = <[u8; TOKEN_LEN]>::try_from(bytes) else {
            return;
        };
        if self.verified.len() >= CAPACITY {
            self.verified.clear();
        }
        self.verified.insert(key, token);
    }
}
